#pragma once
// Definitions, kept by digest so that an execution resumes with the text it started with (SPEC 5): the
// workflow file's text and the files it uses beside it (`script` files, lib/ modules). A file's text is
// kept once, by its digest, however many definitions share it.
#include "daemon/store/db.hpp"

#include <map>
#include <optional>
#include <string>

namespace luaflow::store {

using FileTexts = std::map<std::string, std::string>; // path relative to the workflows directory -> text

struct Definition {
    std::string workflow, file, source;
    FileTexts scripts;
    // The lib/ modules it was loaded with; nullopt for a definition stored before the store kept them
    // (it reads lib/ from disk, as it did then).
    std::optional<FileTexts> lib;
};

// Keeps a definition under `digest` (once: a digest already there is left as it is).
void insert_definition(WriteTx& tx, const std::string& digest, const Definition& def);
std::optional<Definition> find_definition(Db& db, const std::string& digest);

} // namespace luaflow::store
