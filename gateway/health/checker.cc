#include "gateway/health/checker.h"

#include <uv.h>

#include <charconv>

#include "gateway/core/log.h"
#include "gateway/net/tcp_transport.h"

namespace gw::health {

namespace {
std::string probeKey(const std::string& service, const std::string& endpoint) {
  return service + "\n" + endpoint;
}
constexpr size_t kMaxStatusLine = 1024;
}  // namespace

// One connection of one check. Owns its transport and frees itself in the transport's
// close callback; its probe may be gone by then (probe_ is cleared).
class Attempt final : public net::TransportHandler {
 public:
  Attempt(LoopContext& ctx, Probe* probe) : transport_(ctx), probe_(probe) {
    transport_.setHandler(this);
  }
  net::TcpTransport& transport() { return transport_; }
  void detach() { probe_ = nullptr; }
  void close() { transport_.close(); }

  static void onConnected(void* self, int status);
  void onRead(const char* data, size_t length) override;
  void onReadEnd(int status) override;
  void onWriteError(int status) override;
  void onClosed() override { delete this; }

 private:
  void finish(bool passed, const std::string& detail);

  net::TcpTransport transport_;
  Probe* probe_;
  std::string head_;
};

class Probe {
 public:
  Probe(HealthChecker& checker, std::string service, std::string endpoint)
      : checker_(checker),
        service_(std::move(service)),
        endpoint_(std::move(endpoint)),
        interval_timer_(this, &Probe::onInterval),
        timeout_timer_(this, &Probe::onTimeout) {}
  ~Probe() { stop(); }

  void configure(const config::HealthCheck& settings, const config::Endpoint& endpoint,
                 std::shared_ptr<upstream::EndpointHealth> health) {
    settings_ = settings;
    address_ = endpoint.addresses.front();
    host_ = settings.host.empty() ? endpoint.key : settings.host;
    health_ = std::move(health);
    request_ = "GET " + settings_.path + " HTTP/1.1\r\nHost: " + host_ +
               "\r\nUser-Agent: gateway-health-check\r\nConnection: close\r\n\r\n";
  }
  void schedule(uint64_t delay_ms) { checker_.ctx_.timers().arm(interval_timer_, delay_ms); }
  void stop() {
    checker_.ctx_.timers().disarm(interval_timer_);
    checker_.ctx_.timers().disarm(timeout_timer_);
    if (attempt_ != nullptr) {
      attempt_->detach();
      attempt_->close();
      attempt_ = nullptr;
    }
  }

  // Called by the attempt (once) or the timeout.
  void result(bool passed, const std::string& detail) {
    checker_.ctx_.timers().disarm(timeout_timer_);
    if (attempt_ != nullptr) {
      attempt_->detach();
      attempt_->close();
      attempt_ = nullptr;
    }
    checker_.onResult(*this, passed, detail);
  }

  const std::string& service() const { return service_; }
  const std::string& endpoint() const { return endpoint_; }
  const config::HealthCheck& settings() const { return settings_; }
  const std::string& request() const { return request_; }
  upstream::EndpointHealth& health() { return *health_; }

  bool checked = false;
  bool healthy = true;
  uint32_t passes = 0;    // consecutive
  uint32_t failures = 0;  // consecutive

 private:
  static void onInterval(void* self) { static_cast<Probe*>(self)->start(); }
  static void onTimeout(void* self) { static_cast<Probe*>(self)->result(false, "timeout"); }
  void start() {
    if (attempt_ != nullptr) return;  // previous check still running (cannot happen: timeout)
    attempt_ = new Attempt(checker_.ctx_, this);
    int rc = attempt_->transport().connect(address_, attempt_, &Attempt::onConnected);
    if (rc != 0) {
      result(false, std::string("connect: ") + uv_strerror(rc));
      return;
    }
    checker_.ctx_.timers().arm(timeout_timer_, settings_.timeout_ms);
  }

  HealthChecker& checker_;
  std::string service_;
  std::string endpoint_;
  config::HealthCheck settings_;
  net::SocketAddress address_;
  std::string host_;
  std::string request_;
  std::shared_ptr<upstream::EndpointHealth> health_;
  Timer interval_timer_;
  Timer timeout_timer_;
  Attempt* attempt_ = nullptr;
};

void Attempt::onConnected(void* self, int status) {
  auto* a = static_cast<Attempt*>(self);
  if (status != 0) {
    a->finish(false, std::string("connect: ") + uv_strerror(status));
    return;
  }
  const std::string& request = a->probe_->request();
  a->transport_.stage(request.data(), request.size());
  a->transport_.startReading();
  if (!a->transport_.flush()) a->finish(false, "write failed");
}

void Attempt::onRead(const char* data, size_t length) {
  if (probe_ == nullptr) return;
  head_.append(data, std::min(length, kMaxStatusLine - std::min(head_.size(), kMaxStatusLine)));
  size_t eol = head_.find('\n');
  if (eol == std::string::npos) {
    if (head_.size() >= kMaxStatusLine) finish(false, "status line too long");
    return;
  }
  // "HTTP/1.1 200 OK"
  uint32_t status = 0;
  bool valid = head_.size() > 12 && head_.compare(0, 7, "HTTP/1.") == 0 && head_[8] == ' ';
  if (valid) {
    auto [p, ec] = std::from_chars(head_.data() + 9, head_.data() + 12, status);
    valid = ec == std::errc() && p == head_.data() + 12;
  }
  if (!valid) {
    finish(false, "invalid status line");
    return;
  }
  const config::HealthCheck& s = probe_->settings();
  bool passed = status >= s.expected_min && status <= s.expected_max;
  finish(passed, "status " + std::to_string(status));
}

void Attempt::onReadEnd(int status) {
  finish(false, status == UV_EOF ? "closed before a status line" : uv_strerror(status));
}

void Attempt::onWriteError(int) { finish(false, "write failed"); }

void Attempt::finish(bool passed, const std::string& detail) {
  Probe* probe = probe_;
  if (probe == nullptr) return;
  probe_ = nullptr;
  probe->result(passed, detail);  // detaches and closes this attempt
}

// ---------------------------------------------------------------- HealthChecker

HealthChecker::HealthChecker(LoopContext& ctx, upstream::HealthBoard& board)
    : ctx_(ctx), board_(board), rng_(uv_hrtime()) {}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::apply(const config::Snapshot& snapshot) {
  if (stopped_) return;
  std::unordered_map<std::string, std::unique_ptr<Probe>> next;
  for (const auto& [service_name, service] : snapshot.services) {
    const config::HealthCheck& settings = service.balancing.health_check;
    if (!settings.enabled) continue;
    for (const auto& [pool_name, pool] : service.pools) {
      for (const config::Endpoint& endpoint : pool.endpoints) {
        std::string key = probeKey(service_name, endpoint.key);
        if (next.count(key) != 0) continue;  // the same endpoint in two pools: one probe
        std::unique_ptr<Probe> probe;
        auto old = probes_.find(key);
        bool fresh = old == probes_.end();
        if (fresh) {
          probe = std::make_unique<Probe>(*this, service_name, endpoint.key);
        } else {
          probe = std::move(old->second);
        }
        probe->configure(settings, endpoint, board_.entry(service_name, endpoint.key));
        // A new probe checks soon (spread by the jitter); a kept one keeps its rhythm.
        if (fresh) probe->schedule(settings.jitter_ms == 0 ? 0 : rng_.below(settings.jitter_ms));
        next[key] = std::move(probe);
      }
    }
  }
  probes_ = std::move(next);  // removed probes stop in their destructor
  board_.prune();
}

void HealthChecker::stop() {
  stopped_ = true;
  probes_.clear();
}

void HealthChecker::onResult(Probe& probe, bool passed, const std::string& detail) {
  const config::HealthCheck& s = probe.settings();
  if (passed) {
    counters_.checks_passed++;
    probe.passes++;
    probe.failures = 0;
  } else {
    counters_.checks_failed++;
    probe.failures++;
    probe.passes = 0;
    log::debug("health check failed",
               {log::str("service", probe.service()), log::str("endpoint", probe.endpoint()),
                log::str("detail", detail)});
  }
  bool was_checked = probe.checked;
  probe.checked = true;
  bool change_up = !probe.healthy && probe.passes >= s.healthy;
  bool change_down = probe.healthy && (!was_checked ? !passed : probe.failures >= s.unhealthy);
  if (change_up || change_down) {
    probe.healthy = change_up;
    upstream::EndpointHealth& health = probe.health();
    health.healthy.store(probe.healthy, std::memory_order_relaxed);
    health.generation.store(health.generation.load(std::memory_order_relaxed) + 1,
                            std::memory_order_relaxed);
    if (change_up) {
      counters_.marked_up++;
      log::info("endpoint healthy",
                {log::str("service", probe.service()), log::str("endpoint", probe.endpoint()),
                 log::num("passes", probe.passes)});
    } else {
      counters_.marked_down++;
      log::warn("endpoint unhealthy",
                {log::str("service", probe.service()), log::str("endpoint", probe.endpoint()),
                 log::num("failures", probe.failures), log::str("detail", detail)});
    }
  }
  uint64_t delay = s.interval_ms + (s.jitter_ms == 0 ? 0 : rng_.below(s.jitter_ms + 1));
  probe.schedule(delay);
}

bool HealthChecker::poolHasHealthyEndpoint(const config::Snapshot& snapshot,
                                           const std::string& service,
                                           const std::string& pool) const {
  const config::Service* s = snapshot.findService(service);
  if (s == nullptr) return false;
  auto p = s->pools.find(pool);
  if (p == s->pools.end()) return false;
  for (const config::Endpoint& endpoint : p->second.endpoints) {
    auto it = probes_.find(probeKey(service, endpoint.key));
    if (it == probes_.end() || it->second->healthy) return true;
  }
  return false;
}

const char* HealthChecker::endpointState(const std::string& service,
                                         const std::string& endpoint) const {
  auto it = probes_.find(probeKey(service, endpoint));
  if (it == probes_.end()) return "not_checked";
  if (!it->second->checked) return "unchecked";
  return it->second->healthy ? "healthy" : "unhealthy";
}

}  // namespace gw::health
