#include "gateway/core/timer.h"

namespace gw {

Timer::~Timer() {
  // Unlink so the queue never calls into a destroyed owner.
  if (next_ != nullptr) unlink();
}

TimerQueue::TimerQueue(uv_loop_t* loop) : loop_(loop) {
  uv_timer_init(loop, &handle_);
  handle_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&handle_));  // timers alone never keep a loop alive
}

TimerQueue::~TimerQueue() = default;

void TimerQueue::close() { uv_close(reinterpret_cast<uv_handle_t*>(&handle_), nullptr); }

void TimerQueue::disarm(Timer& t) {
  if (t.armed()) t.unlink();
}

void TimerQueue::arm(Timer& t, uint64_t duration_ms) {
  TimerList* list = nullptr;
  for (auto& l : lists_) {
    if (l->duration_ms == duration_ms) {
      list = l.get();
      break;
    }
  }
  if (list == nullptr) {
    lists_.push_back(std::make_unique<TimerList>());
    list = lists_.back().get();
    list->duration_ms = duration_ms;
  }
  if (t.armed()) t.unlink();
  t.deadline_ = uv_now(loop_) + duration_ms;
  Timer& anchor = list->anchor;
  t.prev_ = anchor.prev_;
  t.next_ = &anchor;
  anchor.prev_->next_ = &t;
  anchor.prev_ = &t;
  if (t.deadline_ < scheduled_) schedule(t.deadline_);
}

void TimerQueue::schedule(uint64_t deadline) {
  uint64_t now = uv_now(loop_);
  scheduled_ = deadline;
  uv_timer_start(&handle_, &TimerQueue::onTick, deadline > now ? deadline - now : 0, 0);
}

void TimerQueue::onTick(uv_timer_t* handle) {
  static_cast<TimerQueue*>(handle->data)->fireExpired();
}

void TimerQueue::fireExpired() {
  scheduled_ = UINT64_MAX;
  uint64_t now = uv_now(loop_);
  // A callback may arm or disarm any timer, so take one expired head at a time: the
  // earliest across all lists, so timers fire in deadline order even when the loop is
  // late.
  for (;;) {
    Timer* earliest = nullptr;
    for (auto& l : lists_) {
      Timer* head = l->head();
      if (head != nullptr && head->deadline_ <= now &&
          (earliest == nullptr || head->deadline_ < earliest->deadline_)) {
        earliest = head;
      }
    }
    if (earliest == nullptr) break;
    earliest->unlink();
    earliest->callback_(earliest->owner_);
  }
  uint64_t next = UINT64_MAX;
  for (auto& l : lists_) {
    Timer* head = l->head();
    if (head != nullptr && head->deadline_ < next) next = head->deadline_;
  }
  if (next != UINT64_MAX) schedule(next);
}

}  // namespace gw
