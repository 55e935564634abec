#pragma once
// Re-resolves the hostname endpoints of the running config on an interval, from the
// control thread, with uv_getaddrinfo (libuv's thread pool: no loop blocks). A lookup
// that fails leaves the host out of the results, so its endpoints keep their last good
// addresses. The control thread turns changed results into a new snapshot
// (withResolved) and publishes it like a reload.

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gateway/config/snapshot.h"
#include "gateway/core/loop_context.h"
#include "gateway/core/timer.h"

namespace gw::health {

// Host -> its addresses (port 0), only for hosts whose lookup succeeded.
using Resolved = std::map<std::string, std::vector<net::SocketAddress>>;

// A copy of `snapshot` whose hostname endpoints take the addresses in `resolved` (with
// their own ports), or nullptr when no endpoint's addresses change. Hosts missing from
// `resolved`, or resolved to nothing, keep their addresses.
std::shared_ptr<config::Snapshot> withResolved(const config::Snapshot& snapshot,
                                               const Resolved& resolved);

class DnsRefresher {
 public:
  // `on_round` runs on the control loop after each round, with what resolved.
  DnsRefresher(LoopContext& ctx, std::function<void(const Resolved&)> on_round);
  ~DnsRefresher();
  DnsRefresher(const DnsRefresher&) = delete;
  DnsRefresher& operator=(const DnsRefresher&) = delete;

  // The hosts to refresh and the interval (the smallest dns_refresh of the services
  // that name a host). Safe to call from on_round.
  void apply(const config::Snapshot& snapshot);
  void stop();
  uint64_t rounds() const { return rounds_; }
  uint64_t failures() const { return failures_; }

 private:
  struct Lookup;
  static void onTimer(void* self);
  static void onResolved(uv_getaddrinfo_t* req, int status, addrinfo* result);
  void startRound();
  void finishLookup(const std::string& host, int status, addrinfo* result);

  LoopContext& ctx_;
  std::function<void(const Resolved&)> on_round_;
  Timer timer_;
  std::vector<std::string> hosts_;
  uint64_t interval_ms_ = 0;
  std::vector<Lookup*> in_flight_;
  Resolved round_;
  std::map<std::string, bool> failing_;  // host -> its last lookup failed (log once)
  uint64_t rounds_ = 0;
  uint64_t failures_ = 0;
  bool stopped_ = false;
};

}  // namespace gw::health
