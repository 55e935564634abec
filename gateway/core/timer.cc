#include "gateway/core/timer.h"

namespace gw {

Timer::~Timer() {
  if (list_ != nullptr) {
    // Unlink so the queue never calls into a destroyed owner.
    if (prev_)
      prev_->next_ = next_;
    else
      list_->head = next_;
    if (next_)
      next_->prev_ = prev_;
    else
      list_->tail = prev_;
  }
}

TimerQueue::TimerQueue(uv_loop_t* loop) : loop_(loop) {
  uv_timer_init(loop, &handle_);
  handle_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&handle_));  // timers alone never keep a loop alive
}

TimerQueue::~TimerQueue() = default;

void TimerQueue::close() { uv_close(reinterpret_cast<uv_handle_t*>(&handle_), nullptr); }

void TimerQueue::unlink(Timer& t) {
  TimerList* list = t.list_;
  if (t.prev_)
    t.prev_->next_ = t.next_;
  else
    list->head = t.next_;
  if (t.next_)
    t.next_->prev_ = t.prev_;
  else
    list->tail = t.prev_;
  t.prev_ = t.next_ = nullptr;
  t.list_ = nullptr;
}

void TimerQueue::disarm(Timer& t) {
  if (t.list_ != nullptr) unlink(t);
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
  if (t.list_ != nullptr) unlink(t);
  t.deadline_ = uv_now(loop_) + duration_ms;
  t.list_ = list;
  t.prev_ = list->tail;
  t.next_ = nullptr;
  if (list->tail)
    list->tail->next_ = &t;
  else
    list->head = &t;
  list->tail = &t;
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
      Timer* head = l->head;
      if (head != nullptr && head->deadline_ <= now &&
          (earliest == nullptr || head->deadline_ < earliest->deadline_)) {
        earliest = head;
      }
    }
    if (earliest == nullptr) break;
    unlink(*earliest);
    earliest->callback_(earliest->owner_);
  }
  uint64_t next = UINT64_MAX;
  for (auto& l : lists_) {
    if (l->head != nullptr && l->head->deadline_ < next) next = l->head->deadline_;
  }
  if (next != UINT64_MAX) schedule(next);
}

}  // namespace gw
