#pragma once
// The documents SPEC 6 shows of an execution, built in one place so that every door (the socket's
// `inspect` and `wait`, `run --wait`, child workflows, the HTTP API) gives the same JSON.
#include "daemon/store/executions.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace luaflow::exec {

// The inspect document of an execution as the store holds it (the row's values are moved into it).
nlohmann::json inspect_document(store::ExecutionRow row);

// The same document as JSON text, written out from the rows as text (ReportWriter). Nothing when there
// is no such execution.
std::optional<std::string> inspect_text(store::Db& db, const std::string& id);

// Writes the inspect document's text from an execution's rows as text: the store's (inspect_text) or
// the executor's copy of them (the report of an end, issue 16), so that both give the same text. It is
// exactly inspect_document(find_execution(db, id)).dump(): the stored JSON columns go in as the text they
// are stored as, and no document of the whole is built (a 10 000-action execution: 2.5 MB of text, no
// 2.5 MB of nodes).
class ReportWriter {
  public:
    // `children`: the execution's child executions (store::children_of), shown under their actions.
    explicit ReportWriter(const std::vector<store::ChildRow>& children);
    // Each action, in the order of their names (json objects sort so, and the store reads them so).
    void action(const store::ActionText& a);
    // The document's text; `events` and `notifications` are the execution's arrays (store::execution_events
    // and store::execution_notifications).
    std::string finish(const store::ExecutionText& e, const nlohmann::json& events,
                       const nlohmann::json& notifications);

  private:
    std::map<std::string, nlohmann::json> children_; // by action, as inspect_document lists them
    std::string out_;
    bool first_ = true;
};

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
