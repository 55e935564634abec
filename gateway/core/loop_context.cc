#include "gateway/core/loop_context.h"

namespace gw {

LoopContext::LoopContext(uv_loop_t* loop)
    : loop_(loop), timers_(loop), slab_(new char[kReadSlabSize]), read_poller_(loop) {
  loop->data = this;
  uv_check_init(loop, &check_);
  check_.data = this;
  uv_check_start(&check_, &LoopContext::onCheck);
  uv_unref(reinterpret_cast<uv_handle_t*>(&check_));
  // Referenced: while work is deferred (idle active) the loop must run once more, even
  // if the deferral came from a close callback with nothing else left to keep it alive.
  uv_idle_init(loop, &idle_);
  costly_.next = costly_.prev = &costly_;
}

LoopContext::~LoopContext() = default;

namespace {
// A batch that grew past this (a large copied write) is freed rather than pooled.
constexpr size_t kMaxPooledCopyBytes = 64 * 1024;
constexpr size_t kMaxPooledEntries = 256;
}  // namespace

WriteBatch* LoopContext::takeWriteBatch() {
  WriteBatch* batch = free_batches_.take();
  return batch != nullptr ? batch : new WriteBatch;
}

void LoopContext::returnWriteBatch(WriteBatch* batch) {
  if (batch->copies.capacity() > kMaxPooledCopyBytes ||
      batch->entries.capacity() > kMaxPooledEntries) {
    delete batch;
    return;
  }
  batch->clear();
  if (!free_batches_.give(batch)) delete batch;
}

static void noop(uv_idle_t*) {}

void LoopContext::defer(void (*fn)(void*), void* arg) {
  if (deferred_.empty()) uv_idle_start(&idle_, &noop);
  deferred_.push_back({fn, arg});
}

bool LoopContext::takeCostlyTurn() {
  // Nothing jumps the queue: while older work waits, new work queues behind it.
  if (costly_budget_ == 0 || costly_.next != &costly_) return false;
  --costly_budget_;
  return true;
}

void LoopContext::queueCostly(CostlyWork& work, void (*fn)(void*), void* arg) {
  if (work.queued()) return;
  work.fn = fn;
  work.arg = arg;
  work.prev = costly_.prev;
  work.next = &costly_;
  costly_.prev->next = &work;
  costly_.prev = &work;
  uv_idle_start(&idle_, &noop);  // the poll phase must not block while work waits
}

void LoopContext::cancelCostly(CostlyWork& work) {
  if (!work.queued()) return;
  work.prev->next = work.next;
  work.next->prev = work.prev;
  work = CostlyWork{};
}

void LoopContext::onCheck(uv_check_t* handle) {
  auto* self = static_cast<LoopContext*>(handle->data);
  for (;;) {
    // Deferred work may defer more; run in rounds until none is left.
    while (!self->deferred_.empty()) {
      self->running_.swap(self->deferred_);
      for (const Deferred& d : self->running_) d.fn(d.arg);
      self->running_.clear();
    }
    // This turn's I/O is done: the oldest costly work gets what is left of the budget.
    if (self->costly_budget_ == 0 || self->costly_.next == &self->costly_) break;
    CostlyWork& work = *self->costly_.next;
    void (*fn)(void*) = work.fn;
    void* arg = work.arg;
    self->cancelCostly(work);
    --self->costly_budget_;
    fn(arg);
  }
  self->costly_budget_ = kCostlyPerTurn;
  if (self->costly_.next == &self->costly_) uv_idle_stop(&self->idle_);
}

void LoopContext::close() {
  timers_.close();
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
  read_poller_.close();
}

}  // namespace gw
