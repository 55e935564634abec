#pragma once
// A route's chain (ChainConfig, built at config load, immutable, in the Snapshot) and
// one request's run through it (ChainRun, owned by the exchange and pooled with it).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/filter/filter.h"

namespace gw::filter {

// Per-worker counters of local replies by filter type use this index (1..kFilterStatSlots-1;
// 0 = not counted), the same for a type name for the life of the process. Thread-safe.
constexpr uint16_t kFilterStatSlots = 64;
uint16_t filterTypeSlot(const std::string& type);
// The type name of every slot in use, by slot ("" at 0).
std::vector<std::string> filterTypeSlotNames();

struct ChainConfig {
  // The chain for all routes, then the route's own, in config order.
  std::vector<std::shared_ptr<const FilterFactory>> factories;
  std::vector<std::string> types;    // each factory's `type`, for logs and tests
  std::vector<uint16_t> type_slots;  // filterTypeSlot() of each type, for counters
  bool request_body = false;         // some filter wants request body chunks
  bool response_body = false;        // some filter wants response body chunks

  bool empty() const { return factories.empty(); }
  void append(std::string type, std::shared_ptr<const FilterFactory> factory);
};

class ChainRun {
 public:
  // Where a paused chain reports its outcome (Continue or Respond) once the filter
  // resumes it. Called from the resuming filter's callback, never from inside start()
  // or runRequestHeaders().
  using ResumeFn = void (*)(void* owner, Status status);

  ChainRun() { ctx_.run_ = this; }
  ChainRun(const ChainRun&) = delete;
  ChainRun& operator=(const ChainRun&) = delete;
  ~ChainRun() { reset(); }

  void setOwner(void* owner, ResumeFn fn) {
    owner_ = owner;
    on_resume_ = fn;
  }

  // Makes the request's filters. The caller then fills context().request.
  Context& start(const ChainConfig& config);
  bool active() const { return config_ != nullptr; }
  bool paused() const { return paused_; }
  Context& context() { return ctx_; }
  const ChainConfig* config() const { return config_; }

  // Runs the request-header phase from where it stopped. Continue: every filter
  // continued. Respond: context().reply is set. Pause: wait for the owner's ResumeFn.
  Status runRequestHeaders();
  Status runRequestBody(std::string_view chunk, bool end);
  // The response phase over the filters that continued, newest first.
  void runResponseHeaders(int status, const http::MessageHead* head);
  void runResponseBody(std::string_view chunk, bool end);

  // After a Respond: the stats slot of the filter type that replied (0: unknown).
  uint16_t repliedSlot() const {
    return replied_by_ < config_->type_slots.size() ? config_->type_slots[replied_by_] : 0;
  }

  // Ends the request: onDestroy() on every filter, then the arena is emptied.
  void reset();

 private:
  friend class Context;
  void resumeFromFilter(Status status);

  const ChainConfig* config_ = nullptr;
  std::vector<Filter*> filters_;
  size_t next_ = 0;               // the next filter whose request-header phase runs
  size_t passed_ = 0;             // filters whose request-header phase returned Continue
  size_t replied_by_ = SIZE_MAX;  // the filter whose request phase returned Respond
  bool in_call_ = false;
  bool paused_ = false;
  bool response_ran_ = false;
  bool has_deferred_ = false;
  Status deferred_ = Status::Continue;
  void* owner_ = nullptr;
  ResumeFn on_resume_ = nullptr;
  Context ctx_;
};

}  // namespace gw::filter
