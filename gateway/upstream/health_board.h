#pragma once
// Active health-check verdicts, from the control thread (gateway/health) to the workers.
//
// One EndpointHealth per (service, endpoint key) that has checks configured. The control
// thread is its only writer; workers read it on the request path with a relaxed atomic
// load: no lock, no message per verdict. Entries are found (and created) only when a
// snapshot is applied, under the board's mutex, never per request. An entry lives as
// long as anyone holds it, so a reload that keeps the endpoint keeps its verdict.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace gw::upstream {

struct EndpointHealth {
  std::atomic<bool> healthy{true};      // optimistic until checks say otherwise
  std::atomic<uint64_t> generation{0};  // bumped on every change (slow start restarts)
};

class HealthBoard {
 public:
  // The process's board (workers and the control thread of one gateway share it).
  static HealthBoard& process();

  // The entry of `service`'s `endpoint`, created healthy when new.
  std::shared_ptr<EndpointHealth> entry(const std::string& service, const std::string& endpoint);
  // The entry, or nullptr when no one created it.
  std::shared_ptr<EndpointHealth> find(const std::string& service,
                                       const std::string& endpoint) const;
  // Drops entries nobody else holds (after a reload removed their checks).
  void prune();

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<EndpointHealth>> entries_;
};

}  // namespace gw::upstream
