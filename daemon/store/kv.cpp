#include "daemon/store/kv.hpp"

#include "daemon/store/executions.hpp"

namespace luaflow::store {

using nlohmann::json;

std::optional<json> kv_get(Db& db, const std::string& scope, const std::string& key) {
    static constexpr const char* kSql = "SELECT value FROM kv WHERE scope = :scope AND key = :key";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":scope", scope).bind(":key", key);
    if (!q.step()) return std::nullopt;
    json v = json::parse(q.text(0), nullptr, false);
    return v.is_discarded() ? json() : v;
}

void kv_set(WriteTx& tx, const std::string& scope, const std::string& key, const json& value) {
    static constexpr const char* kSql =
        "INSERT INTO kv(scope, key, value, updated_at) VALUES (:scope, :key, :value, :at) "
        "ON CONFLICT(scope, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":scope", scope).bind(":key", key).bind_json(":value", value).bind(":at", now_unix_ms()).run();
}

bool kv_delete(WriteTx& tx, const std::string& scope, const std::string& key) {
    static constexpr const char* kSql = "DELETE FROM kv WHERE scope = :scope AND key = :key";
    Db& db = tx.db();
    Stmt::Use q(db.stmt(kSql));
    q.bind(":scope", scope).bind(":key", key).run();
    return sqlite3_changes(db.handle()) > 0;
}

json kv_list(Db& db, const std::string& scope) {
    static constexpr const char* kSql =
        "SELECT key, value, updated_at FROM kv WHERE scope = :scope ORDER BY key";
    Stmt::Use q(db.stmt(kSql));
    q.bind(":scope", scope);
    json out = json::array();
    while (q.step()) {
        json v = json::parse(q.text(1), nullptr, false);
        out.push_back({{"key", q.text(0)},
                       {"value", v.is_discarded() ? json() : v},
                       {"updated_at", time_or_null(q.int64(2))}});
    }
    return out;
}

} // namespace luaflow::store
