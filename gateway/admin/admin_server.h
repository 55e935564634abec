#pragma once
// The admin listener (control thread): small operational endpoints, one request per
// connection: GET /healthz (the process is up), GET /ready (503 while draining),
// GET /stats (counters summed over workers, JSON), POST /config/reload, GET /services,
// POST /services/NAME/flip, PUT /services/NAME/active.

#include <uv.h>

#include <functional>
#include <string>

#include "gateway/core/loop_context.h"
#include "gateway/net/address.h"

namespace gw::admin {

// A handler's answer: HTTP status and a JSON body.
struct AdminReply {
  int status = 200;
  std::string json;
};

struct AdminHandlers {
  std::function<bool()> ready;
  std::function<std::string()> stats_json;
  std::function<std::string()> reload;   // POST /config/reload: JSON result
  std::function<AdminReply()> services;  // GET /services
  // POST /services/NAME/flip (pool empty: the other of two pools) and
  // PUT /services/NAME/active (pool from the body or ?pool=).
  std::function<AdminReply(const std::string& service, const std::string& pool)> set_active;
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
