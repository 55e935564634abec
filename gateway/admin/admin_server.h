#pragma once
// The admin listener (control thread): small operational endpoints, one request per
// connection, JSON answers: GET /health (also /healthz: the process is up), GET /ready
// (503 while draining), GET /stats (counters summed over workers), GET /metrics
// (Prometheus text format), GET /debug/workers, GET /debug/memory, GET /config (the
// effective config, its version hash, the last reload), POST /config/reload,
// POST /config/diff (what a reload would change), GET /services,
// POST /services/NAME/flip, PUT /services/NAME/active.
//
// With a token configured, every request but /health and /ready (probes) must carry
// `Authorization: Bearer TOKEN`, else 401.

#include <uv.h>

#include <functional>
#include <string>

#include "gateway/core/loop_context.h"
#include "gateway/net/address.h"

namespace gw::admin {

// A handler's answer: HTTP status and a JSON body.
struct AdminReply {
  int status = 200;
  std::string json;  // the body (JSON unless content_type says otherwise)
  const char* content_type = "application/json";
};

struct AdminHandlers {
  std::function<std::string()> token;  // the bearer token now ("" = none)
  std::function<bool()> ready;
  std::function<std::string()> stats_json;
  std::function<std::string()> metrics;       // GET /metrics: Prometheus text format
  std::function<AdminReply()> debug_workers;  // GET /debug/workers
  std::function<AdminReply()> debug_memory;   // GET /debug/memory
  std::function<AdminReply()> heap_dump;      // POST /debug/heap/dump
  std::function<std::string()> reload;        // POST /config/reload: JSON result
  std::function<AdminReply()> services;       // GET /services
  std::function<AdminReply()> config;         // GET /config
  // POST /config/diff: the running config against the body (TOML) or, with an empty
  // body, against the config files as they are on disk now.
  std::function<AdminReply(const std::string& toml)> diff;
  // POST /services/NAME/flip (pool empty: the other of two pools) and
  // PUT /services/NAME/active (pool from the body or ?pool=).
  // `force` (?force=1): flip even to a pool whose endpoints all fail their health checks.
  std::function<AdminReply(const std::string& service, const std::string& pool, bool force)>
      set_active;
};

class AdminServer {
 public:
  AdminServer(LoopContext& ctx, AdminHandlers handlers);
  // Binds and listens. Returns a libuv error code.
  int listen(const net::SocketAddress& address);
  net::SocketAddress boundAddress() const;
  void close();

 private:
  static void onConnection(uv_stream_t* server, int status);
  friend class AdminSession;

  LoopContext& ctx_;
  AdminHandlers handlers_;
  uv_tcp_t server_;
  bool open_ = false;
};

}  // namespace gw::admin
