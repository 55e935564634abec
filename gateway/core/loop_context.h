#pragma once
// What every loop-confined object needs from its loop: the uv loop, the timer queue,
// the read poller and the loop-wide read slab that connections read into (so an idle
// connection owns no read buffer), plus a list of work deferred to after the current
// I/O callback.

#include <uv.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "gateway/core/free_list.h"
#include "gateway/core/read_poller.h"
#include "gateway/core/timer.h"
#include "gateway/core/write_batch.h"

namespace gw {

class LoopContext {
 public:
  static constexpr size_t kReadSlabSize = 64 * 1024;

  explicit LoopContext(uv_loop_t* loop);
  ~LoopContext();
  LoopContext(const LoopContext&) = delete;
  LoopContext& operator=(const LoopContext&) = delete;

  uv_loop_t* loop() const { return loop_; }
  // The context of `loop` (one per loop; it keeps itself in loop->data), so that
  // per-connection objects need not store it.
  static LoopContext& of(const uv_loop_t* loop) { return *static_cast<LoopContext*>(loop->data); }
  // What the layer above keeps per loop (the proxy's context), found the same way.
  void setApp(void* app) { app_ = app; }
  void* app() const { return app_; }
  TimerQueue& timers() { return timers_; }

  // The read slab: valid until the read callback that received it returns. Whoever
  // needs bytes longer copies them.
  char* readSlab() { return slab_.get(); }
  // Where TCP connections learn that they can read (edge-triggered, bounded batches).
  ReadPoller& readPoller() { return read_poller_; }

  // A cleared write batch from the loop's pool; give it back with returnWriteBatch()
  // as soon as its output is flushed.
  WriteBatch* takeWriteBatch();
  void returnWriteBatch(WriteBatch* batch);
  size_t pooledWriteBatches() const { return free_batches_.size(); }
  // Lets the loop's pools shrink after a burst (see FreeList); called periodically.
  // Returns how many objects were freed.
  size_t trimPools() { return free_batches_.trim(); }

  // Runs `fn(arg)` after the current callback returns (in this loop's check phase),
  // so an object is never destroyed while its own callback is on the stack.
  void defer(void (*fn)(void*), void* arg);

  // Costly work that yields to I/O, such as a TLS handshake's first flight (key exchange
  // and signature, a few hundred microseconds): at most kCostlyPerTurn items run per loop
  // turn, oldest first, so a wave of new connections cannot delay the requests of
  // established ones that are ready in the same turn (nginx gets this by accepting one
  // connection per turn). An object embeds a CostlyWork and either runs now, when
  // takeCostlyTurn() says so, or queues itself; it must cancel before it is freed.
  static constexpr int kCostlyPerTurn = 1;
  struct CostlyWork {
    CostlyWork* next = nullptr;
    CostlyWork* prev = nullptr;
    void (*fn)(void*) = nullptr;
    void* arg = nullptr;
    bool queued() const { return fn != nullptr; }
  };
  bool takeCostlyTurn();
  // Runs `fn(arg)` in the check phase of this or a later turn, after older queued work.
  void queueCostly(CostlyWork& work, void (*fn)(void*), void* arg);
  void cancelCostly(CostlyWork& work);

  // Closes the loop's own handles (timer, check, idle, read poller). Call before the final uv_run.
  void close();

 private:
  static void onCheck(uv_check_t* handle);

  uv_loop_t* loop_;
  void* app_ = nullptr;
  TimerQueue timers_;
  std::unique_ptr<char[]> slab_;
  uv_check_t check_;
  uv_idle_t idle_;  // active while work is deferred, so the poll phase does not block
  ReadPoller read_poller_;
  struct Deferred {
    void (*fn)(void*);
    void* arg;
  };
  std::vector<Deferred> deferred_;
  std::vector<Deferred> running_;
  CostlyWork costly_;  // the anchor of the circular list of queued costly work
  int costly_budget_ = kCostlyPerTurn;
  FreeList<WriteBatch> free_batches_{1024};
};

}  // namespace gw
