#pragma once
// The documents SPEC 6 shows of an execution, built in one place so that every door (the socket's
// `inspect` and `wait`, `run --wait`, child workflows, the HTTP API) gives the same JSON.
#include "daemon/store/executions.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace luaflow::exec {

// The inspect document of an execution as the store holds it (the row's values are moved into it).
nlohmann::json inspect_document(store::ExecutionRow row);

// The same document as JSON text, exactly inspect_document(find_execution(db, id)).dump(), written out
// row by row: the actions' stored outputs go in as the text they are stored as, and no document of the
// whole is built (a 10 000-action execution: 2.5 MB of text, no 2.5 MB of nodes). Nothing when there
// is no such execution.
std::optional<std::string> inspect_text(store::Db& db, const std::string& id);

// An ended execution's report for those who waited on it: the inspect document as text (inspect_text,
// read once in the transaction that ended it), and as a document for those who need one, parsed on
// first use. `run --wait` and a webhook's ?wait= send the text as it is.
class EndReport {
  public:
    explicit EndReport(std::string text) : text_(std::move(text)) {}
    const std::string& text() const { return text_; }
    const nlohmann::json& doc() const {
        if (!doc_) doc_ = nlohmann::json::parse(text_, nullptr, false);
        return *doc_;
    }

  private:
    std::string text_;
    mutable std::optional<nlohmann::json> doc_;
};

} // namespace luaflow::exec
