#include "gateway/core/read_poller.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace gw {

ReadPoller::ReadPoller(uv_loop_t* loop) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  // Without it no connection could read: as fatal as failing to create the loop.
  if (epfd_ < 0 || uv_poll_init(loop, &poll_, epfd_) != 0) {
    std::perror("gateway: cannot create the read poller's epoll instance");
    std::abort();
  }
  poll_.data = this;
  uv_poll_start(&poll_, UV_READABLE, &ReadPoller::onPoll);
  // Only while a socket is reading does the poller keep the loop alive (retain()).
  uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
  uv_idle_init(loop, &idle_);
  idle_.data = this;
}

ReadPoller::~ReadPoller() {
  // close() hands the descriptor to the poll handle's close callback; a poller that
  // was never closed (its loop torn down without a final run) still releases it.
  if (epfd_ >= 0 && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&poll_))) ::close(epfd_);
}

int ReadPoller::watch(int fd, void* reader, ReadyFn ready) {
  ready_ = ready;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;  // errors and hang-ups come unasked
  ev.data.ptr = reader;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) return -errno;
  return 0;
}

void ReadPoller::post(void* reader) {
  if (posted_.empty()) uv_idle_start(&idle_, &ReadPoller::onIdle);
  posted_.push_back(reader);
}

void ReadPoller::unpost(void* reader) {
  if (posted_.empty() && running_.empty()) return;  // the usual case: nothing to look at
  posted_.erase(std::remove(posted_.begin(), posted_.end(), reader), posted_.end());
  std::replace(running_.begin(), running_.end(), reader, static_cast<void*>(nullptr));
  if (posted_.empty()) uv_idle_stop(&idle_);
}

void ReadPoller::onPoll(uv_poll_t* handle, int, int) {
  auto* self = static_cast<ReadPoller*>(handle->data);
  int n = ::epoll_wait(self->epfd_, self->events_, kBatch, 0);
  // More than a batch ready: the epoll descriptor stays readable and libuv, which
  // polls it level-triggered, reports it again next turn.
  for (int i = 0; i < n; ++i) self->ready_(self->events_[i].data.ptr, self->events_[i].events);
}

void ReadPoller::onIdle(uv_idle_t* handle) {
  auto* self = static_cast<ReadPoller*>(handle->data);
  // Readers posted while these run wait for the next turn.
  self->running_.swap(self->posted_);
  uv_idle_stop(&self->idle_);
  for (size_t i = 0; i < self->running_.size(); ++i) {
    if (void* reader = self->running_[i]) self->ready_(reader, kPostedEvents);
  }
  self->running_.clear();
}

void ReadPoller::close() {
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), &ReadPoller::onPollClosed);
}

void ReadPoller::onPollClosed(uv_handle_t* handle) {
  auto* self = static_cast<ReadPoller*>(handle->data);
  ::close(self->epfd_);
  self->epfd_ = -1;
}

}  // namespace gw
