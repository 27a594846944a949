#pragma once
// The kv table: durable values of kv.* and kv.global.* (SPEC 3), as JSON.
#include "daemon/store/db.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace luaflow::store {

// `scope` is a workflow id, or "" for the global store.
std::optional<nlohmann::json> kv_get(Db& db, const std::string& scope, const std::string& key);
void kv_set(WriteTx& tx, const std::string& scope, const std::string& key, const nlohmann::json& value);
// False when there was no such key.
bool kv_delete(WriteTx& tx, const std::string& scope, const std::string& key);
// [{"key","value","updated_at"}] by key.
nlohmann::json kv_list(Db& db, const std::string& scope);

} // namespace luaflow::store
