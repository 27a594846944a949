#pragma once
// The outputs of an execution's finished actions in the order they finished: appended to, never
// changed, and shared by every attempt of the execution. An attempt sees the first `seen` entries (the
// outputs finished when it started), so no attempt needs a copy of its own (issue 8, item 9).
#include <algorithm>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace luaflow::scripting {

class OutputsLog {
  public:
    void add(const std::string& name, nlohmann::json output) {
        index_[name] = entries_.size();
        entries_.emplace_back(name, std::move(output));
    }
    std::size_t size() const { return entries_.size(); }

    // The output of `name` among the first `seen` entries (its latest there), or null.
    const nlohmann::json* find(std::string_view name, std::size_t seen) const {
        auto it = index_.find(std::string(name));
        if (it == index_.end()) return nullptr;
        if (it->second < seen) return &entries_[it->second].second;
        // The name finished again after this attempt started (a retried execution): its older entry.
        for (std::size_t i = std::min(seen, entries_.size()); i-- > 0;)
            if (entries_[i].first == name) return &entries_[i].second;
        return nullptr;
    }

    // The first `seen` entries as one object by name.
    nlohmann::json object(std::size_t seen) const {
        nlohmann::json out = nlohmann::json::object();
        for (std::size_t i = 0; i < seen && i < entries_.size(); ++i)
            out[entries_[i].first] = entries_[i].second;
        return out;
    }

  private:
    std::vector<std::pair<std::string, nlohmann::json>> entries_;
    std::unordered_map<std::string, std::size_t> index_; // name -> its latest entry
};

} // namespace luaflow::scripting
