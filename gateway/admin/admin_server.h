#pragma once
// The admin listener (control thread): small operational endpoints, one request per
// connection: GET /healthz (the process is up), GET /ready (503 while draining),
// GET /stats (counters summed over workers, JSON), POST /config/reload.

#include <uv.h>

#include <functional>
#include <string>

#include "gateway/core/loop_context.h"
#include "gateway/net/address.h"

namespace gw::admin {

struct AdminHandlers {
  std::function<bool()> ready;
  std::function<std::string()> stats_json;
  std::function<std::string()> reload;  // POST /config/reload: JSON result
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
