#include "gateway/health/dns_refresher.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "gateway/core/log.h"

namespace gw::health {
namespace {

bool isHostname(const config::Endpoint& e) { return !net::parseIpPort(e.host, e.port).has_value(); }

void setPort(net::SocketAddress& address, uint16_t port) {
  if (address.family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&address.storage)->sin_port = htons(port);
  } else if (address.family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&address.storage)->sin6_port = htons(port);
  }
}

bool sameSet(const std::vector<net::SocketAddress>& a, const std::vector<net::SocketAddress>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& x : a) {
    if (std::find(b.begin(), b.end(), x) == b.end()) return false;
  }
  return true;
}

}  // namespace

std::shared_ptr<config::Snapshot> withResolved(const config::Snapshot& snapshot,
                                               const Resolved& resolved) {
  std::shared_ptr<config::Snapshot> next;
  for (const auto& [service_name, service] : snapshot.services) {
    for (const auto& [pool_name, pool] : service.pools) {
      for (size_t i = 0; i < pool.endpoints.size(); ++i) {
        const config::Endpoint& e = pool.endpoints[i];
        auto it = resolved.find(e.host);
        if (it == resolved.end() || it->second.empty() || !isHostname(e)) continue;
        std::vector<net::SocketAddress> addresses = it->second;
        for (auto& a : addresses) setPort(a, e.port);
        if (sameSet(addresses, e.addresses)) continue;
        if (next == nullptr) next = std::make_shared<config::Snapshot>(snapshot);
        next->services[service_name].pools[pool_name].endpoints[i].addresses = std::move(addresses);
      }
    }
  }
  return next;
}

struct DnsRefresher::Lookup {
  uv_getaddrinfo_t req{};
  DnsRefresher* owner = nullptr;  // null once the refresher is gone
  std::string host;
};

DnsRefresher::DnsRefresher(LoopContext& ctx, std::function<void(const Resolved&)> on_round)
    : ctx_(ctx), on_round_(std::move(on_round)), timer_(this, &DnsRefresher::onTimer) {}

DnsRefresher::~DnsRefresher() { stop(); }

void DnsRefresher::apply(const config::Snapshot& snapshot) {
  if (stopped_) return;
  std::set<std::string> hosts;
  uint64_t interval = 0;
  for (const auto& [name, service] : snapshot.services) {
    uint64_t every = service.balancing.dns_refresh_ms;
    if (every == 0) continue;
    for (const auto& [pool_name, pool] : service.pools) {
      for (const config::Endpoint& e : pool.endpoints) {
        if (!isHostname(e)) continue;
        hosts.insert(e.host);
        interval = interval == 0 ? every : std::min(interval, every);
      }
    }
  }
  hosts_.assign(hosts.begin(), hosts.end());
  if (interval != interval_ms_ || !timer_.armed()) {
    interval_ms_ = interval;
    if (interval_ms_ == 0) {
      ctx_.timers().disarm(timer_);
    } else if (in_flight_.empty()) {
      ctx_.timers().arm(timer_, interval_ms_);
    }
  }
}

void DnsRefresher::stop() {
  stopped_ = true;
  ctx_.timers().disarm(timer_);
  for (Lookup* l : in_flight_) {
    l->owner = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&l->req));  // may fail if running: harmless
  }
  in_flight_.clear();
}

void DnsRefresher::onTimer(void* self) { static_cast<DnsRefresher*>(self)->startRound(); }

void DnsRefresher::startRound() {
  round_.clear();
  for (const std::string& host : hosts_) {
    auto* lookup = new Lookup;
    lookup->owner = this;
    lookup->host = host;
    lookup->req.data = lookup;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(ctx_.loop(), &lookup->req, &DnsRefresher::onResolved, host.c_str(),
                            nullptr, &hints);
    if (rc != 0) {
      delete lookup;
      finishLookup(host, rc, nullptr);
      continue;
    }
    in_flight_.push_back(lookup);
  }
  if (in_flight_.empty()) finishLookup("", 0, nullptr);  // nothing to wait for
}

void DnsRefresher::onResolved(uv_getaddrinfo_t* req, int status, addrinfo* result) {
  auto* lookup = static_cast<Lookup*>(req->data);
  DnsRefresher* self = lookup->owner;
  std::string host = std::move(lookup->host);
  if (self != nullptr) std::erase(self->in_flight_, lookup);
  delete lookup;
  if (self == nullptr) {
    uv_freeaddrinfo(result);
    return;
  }
  self->finishLookup(host, status, result);
  uv_freeaddrinfo(result);
}

void DnsRefresher::finishLookup(const std::string& host, int status, addrinfo* result) {
  if (!host.empty()) {
    std::vector<net::SocketAddress> addresses;
    for (addrinfo* ai = result; status == 0 && ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      if (ai->ai_addrlen > sizeof(net::SocketAddress::Storage)) continue;
      net::SocketAddress a;
      std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
      if (std::find(addresses.begin(), addresses.end(), a) == addresses.end()) {
        addresses.push_back(a);
      }
    }
    bool& failing = failing_[host];
    if (addresses.empty()) {
      failures_++;
      if (!failing) {
        log::warn("cannot re-resolve endpoint host; keeping its last addresses",
                  {log::str("host", host),
                   log::str("error", status != 0 ? uv_strerror(status) : "no address")});
      }
      failing = true;
    } else {
      if (failing) log::info("endpoint host resolves again", {log::str("host", host)});
      failing = false;
      round_[host] = std::move(addresses);
    }
  }
  if (!in_flight_.empty()) return;
  rounds_++;
  Resolved done = std::move(round_);
  round_.clear();
  on_round_(done);
  if (!stopped_ && interval_ms_ != 0) ctx_.timers().arm(timer_, interval_ms_);
}

}  // namespace gw::health
