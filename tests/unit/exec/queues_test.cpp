// exec/queues: the named queues' slots and the line of actions that wait for one.
#include "daemon/exec/queues.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace luaflow;
using luaflow::exec::Queues;
using luaflow::exec::Waiter;

namespace {

Queues two_slots_of_gpu() {
    Queues q;
    std::map<std::string, config::QueueConfig> conf;
    conf["gpu"].concurrency = 2;
    q.configure(conf);
    return q;
}

} // namespace

TEST_CASE("a queue is full at its concurrency and says how many of how many run") {
    Queues q = two_slots_of_gpu();
    CHECK_FALSE(q.full("gpu"));
    q.take("gpu");
    q.take("gpu");
    REQUIRE(q.full("gpu"));
    CHECK(*q.full("gpu") == "queue gpu: 2 of 2 running");
    q.give_back("gpu");
    CHECK_FALSE(q.full("gpu"));
}

TEST_CASE("a queue the config does not name, or with concurrency 0, is never full") {
    Queues q;
    std::map<std::string, config::QueueConfig> conf;
    conf["free"].concurrency = 0;
    q.configure(conf);
    for (int i = 0; i < 100; ++i) {
        q.take("default");
        q.take("free");
    }
    CHECK_FALSE(q.full("default"));
    CHECK_FALSE(q.full("free"));
}

TEST_CASE("a pass asks the waiters oldest first and drops those that wait no more") {
    Queues q = two_slots_of_gpu();
    for (std::size_t i = 0; i < 4; ++i)
        q.join({"e", i});
    std::vector<std::size_t> launched;
    q.pass(
        [](const Waiter& w) -> std::optional<std::string> {
            if (w.action == 1) return std::nullopt; // it was cancelled meanwhile
            return std::string("other");
        },
        [&](const Waiter& w) { launched.push_back(w.action); });
    CHECK(launched == std::vector<std::size_t>{0, 2, 3});
    CHECK_FALSE(q.anyone_waiting());
}

TEST_CASE("once a queue is found full in a pass the rest of its line keeps its place unasked") {
    Queues q = two_slots_of_gpu();
    q.take("gpu"); // one slot left
    for (std::size_t i = 0; i < 5; ++i)
        q.join({"e", i});
    std::vector<std::size_t> asked;
    q.pass([](const Waiter&) -> std::optional<std::string> { return std::string("gpu"); },
           [&](const Waiter& w) {
               asked.push_back(w.action);
               if (!q.full("gpu"))
                   q.take("gpu"); // it starts
               else
                   q.join(w); // it cannot: back in line
           });
    // 0 takes the last slot, 1 finds the queue full and joins again; 2..4 are not asked.
    CHECK(asked == std::vector<std::size_t>{0, 1});
    std::vector<std::size_t> order;
    q.pass(
        [&](const Waiter& w) -> std::optional<std::string> {
            order.push_back(w.action);
            return std::nullopt;
        },
        [](const Waiter&) {});
    CHECK(order == std::vector<std::size_t>{1, 2, 3, 4}); // their places kept, oldest first
}
