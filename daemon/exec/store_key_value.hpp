#pragma once
// kv.* on the store: what the standard library's KeyValue interface asks, in the kv table, durable at
// the turn's commit.
#include "daemon/store/db.hpp"
#include "daemon/store/kv.hpp"
#include "stdlib/services.hpp"

namespace luaflow::exec {

class StoreKeyValue final : public stdlib::KeyValue {
  public:
    explicit StoreKeyValue(store::Db& db) : db_(db) {}
    std::optional<nlohmann::json> get(const std::string& scope, const std::string& key) override {
        return store::kv_get(db_, scope, key);
    }
    void set(const std::string& scope, const std::string& key, const nlohmann::json& value) override {
        store::kv_set(db_.write(), scope, key, value);
    }
    bool erase(const std::string& scope, const std::string& key) override {
        return store::kv_delete(db_.write(), scope, key);
    }
    void when_durable(std::function<void()> fn) override { db_.after_commit(std::move(fn)); }

  private:
    store::Db& db_;
};

} // namespace luaflow::exec
