#pragma once
// What a filter keeps on a worker beyond one request, such as its connection to Redis.
// A resource is made on the worker's loop the first time a request there asks for it
// (by key, e.g. the Redis address), lives as long as the worker (a reload that keeps
// the key keeps the connection), and is closed on that loop before the worker ends.
// Loop-confined; filters reach it through Context::worker.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/core/loop_context.h"

namespace gw::filter {

class WorkerResource {
 public:
  virtual ~WorkerResource() = default;
  // The worker is stopping: start closing libuv handles. The loop runs once more (the
  // close callbacks) before the resource is destroyed. A resource's handles must not
  // keep the loop alive on their own (uv_unref), or the worker could not finish.
  virtual void close() = 0;
};

class WorkerResources {
 public:
  explicit WorkerResources(LoopContext& loop) : loop_(loop) {}
  WorkerResources(const WorkerResources&) = delete;
  WorkerResources& operator=(const WorkerResources&) = delete;

  LoopContext& loop() { return loop_; }

  // The resource under `key`, made by `make()` (returning std::unique_ptr<T>) when
  // there is none yet. Null after close(). One type per key.
  template <class T, class Make>
  T* get(std::string_view key, Make&& make) {
    if (closed_) return nullptr;
    for (auto& [k, r] : items_) {
      if (k == key) return static_cast<T*>(r.get());
    }
    std::unique_ptr<T> made = make();
    T* raw = made.get();
    items_.emplace_back(std::string(key), std::move(made));
    return raw;
  }

  // Closes every resource (see WorkerResource::close); they are destroyed with this.
  void close() {
    closed_ = true;
    for (auto& item : items_) item.second->close();
  }

 private:
  LoopContext& loop_;
  std::vector<std::pair<std::string, std::unique_ptr<WorkerResource>>> items_;
  bool closed_ = false;
};

}  // namespace gw::filter
