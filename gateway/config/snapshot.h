#pragma once
// The Snapshot: an immutable, fully validated picture of the configuration. The
// control thread builds it (config/loader.h) and hands a shared_ptr<const Snapshot>
// to every worker; an exchange keeps the snapshot it started with, so a reload never
// changes a request in flight. Nothing here is mutated after construction.
//
// Runtime state (connection pools, LB cursors, health) is NOT here: it lives in the
// workers, keyed by the stable identities below (service name, pool name, endpoint key).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/config/resilience.h"
#include "gateway/filter/chain.h"
#include "gateway/net/address.h"
#include "gateway/observe/access_log.h"
#include "gateway/observe/otlp.h"
#include "gateway/route/route.h"
#include "gateway/tls/context.h"

namespace gw::config {

// Where a value came from, for error messages and `--check` output.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
};

// Per-listener limits; [limits] gives the defaults, a listener's own `limits` table
// overrides single keys. Durations are in milliseconds, sizes in bytes.
struct Limits {
  uint32_t max_header_bytes = 16 * 1024;     // request line + headers; over: 431
  uint32_t max_headers = 100;                // header fields; over: 431
  uint64_t max_body = 10ull * 1024 * 1024;   // request body; over: 413
  uint64_t header_read_timeout_ms = 10'000;  // first byte to end of headers; over: 408
  uint64_t idle_timeout_ms = 60'000;         // keep-alive idle, and body inactivity
  uint64_t drain_timeout_ms = 30'000;        // graceful shutdown grace period
  // Over this window from the start of a drain, a growing share of responses carries
  // `Connection: close` (so clients do not all reconnect at once); -1: half the drain
  // timeout.
  int64_t drain_spread_ms = -1;
  uint32_t max_connections = 10'000;  // downstream connections per worker

  uint64_t drainSpreadMs() const {
    return drain_spread_ms >= 0 ? static_cast<uint64_t>(drain_spread_ms) : drain_timeout_ms / 2;
  }
};

// How the proxy identifies the client to upstreams (RFC 7239's de-facto cousins).
struct Forwarding {
  bool x_forwarded_for = true;
  bool x_forwarded_proto = true;
  bool x_forwarded_host = true;
  bool via = true;
  // Only a peer inside one of these may extend X-Forwarded-For / X-Forwarded-Proto;
  // from anyone else those headers are replaced.
  std::vector<net::Cidr> trusted_proxies;
};

// A listener's HTTP/2 limits (`http2 = { ... }`). Each flood defence closes the connection
// with GOAWAY ENHANCE_YOUR_CALM once more than `max_*` such frames arrive within
// `flood_window_ms`.
struct Http2Settings {
  uint32_t max_concurrent_streams = 100;
  uint32_t max_frame_size = 16 * 1024;       // SETTINGS_MAX_FRAME_SIZE we accept
  uint32_t stream_window = 256 * 1024;       // request body in flight per stream
  uint32_t connection_window = 1024 * 1024;  // request body in flight per connection
  uint64_t flood_window_ms = 10'000;
  uint32_t max_resets = 200;           // client RST_STREAMs (rapid reset, CVE-2023-44487)
  uint32_t max_control_frames = 1000;  // SETTINGS and PING frames
  uint32_t max_empty_frames = 200;     // DATA/HEADERS/CONTINUATION without payload
  uint32_t max_continuations = 8;      // CONTINUATION frames in one header block
};

struct Listener {
  std::string name;
  std::string listen;  // as written, "0.0.0.0:8080"
  net::SocketAddress address;
  Limits limits;
  // TLS termination (the `tls` table): certificates, SNI, versions. Null: plain TCP.
  std::shared_ptr<const tls::ServerContext> tls;
  // `redirect_to_https`: answer every request with 308 to https://host[:port]/target
  // (443 leaves the port out). 0: proxy as usual.
  uint16_t redirect_https_port = 0;
  // `http2`: serve HTTP/2 too: ALPN "h2" on a `tls` listener, prior knowledge (h2c, the
  // client preface) on a plain one. Off by default, like nginx's `http2 on`.
  bool http2 = false;
  Http2Settings http2_settings;
};

struct Endpoint {
  std::string key;  // "host:port" as written: the endpoint's stable identity
  std::string host;
  uint16_t port = 0;
  std::vector<net::SocketAddress> addresses;  // resolved at load; at least one
  uint32_t weight = 1;  // { address = "...", weight = 3 }: share for weighted policies
};

// Per-pool request and failure counters live in each worker's stats at this index
// (1..kPoolStatSlots-1; 0 = not counted). The index belongs to the name "service/pool"
// for the life of the process, so counts survive reloads (see poolStatsSlot()).
constexpr uint16_t kPoolStatSlots = 256;

struct Pool {
  std::string name;
  std::vector<Endpoint> endpoints;
  uint16_t stats_slot = 0;
  // Upstream TLS (the pool's `tls`): verification, SNI, client certificate. Null: TCP.
  std::shared_ptr<const tls::ClientContext> tls;
  // `protocol`: how requests go upstream. http1 (default); h2c: HTTP/2 with prior
  // knowledge over TCP; h2: HTTP/2 over the pool's TLS (ALPN "h2", required).
  enum class Protocol : uint8_t { Http1, H2c, H2 };
  Protocol protocol = Protocol::Http1;
  // HTTP/2 pools: streams per upstream connection at most (the server's
  // SETTINGS_MAX_CONCURRENT_STREAMS may lower it); full connections open another.
  uint32_t max_streams_per_connection = 100;
};

// "http1", "h2c", "h2".
const char* protocolName(Pool::Protocol protocol);

// A share of a service's new requests.
struct PoolWeight {
  std::string pool;
  uint32_t weight = 0;
};

// A canary: `pool` gets a growing share of a service's traffic, step by step, while the
// rest goes to `active`; if its error rate over `window` passes `max_error_rate`, all
// traffic goes back to `active` (rolled back). After the last step held for a whole
// interval at 100%, the canary is promoted: it serves everything.
struct Canary {
  std::string pool;
  std::vector<uint32_t> steps;  // percent of new requests to `pool`, in order
  uint64_t step_interval_ms = 60'000;
  double max_error_rate = 0.05;  // (5xx + upstream failures) / requests
  uint64_t window_ms = 60'000;
  uint32_t min_requests = 20;  // fewer requests in the window: no verdict yet
};

struct Service {
  std::string name;
  std::map<std::string, Pool> pools;  // at least one
  std::string active;                 // the pool that gets traffic (blue-green switch)
  std::string lb = "round_robin";
  uint64_t upstream_connect_timeout_ms = 5'000;    // over: 504
  uint64_t upstream_response_timeout_ms = 60'000;  // no response byte for this long: 504
  uint32_t max_idle_connections = 1024;            // per endpoint per worker
  uint64_t idle_connection_timeout_ms = 60'000;    // idle upstream connections close after
  // Weighted split of new requests between pools; empty: everything to `active`. From
  // `split` in the file, or set by the control thread while a canary runs.
  std::vector<PoolWeight> split;
  std::optional<Canary> canary;
  Balancing balancing;  // lb options, health, outlier, circuit breaker, retry (resilience.h)

  const Pool& activePool() const { return pools.at(active); }
};

struct Admin {
  std::string listen = "127.0.0.1:9901";
  std::optional<net::SocketAddress> address;  // nullopt: admin disabled (listen = "")
  // Bearer token every admin request but /health and /ready must carry; "" = none
  // (allowed only on a loopback address). From `token` or the file `token_file`.
  std::string token;
};

struct Log {
  std::string level = "info";  // debug | info | warn | error
};

// [metrics]: GET /metrics always answers; `enabled = false` stops the per-route and
// per-pool duration histograms and status counts on the request path (the process-wide
// counters stay), for measuring their cost.
struct Metrics {
  bool enabled = true;
};

struct ConfigDocument;  // the merged TOML (private to gateway/config; see describe.h)

struct Snapshot {
  std::string source;                   // the file it was loaded from, or "<flags>"
  std::vector<std::string> files;       // source and every file it includes
  std::string hash;                     // of every file's bytes: the config's version hash
  std::vector<std::string> watch_dirs;  // directories whose changes may change the config
  std::shared_ptr<const ConfigDocument> document;
  uint64_t version = 0;
  uint32_t workers = 0;  // resolved: never 0 ("auto" becomes the core count)
  Admin admin;
  Log log;
  observe::AccessLogSettings access_log;  // [access_log]; off unless the table is present
  Metrics metrics;
  observe::TracingSettings tracing;  // [tracing]: OTLP span export (off by default)
  Limits limits;                     // the [limits] defaults (listeners hold their resolved copy)
  // [limits] shutdown_delay (process-wide, not per listener): after SIGTERM, how long the
  // gateway keeps serving with /ready at 503 before it stops accepting and drains.
  uint64_t shutdown_delay_ms = 0;
  Forwarding forwarding;
  std::vector<Listener> listeners;
  std::map<std::string, Service> services;
  std::shared_ptr<const route::Router> router;
  // Filter chains by route index (router->routes()): the top-level `filters` first,
  // then the route's own. Built at load, so a reload rebuilds every factory.
  std::vector<filter::ChainConfig> route_filters;

  const filter::ChainConfig* filtersFor(size_t route_index) const {
    return route_index < route_filters.size() ? &route_filters[route_index] : nullptr;
  }

  const Service* findService(const std::string& name) const {
    auto it = services.find(name);
    return it == services.end() ? nullptr : &it->second;
  }
};

}  // namespace gw::config
