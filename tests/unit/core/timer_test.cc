#define CATCH_CONFIG_MAIN
#include "gateway/core/timer.h"

#include <uv.h>

#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace gw {
namespace {

// A real loop with a TimerQueue. The queue's uv timer is unref'd, so runUntil() keeps the
// loop alive with a ref'd prepare handle that stops itself once `done` holds. The prepare
// phase comes right after the timers phase, so the loop never blocks in poll after the
// last expected timer fired; a ref'd safety timer turns a bug into a failure, not a hang.
class LoopFixture {
 public:
  LoopFixture() {
    REQUIRE(uv_loop_init(&loop_) == 0);
    queue_ = std::make_unique<TimerQueue>(&loop_);
    uv_prepare_init(&loop_, &prepare_);
    prepare_.data = this;
    uv_timer_init(&loop_, &safety_);
    safety_.data = this;
  }
  ~LoopFixture() {
    queue_->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&safety_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop_) == 0);
  }

  TimerQueue& queue() { return *queue_; }
  uv_loop_t* loop() { return &loop_; }

  // Runs the loop until `done` holds.
  void runUntil(std::function<bool()> done) {
    done_ = std::move(done);
    timed_out_ = false;
    uv_prepare_start(&prepare_, &LoopFixture::onPrepare);
    uv_timer_start(&safety_, &LoopFixture::onSafety, 10'000, 0);
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK_FALSE(timed_out_);
  }

 private:
  static void onPrepare(uv_prepare_t* handle) {
    auto* self = static_cast<LoopFixture*>(handle->data);
    if (!self->done_()) return;
    uv_prepare_stop(&self->prepare_);
    uv_timer_stop(&self->safety_);
  }
  static void onSafety(uv_timer_t* handle) {
    auto* self = static_cast<LoopFixture*>(handle->data);
    self->timed_out_ = true;
    uv_prepare_stop(&self->prepare_);
  }

  uv_loop_t loop_;
  std::unique_ptr<TimerQueue> queue_;
  uv_prepare_t prepare_;
  uv_timer_t safety_;
  std::function<bool()> done_;
  bool timed_out_ = false;
};

// A timer that records its name into a shared log when it fires.
struct Named {
  Named(std::string n, std::vector<std::string>& log, std::function<void(Named&)> then = {})
      : name(std::move(n)), log(log), then(std::move(then)), timer(this, &Named::fire) {}
  static void fire(void* self) {
    auto* n = static_cast<Named*>(self);
    n->log.push_back(n->name);
    if (n->then) n->then(*n);
  }
  std::string name;
  std::vector<std::string>& log;
  std::function<void(Named&)> then;
  Timer timer;
};

using Log = std::vector<std::string>;

TEST_CASE("timers fire in deadline order across different durations") {
  LoopFixture f;
  Log log;
  Named a("a20", log), b("b1", log), c("c10", log), d("d1", log), e("e10", log);
  uv_update_time(f.loop());
  // Arm the longest first, so list creation order is not deadline order.
  f.queue().arm(a.timer, 20);
  f.queue().arm(c.timer, 10);
  f.queue().arm(b.timer, 1);
  f.queue().arm(e.timer, 10);
  f.queue().arm(d.timer, 1);
  CHECK(a.timer.armed());
  f.runUntil([&] { return log.size() == 5; });
  CHECK(log == Log{"b1", "d1", "c10", "e10", "a20"});
  CHECK_FALSE(a.timer.armed());
  CHECK_FALSE(b.timer.armed());
}

// When the loop gets to the timers late (it was busy), several timers of different
// durations have expired by the same tick; they must still fire in deadline order.
TEST_CASE("expired timers fire in deadline order even when the loop is late") {
  LoopFixture f;
  Log log;
  Named a("a20", log), b("b1", log), c("c10", log);
  // Arm as a loop that read its clock 100 ms ago would: every deadline is already past
  // at the first tick. (libuv has no API to fake its clock; `time` is the cached now.)
  uv_update_time(f.loop());
  f.loop()->time -= 100;
  f.queue().arm(a.timer, 20);
  f.queue().arm(c.timer, 10);
  f.queue().arm(b.timer, 1);
  f.runUntil([&] { return log.size() == 3; });
  CHECK(log == Log{"b1", "c10", "a20"});
}

TEST_CASE("timers with the same duration fire in the order they were armed") {
  LoopFixture f;
  Log log;
  std::vector<std::unique_ptr<Named>> timers;
  for (int i = 0; i < 5; ++i) timers.push_back(std::make_unique<Named>(std::to_string(i), log));
  for (int i : {3, 0, 4, 1, 2}) f.queue().arm(timers[i]->timer, 2);
  f.runUntil([&] { return log.size() == 5; });
  CHECK(log == Log{"3", "0", "4", "1", "2"});
}

TEST_CASE("re-arming moves the deadline") {
  LoopFixture f;
  Log log;
  Named a("a", log), b("b", log), c("c", log);
  SECTION("to a longer duration") {
    f.queue().arm(a.timer, 1);
    f.queue().arm(b.timer, 10);
    f.queue().arm(a.timer, 20);
    f.runUntil([&] { return log.size() == 2; });
    CHECK(log == Log{"b", "a"});
  }
  SECTION("to the back of the same duration") {
    f.queue().arm(a.timer, 5);
    f.queue().arm(b.timer, 5);
    f.queue().arm(c.timer, 5);
    f.queue().arm(a.timer, 5);
    f.runUntil([&] { return log.size() == 3; });
    CHECK(log == Log{"b", "c", "a"});
  }
  SECTION("to a shorter duration") {
    f.queue().arm(a.timer, 20);
    f.queue().arm(b.timer, 10);
    f.queue().arm(a.timer, 1);
    f.runUntil([&] { return log.size() == 2; });
    CHECK(log == Log{"a", "b"});
  }
  SECTION("re-armed timers fire once") {
    for (int i = 0; i < 10; ++i) f.queue().arm(a.timer, 1 + i % 3);
    f.queue().arm(b.timer, 10);
    f.runUntil([&] { return log.size() == 2; });
    CHECK(log == Log{"a", "b"});
  }
}

TEST_CASE("a disarmed timer does not fire") {
  LoopFixture f;
  Log log;
  Named a("a", log), b("b", log), c("c", log);
  f.queue().arm(a.timer, 1);
  f.queue().arm(b.timer, 5);
  f.queue().arm(c.timer, 5);
  f.queue().disarm(a.timer);
  f.queue().disarm(c.timer);
  CHECK_FALSE(a.timer.armed());
  f.queue().disarm(a.timer);  // twice is harmless
  f.runUntil([&] { return log.size() == 1; });
  Named marker("marker", log);  // proves the loop ran past the disarmed deadlines
  f.queue().arm(marker.timer, 10);
  f.runUntil([&] { return log.size() == 2; });
  CHECK(log == Log{"b", "marker"});
}

TEST_CASE("a callback may arm other timers, and itself") {
  LoopFixture f;
  Log log;
  Named second("second", log);
  int rounds = 0;
  Named first("first", log, [&](Named& self) {
    if (++rounds < 3) f.queue().arm(self.timer, 1);  // again, from its own callback
    f.queue().arm(second.timer, 2);                  // pushed back each time
  });
  f.queue().arm(first.timer, 1);
  f.runUntil([&] { return log.size() == 4; });
  CHECK(log == Log{"first", "first", "first", "second"});
  CHECK(rounds == 3);
}

TEST_CASE("a callback may disarm a timer that expired in the same tick") {
  LoopFixture f;
  Log log;
  Named victim("victim", log);
  Named killer("killer", log, [&](Named&) { f.queue().disarm(victim.timer); });
  // Armed in the same callback-free stretch: same loop time, same deadline.
  f.queue().arm(killer.timer, 2);
  f.queue().arm(victim.timer, 2);
  Named marker("marker", log);
  f.queue().arm(marker.timer, 10);
  f.runUntil([&] { return log.size() == 2; });
  CHECK(log == Log{"killer", "marker"});
}

TEST_CASE("a callback may destroy a timer that expired in the same tick") {
  LoopFixture f;
  Log log;
  auto victim = std::make_unique<Named>("victim", log);
  Named killer("killer", log, [&](Named&) { victim.reset(); });
  f.queue().arm(killer.timer, 2);
  f.queue().arm(victim->timer, 2);
  Named marker("marker", log);
  f.queue().arm(marker.timer, 10);
  f.runUntil([&] { return log.size() == 2; });
  CHECK(log == Log{"killer", "marker"});
}

TEST_CASE("destroying an armed timer unlinks it") {
  LoopFixture f;
  Log log;
  auto head = std::make_unique<Named>("head", log);
  auto middle = std::make_unique<Named>("middle", log);
  auto tail = std::make_unique<Named>("tail", log);
  auto alone = std::make_unique<Named>("alone", log);
  Named survivor1("s1", log), survivor2("s2", log);
  f.queue().arm(head->timer, 3);
  f.queue().arm(survivor1.timer, 3);
  f.queue().arm(middle->timer, 3);
  f.queue().arm(survivor2.timer, 3);
  f.queue().arm(tail->timer, 3);
  f.queue().arm(alone->timer, 1);
  head.reset();
  middle.reset();
  tail.reset();
  alone.reset();
  f.runUntil([&] { return log.size() == 2; });
  CHECK(log == Log{"s1", "s2"});
  // The list is still well formed: new timers append and fire.
  Named late("late", log);
  f.queue().arm(late.timer, 3);
  f.runUntil([&] { return log.size() == 3; });
  CHECK(log == Log{"s1", "s2", "late"});
}

TEST_CASE("a zero duration fires on the next loop iteration, not inside arm()") {
  LoopFixture f;
  Log log;
  Named a("a", log);
  f.queue().arm(a.timer, 0);
  CHECK(log.empty());
  f.runUntil([&] { return log.size() == 1; });
  CHECK(log == Log{"a"});
}

TEST_CASE("the queue alone does not keep a loop alive") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    TimerQueue queue(&loop);
    Log log;
    Named a("a", log);
    queue.arm(a.timer, 60'000);
    CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);  // returns at once: nothing ref'd
    CHECK(log.empty());
    queue.disarm(a.timer);
    queue.close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace gw
