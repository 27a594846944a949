#include "daemon/exec/mock_attempt.hpp"

namespace luaflow::exec {

namespace {

class MockAttempt final : public Attempt {
  public:
    MockAttempt(const Mock& mock, AttemptDone done) : mock_(mock), done_(std::move(done)) {}

    void start() override {
        AttemptResult r;
        if (mock_.output) {
            r.output = *mock_.output;
        } else {
            r.kind = AttemptResult::Kind::failed;
            r.error = mock_.error;
        }
        AttemptDone done = std::move(done_);
        if (done) done(std::move(r));
    }
    void cancel() override { done_ = nullptr; }

  private:
    Mock mock_;
    AttemptDone done_;
};

} // namespace

std::unique_ptr<Attempt> mock_attempt(const Mock& mock, AttemptDone done) {
    return std::make_unique<MockAttempt>(mock, std::move(done));
}

} // namespace luaflow::exec
