#pragma once
// Per-loop timeouts without a uv_timer_t per connection (a uv_timer_t is 152 bytes;
// an idle connection should cost less than that in total).
//
// Timers with the same duration expire in the order they were armed, so each distinct
// duration keeps a FIFO list and arming is O(1): unlink, append at the tail. One
// uv_timer_t per loop fires at the earliest head. A connection re-arms its timer on
// every read without touching a heap.
//
// Loop-confined: every call happens on the owning loop's thread.

#include <uv.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace gw {

class TimerQueue;

class Timer {
 public:
  using Callback = void (*)(void* owner);
  Timer(void* owner, Callback callback) : owner_(owner), callback_(callback) {}
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  bool armed() const { return next_ != nullptr; }

 private:
  friend class TimerQueue;
  friend struct TimerList;
  // Unlinks an armed timer (the lists are circular around an anchor, so no list pointer
  // is needed: 8 bytes less in every connection).
  void unlink() {
    prev_->next_ = next_;
    next_->prev_ = prev_;
    prev_ = next_ = nullptr;
  }
  void* owner_;
  Callback callback_;
  Timer* prev_ = nullptr;  // both null while disarmed
  Timer* next_ = nullptr;
  uint64_t deadline_ = 0;
};

// The timers of one duration, in deadline order: a circular list around `anchor`.
struct TimerList {
  TimerList() { anchor.prev_ = anchor.next_ = &anchor; }
  ~TimerList() { anchor.prev_ = anchor.next_ = nullptr; }
  TimerList(const TimerList&) = delete;
  TimerList& operator=(const TimerList&) = delete;
  Timer* head() { return anchor.next_ == &anchor ? nullptr : anchor.next_; }
  uint64_t duration_ms = 0;
  Timer anchor{nullptr, nullptr};
};

class TimerQueue {
 public:
  explicit TimerQueue(uv_loop_t* loop);
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // (Re)arms `timer` to fire `duration_ms` from the loop's current time.
  void arm(Timer& timer, uint64_t duration_ms);
  void disarm(Timer& timer);
  // Closes the uv_timer_t; the queue must outlive the close callback (the loop's last run).
  void close();

 private:
  static void onTick(uv_timer_t* handle);
  void fireExpired();
  void schedule(uint64_t deadline);

  uv_loop_t* loop_;
  uv_timer_t handle_;
  uint64_t scheduled_ = UINT64_MAX;  // deadline the uv timer is set for
  std::vector<std::unique_ptr<TimerList>> lists_;
};

}  // namespace gw
