#include "daemon/store/definitions.hpp"

#include "common/digest.hpp"
#include "common/time_format.hpp"

#include <nlohmann/json.hpp>

namespace luaflow::store {

namespace {

using json = nlohmann::json;

// {"path": digest}, with each text kept in `sources`.
json keep_texts(Db& db, const FileTexts& files) {
    static constexpr const char* kSql = "INSERT OR IGNORE INTO sources(digest, text) VALUES (:digest, :text)";
    json refs = json::object();
    for (const auto& [path, text] : files) {
        std::string digest = content_digest(text);
        Stmt::Use q(db.stmt(kSql));
        q.bind(":digest", digest).bind(":text", text).run();
        refs[path] = digest;
    }
    return refs;
}

std::optional<FileTexts> read_texts(Db& db, const json& refs) {
    static constexpr const char* kSql = "SELECT text FROM sources WHERE digest = :digest";
    if (!refs.is_object()) return std::nullopt;
    FileTexts files;
    for (auto it = refs.begin(); it != refs.end(); ++it) {
        if (!it.value().is_string()) return std::nullopt;
        Stmt::Use q(db.stmt(kSql));
        q.bind(":digest", it.value().get<std::string>());
        if (!q.step()) return std::nullopt;
        files.emplace(it.key(), q.text(0));
    }
    return files;
}

} // namespace

void insert_definition(WriteTx& tx, const std::string& digest, const Definition& def) {
    static constexpr const char* kExists = "SELECT 1 FROM definitions WHERE digest = :digest";
    static constexpr const char* kSql =
        "INSERT INTO definitions(digest, workflow, file, source, created_at, files) "
        "VALUES (:digest, :workflow, :file, :source, :now, :files)";
    Db& db = tx.db();
    {
        Stmt::Use q(db.stmt(kExists));
        q.bind(":digest", digest);
        if (q.step()) return;
    }
    json files = {{"scripts", keep_texts(db, def.scripts)}};
    if (def.lib) files["lib"] = keep_texts(db, *def.lib);
    Stmt::Use q(db.stmt(kSql));
    q.bind(":digest", digest)
        .bind(":workflow", def.workflow)
        .bind(":file", def.file)
        .bind(":source", def.source);
    q.bind(":now", now_unix_ms()).bind_json(":files", files).run();
}

std::optional<Definition> find_definition(Db& db, const std::string& digest) {
    static constexpr const char* kSql =
        "SELECT workflow, file, source, files FROM definitions WHERE digest = :digest";
    Definition def;
    std::optional<std::string> files_text;
    {
        Stmt::Use q(db.stmt(kSql));
        q.bind(":digest", digest);
        if (!q.step()) return std::nullopt;
        def.workflow = q.text(0);
        def.file = q.text(1);
        def.source = q.text(2);
        files_text = q.opt_text(3);
    }
    if (!files_text) return def; // stored before migration 7: the workflow file's text alone
    json files = json::parse(*files_text, nullptr, false);
    if (files.is_discarded() || !files.is_object()) return std::nullopt;
    auto scripts = read_texts(db, files.value("scripts", json::object()));
    if (!scripts) return std::nullopt;
    def.scripts = std::move(*scripts);
    if (files.contains("lib")) {
        def.lib = read_texts(db, files["lib"]);
        if (!def.lib) return std::nullopt;
    }
    return def;
}

} // namespace luaflow::store
