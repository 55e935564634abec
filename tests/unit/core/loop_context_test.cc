#define CATCH_CONFIG_MAIN
#include "gateway/core/loop_context.h"

#include <uv.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace gw {
namespace {

using Log = std::vector<std::string>;

struct Step;

// Everything a test's callbacks need, reachable from a handle's data pointer.
struct World {
  uv_loop_t loop;
  LoopContext* ctx = nullptr;
  Log log;
  Step* to_defer = nullptr;   // what a callback defers
  bool safety_fired = false;  // a far-away timer went off: the loop blocked in poll
};

World* worldOf(uv_handle_t* h) { return static_cast<World*>(h->data); }

// A deferred step: logs its name. `arg` points at a Step.
struct Step {
  World* world;
  std::string name;
  Step* then = nullptr;  // deferred from inside this step
};

void runStep(void* arg) {
  auto* s = static_cast<Step*>(arg);
  s->world->log.push_back(s->name);
  if (s->then != nullptr) s->world->ctx->defer(&runStep, s->then);
}

void closeLoop(World& w) {
  w.ctx->close();
  uv_run(&w.loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&w.loop) == 0);
}

// Starts a one-shot timer on the test's loop whose callback finds `data` in h->data.
void startTimer(World& w, uv_timer_t& t, void* data, uv_timer_cb cb, uint64_t ms) {
  uv_timer_init(&w.loop, &t);
  t.data = data;
  uv_timer_start(&t, cb, ms, 0);
}

// A timer far in the future: had the poll phase blocked, the turn would end with it.
void startFarTimer(World& w, uv_timer_t& far) {
  startTimer(
      w, far, &w, [](uv_timer_t* h) { static_cast<World*>(h->data)->safety_fired = true; }, 5'000);
}

// A timer due now whose callback defers w.to_defer.
void startDeferringTimer(World& w, uv_timer_t& t) {
  startTimer(
      w, t, &w,
      [](uv_timer_t* h) {
        World* w = static_cast<World*>(h->data);
        w->ctx->defer(&runStep, w->to_defer);
      },
      0);
}

// The first test's callback state: a timer that defers two steps and starts another timer.
struct FifoCase {
  World* world;
  Step* first;
  Step* second;
  uv_timer_t next;
};

TEST_CASE("deferred work runs after the current callback, in FIFO order") {
  World w;
  REQUIRE(uv_loop_init(&w.loop) == 0);
  LoopContext ctx(&w.loop);
  w.ctx = &ctx;
  Step d3{&w, "d3"};
  Step d4{&w, "d4"};
  Step d1{&w, "d1", &d3};  // d1 defers d3
  Step d2{&w, "d2", &d4};  // d2 defers d4
  FifoCase c{&w, &d1, &d2, {}};
  uv_timer_init(&w.loop, &c.next);
  c.next.data = &c;
  uv_timer_t timer;
  uv_timer_init(&w.loop, &timer);
  timer.data = &c;
  uv_timer_start(
      &timer,
      [](uv_timer_t* h) {
        auto* c = static_cast<FifoCase*>(h->data);
        c->world->log.push_back("callback begins");
        c->world->ctx->defer(&runStep, c->first);
        c->world->ctx->defer(&runStep, c->second);
        // A timer due in 1 ms runs in a later iteration: after all deferred work.
        uv_timer_start(
            &c->next,
            [](uv_timer_t* n) {
              static_cast<FifoCase*>(n->data)->world->log.push_back("next timer");
            },
            1, 0);
        c->world->log.push_back("callback ends");
      },
      0, 0);
  uv_run(&w.loop, UV_RUN_DEFAULT);
  CHECK(w.log == Log{"callback begins", "callback ends", "d1", "d2", "d3", "d4", "next timer"});
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&c.next), nullptr);
  closeLoop(w);
}

TEST_CASE("a long chain of deferrals completes in one check phase") {
  World w;
  REQUIRE(uv_loop_init(&w.loop) == 0);
  LoopContext ctx(&w.loop);
  w.ctx = &ctx;
  std::vector<Step> chain(50, Step{&w, ""});
  for (size_t i = 0; i < chain.size(); ++i) {
    chain[i].name = std::to_string(i);
    if (i + 1 < chain.size()) chain[i].then = &chain[i + 1];
  }
  uv_timer_t t;
  uv_timer_init(&w.loop, &t);
  t.data = &chain[0];
  uv_timer_start(
      &t,
      [](uv_timer_t* h) {
        auto* s = static_cast<Step*>(h->data);
        s->world->ctx->defer(&runStep, s);
      },
      0, 0);
  // One iteration: timers, then poll (not blocking), then the check phase.
  uv_run(&w.loop, UV_RUN_ONCE);
  REQUIRE(w.log.size() == 50);
  CHECK(w.log.front() == "0");
  CHECK(w.log.back() == "49");
  uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
  closeLoop(w);
}

TEST_CASE("pending deferred work keeps the poll phase from blocking") {
  World w;
  REQUIRE(uv_loop_init(&w.loop) == 0);
  LoopContext ctx(&w.loop);
  w.ctx = &ctx;
  Step step{&w, "deferred"};
  w.to_defer = &step;
  // The only other timer is far away: if poll blocked, this iteration would end with it.
  uv_timer_t far;
  startFarTimer(w, far);
  uv_timer_t now;
  startDeferringTimer(w, now);
  uv_run(&w.loop, UV_RUN_ONCE);
  CHECK(w.log == Log{"deferred"});
  CHECK_FALSE(w.safety_fired);
  uv_close(reinterpret_cast<uv_handle_t*>(&far), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&now), nullptr);
  closeLoop(w);
}

// Costly work: one item per turn, after the turn's callbacks, oldest first.
struct CostlyCase {
  World* world;
  LoopContext::CostlyWork work[3];
  Step steps[3];
  bool ran_at_once = false;
  bool second_ran_at_once = true;
};

TEST_CASE("costly work runs one item per turn, oldest first, after the turn's I/O") {
  World w;
  REQUIRE(uv_loop_init(&w.loop) == 0);
  LoopContext ctx(&w.loop);
  w.ctx = &ctx;
  CostlyCase c{&w, {}, {Step{&w, "c1"}, Step{&w, "c2"}, Step{&w, "c3"}}};
  uv_timer_t far;  // if poll blocked while work waits, a turn would end with this timer
  startFarTimer(w, far);
  uv_timer_t now;
  startTimer(
      w, now, &c,
      [](uv_timer_t* h) {
        auto* c = static_cast<CostlyCase*>(h->data);
        LoopContext& ctx = *c->world->ctx;
        c->ran_at_once = ctx.takeCostlyTurn();         // this turn's budget
        c->second_ran_at_once = ctx.takeCostlyTurn();  // spent
        for (int i = 0; i < 3; ++i) ctx.queueCostly(c->work[i], &runStep, &c->steps[i]);
        ctx.cancelCostly(c->work[1]);
      },
      0);
  uv_run(&w.loop, UV_RUN_ONCE);  // the timer's turn: its budget is spent, nothing runs
  CHECK(c.ran_at_once);
  CHECK_FALSE(c.second_ran_at_once);
  CHECK(w.log.empty());
  CHECK(c.work[0].queued());
  CHECK_FALSE(c.work[1].queued());
  // A new budget, but older work waits: nothing jumps the queue.
  CHECK_FALSE(ctx.takeCostlyTurn());
  uv_run(&w.loop, UV_RUN_ONCE);
  CHECK(w.log == Log{"c1"});
  uv_run(&w.loop, UV_RUN_ONCE);
  CHECK(w.log == Log{"c1", "c3"});
  CHECK_FALSE(w.safety_fired);
  CHECK(ctx.takeCostlyTurn());  // the queue is empty again
  uv_close(reinterpret_cast<uv_handle_t*>(&far), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&now), nullptr);
  closeLoop(w);
}

TEST_CASE("work deferred by the loop's last callback still runs") {
  World w;
  REQUIRE(uv_loop_init(&w.loop) == 0);
  LoopContext ctx(&w.loop);
  w.ctx = &ctx;
  Step step{&w, "deferred"};
  w.to_defer = &step;
  uv_timer_t t;  // one-shot: once it fired, nothing keeps the loop alive
  startDeferringTimer(w, t);
  uv_run(&w.loop, UV_RUN_DEFAULT);
  CHECK(w.log == Log{"deferred"});
  uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
  closeLoop(w);
}

// Objects are destroyed from close callbacks by deferring (DownstreamSession::onClosed);
// that work must not be lost when the closed handle was the last one keeping the loop up.
TEST_CASE("work deferred from a close callback runs before uv_run returns") {
  World w;
  REQUIRE(uv_loop_init(&w.loop) == 0);
  LoopContext ctx(&w.loop);
  w.ctx = &ctx;
  Step step{&w, "deferred"};
  w.to_defer = &step;
  uv_timer_t t;
  uv_timer_init(&w.loop, &t);
  t.data = &w;
  uv_close(reinterpret_cast<uv_handle_t*>(&t), [](uv_handle_t* h) {
    World* w = worldOf(h);
    w->log.push_back("closed");
    w->ctx->defer(&runStep, w->to_defer);
  });
  uv_run(&w.loop, UV_RUN_DEFAULT);
  CHECK(w.log == Log{"closed", "deferred"});
  closeLoop(w);
}

TEST_CASE("the loop context exposes its loop, timers and read slab") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    LoopContext ctx(&loop);
    CHECK(ctx.loop() == &loop);
    REQUIRE(ctx.readSlab() != nullptr);
    ctx.readSlab()[0] = 'a';
    ctx.readSlab()[LoopContext::kReadSlabSize - 1] = 'z';  // the whole slab is ours
    CHECK(ctx.readSlab()[LoopContext::kReadSlabSize - 1] == 'z');
    // The context's own handles never keep the loop alive.
    CHECK(uv_run(&loop, UV_RUN_NOWAIT) == 0);
    ctx.close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace gw
