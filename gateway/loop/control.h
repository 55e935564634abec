#pragma once
// The control thread (the process's main thread): starts the workers, owns signals, the
// admin listener and the config watcher, builds new snapshots and hands them to the
// workers, and coordinates graceful shutdown. It never touches a worker's request path.
//
// Its code is split by concern: control.cc (startup, signals, shutdown, worker events),
// control_reload.cc (file watch, reload, publish), control_admin.cc (what the admin API
// reads and changes: stats, services, flips and their state file).

#include <uv.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gateway/admin/admin_server.h"
#include "gateway/config/active_overrides.h"
#include "gateway/config/loader.h"
#include "gateway/config/snapshot.h"
#include "gateway/core/loop_context.h"
#include "gateway/core/timer.h"
#include "gateway/health/checker.h"
#include "gateway/health/dns_refresher.h"
#include "gateway/loop/worker.h"

namespace gw::observe {
class PrometheusWriter;
}

namespace gw::loop {

// Runs the gateway until SIGTERM/SIGINT and a graceful drain. Returns the exit code.
// `overrides` (flags and environment) apply again to every reload of the file.
int runGateway(std::shared_ptr<const config::Snapshot> snapshot, config::Overrides overrides = {});

class Control {
 public:
  explicit Control(std::shared_ptr<const config::Snapshot> snapshot,
                   config::Overrides overrides = {})
      : snapshot_(std::move(snapshot)), env_overrides_(std::move(overrides)) {}

  int run();

  // Control thread only: whether `service`'s `pool` (in the running config) has at least
  // one endpoint that active health checks do not report down. Endpoints of a service
  // without health_check, and endpoints not checked yet, count as healthy. False for an
  // unknown service or pool. (For refusing a blue-green flip to an unhealthy pool.)
  bool poolHasHealthyEndpoint(const std::string& service, const std::string& pool) const;

 private:
  bool resolveListenAddresses(const config::Snapshot& snapshot,
                              std::vector<net::SocketAddress>& out,
                              std::vector<uv_tcp_t*>& placeholders);
  // Loads the config file again and publishes it to every worker; on any error the
  // running config stays. Returns a JSON summary (for the admin API).
  std::string reload(const char* trigger);
  // Blue/green flip through the admin API (pool "" = the other of exactly two pools).
  // Refused (409) when no endpoint of the new pool passes its health checks, unless forced.
  admin::AdminReply setActive(const std::string& service, const std::string& pool, bool force);
  admin::AdminReply servicesJson() const;
  // GET /config: the effective config, its version hash, the last reload.
  admin::AdminReply configJson() const;
  // POST /config/diff: what reloading `toml` ("" = the files on disk) would change.
  admin::AdminReply diffJson(const std::string& toml);
  // Sends `next` to every worker (bind addresses as resolved) and makes it current.
  // Returns once every worker has applied it (or after 5 s: last_publish_complete_).
  void publish(std::shared_ptr<const config::Snapshot> next,
               std::vector<net::SocketAddress> addresses);
  void loadOverrides();
  // file_snapshot_ with the admin-API flips that still hold (logs and saves any dropped).
  std::shared_ptr<const config::Snapshot> withOverrides();
  void saveOverrides();
  // Watches the directories of the config's files (reconciled after each reload).
  void watchConfigFiles();
  void stopWatching();
  static void onFsEvent(uv_fs_event_t* handle, const char* filename, int events, int status);
  static void onReloadDebounce(void* self);
  // Graceful shutdown, in two phases: /ready turns 503 at once; after the config's
  // shutdown_delay (skipped when `use_delay` is false) the workers stop accepting and
  // drain for up to drain_timeout. A second call during the delay starts the drain now.
  void beginShutdown(const char* why, bool use_delay = true);
  void startDrain();
  static void onShutdownDelay(void* self);
  std::string statsJson() const;
  // --- /metrics and /debug (control_metrics.cc) ---
  std::string metricsText() const;
  admin::AdminReply debugWorkersJson() const;
  admin::AdminReply debugMemoryJson() const;
  void appendCounter(observe::PrometheusWriter& out, const char* name, const char* help,
                     uint64_t value) const;
  void appendGauge(observe::PrometheusWriter& out, const char* name, const char* help,
                   double value) const;
  void appendProcessMetrics(observe::PrometheusWriter& out) const;
  void appendConfigMetrics(observe::PrometheusWriter& out) const;
  void appendDownstreamMetrics(observe::PrometheusWriter& out) const;
  void appendRouteMetrics(observe::PrometheusWriter& out) const;
  void appendPoolMetrics(observe::PrometheusWriter& out) const;
  void appendEndpointMetrics(observe::PrometheusWriter& out) const;
  void appendBalancingMetrics(observe::PrometheusWriter& out) const;
  void appendTlsMetrics(observe::PrometheusWriter& out) const;
  void appendHttp2Metrics(observe::PrometheusWriter& out) const;
  void appendFilterMetrics(observe::PrometheusWriter& out) const;
  void appendWorkerMetrics(observe::PrometheusWriter& out) const;
  void appendAccessLogMetrics(observe::PrometheusWriter& out) const;
  void appendTraceExportMetrics(observe::PrometheusWriter& out) const;
  // --- TLS (control_tls.cc) ---
  // Appends ",\"tls_handshakes\":N,..." (the workers' TLS counters, summed).
  void appendTlsStats(std::string& out) const;
  // Watches the directories of the running config's certificate, key and CA files; a
  // change to their contents reloads the config (which re-reads and re-checks them).
  void watchTlsFiles();
  void closeTlsWatchers();
  static void onTlsFsEvent(uv_fs_event_t* handle, const char* filename, int events, int status);
  static void onTlsDebounce(void* self);
  static void onSignal(uv_signal_t* handle, int signum);
  static void onWorkerExit(uv_async_t* handle);
  static void onWorkerApplied(uv_async_t* handle);

  std::shared_ptr<const config::Snapshot> snapshot_;       // what the workers serve
  std::shared_ptr<const config::Snapshot> file_snapshot_;  // as the file says (no flips)
  config::Overrides env_overrides_;  // flags and GATEWAY_* variables, for every reload
  config::ActiveOverrides overrides_;
  std::string state_path_;
  uv_loop_t loop_{};
  std::unique_ptr<LoopContext> ctx_;
  std::vector<net::SocketAddress> bind_addresses_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<admin::AdminServer> admin_;
  // Active health checks and DNS re-resolution (control_health.cc).
  std::unique_ptr<health::HealthChecker> health_;
  std::unique_ptr<health::DnsRefresher> dns_;
  void startHealthChecks();
  void applyHealth(const config::Snapshot& snapshot);
  void stopHealth();
  void onDnsRound(const health::Resolved& resolved);
  void appendHealthStats(std::string& out) const;
  void appendServiceHealth(std::string& out, const config::Service& service) const;
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  uv_signal_t sigusr1_{};  // reopen the access log files (logrotate)
  uv_async_t worker_exit_{};
  uv_async_t worker_applied_{};
  std::atomic<uint64_t> applied_count_{0};  // acknowledgements from workers, all reloads
  uint64_t applied_expected_ = 0;
  uint64_t applied_logged_version_ = 1;
  uint64_t last_publish_us_ = 0;  // from publish() until every worker had applied it
  bool last_publish_complete_ = true;
  std::map<std::string, uv_fs_event_t*> watchers_;  // by directory; freed on close
  std::unique_ptr<Timer> debounce_;

  // Canaries (control_canary.cc): one run per service with a `canary` table.
  struct CanaryRun {
    enum class Status { Running, Promoted, RolledBack };
    std::string identity;  // the canary config and active pool: a change starts over
    Status status = Status::Running;
    size_t step = 0;
    uint64_t step_started_ms = 0;
    struct Sample {
      uint64_t ms, requests, failures;
    };
    std::vector<Sample> samples;  // cumulative counts of the canary pool, one per tick
    double error_rate = 0;        // over the window, at the last tick
    uint64_t window_requests = 0;
    std::string reason;  // why it was rolled back
  };
  // Starts, keeps or ends runs for the services of `next`, and returns `next` with each
  // canary's current split applied.
  std::shared_ptr<const config::Snapshot> withCanaries(
      std::shared_ptr<const config::Snapshot> next);
  static void onCanaryTick(void* self);
  void canaryTick();
  std::string canaryJson(const std::string& service) const;
  std::map<std::string, CanaryRun> canaries_;
  uint64_t canary_rollbacks_ = 0;
  uint64_t canary_promotions_ = 0;
  std::unique_ptr<Timer> canary_timer_;
  std::string config_fingerprint_;     // the running config's files (to skip no-op events)
  std::string attempted_fingerprint_;  // those of the last reload attempt
  uint64_t config_version_ = 1;
  uint64_t reloads_ok_ = 0;
  uint64_t reloads_failed_ = 0;
  std::string last_reload_error_;
  std::string last_reload_time_;
  bool last_reload_ok_ = true;  // when the last reload was attempted (UTC, ISO 8601)
  // TLS (control_tls.cc).
  std::vector<uv_fs_event_t*> tls_watchers_;  // closed (and freed) by closeTlsWatchers
  std::unique_ptr<Timer> tls_debounce_;
  std::string tls_files_text_;  // the TLS files' contents when last loaded or tried
  std::atomic<unsigned> workers_exited_{0};
  std::atomic<bool> draining_{false};  // /ready answers 503 (shutdown began)
  bool drain_started_ = false;         // the workers were told to drain
  const char* shutdown_reason_ = "";
  std::unique_ptr<Timer> shutdown_delay_;
  bool shutting_down_ = false;
};

}  // namespace gw::loop
