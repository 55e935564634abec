#include "gateway/admin/admin_server.h"

#include "gateway/http/parser.h"
#include "gateway/net/tcp_transport.h"
#include "gateway/observe/prometheus.h"
#include "gateway/proxy/messages.h"

namespace gw::admin {

// One admin connection: parse one request, answer, close.
class AdminSession final : public net::TransportHandler, public http::MessageSink {
 public:
  AdminSession(AdminServer& server)
      : server_(server), transport_(server.ctx_), parser_(HTTP_REQUEST, this) {
    transport_.setHandler(this);
    parser_.setLimits(8 * 1024, 50);
  }
  void start(uv_stream_t* listener) {
    if (transport_.accept(listener) != 0) {
      transport_.close();
      return;
    }
    transport_.startReading();
  }
  void onRead(const char* data, size_t length) override {
    if (answered_) return;
    if (parser_.feed(data, length) == http::Parser::Outcome::Error && !answered_) {
      respond(400, "{\"error\":\"bad request\"}\n");
    }
  }
  void onReadEnd(int) override { transport_.close(); }
  void onClosed() override { delete this; }
  int onHead(const http::MessageHead& head) override {
    std::string_view url = head.url;
    size_t q = url.find('?');
    path_ = std::string(url.substr(0, q));
    query_ = q == std::string_view::npos ? "" : std::string(url.substr(q + 1));
    method_ = head.method;
    std::string_view authorization;
    if (head.count("authorization", &authorization) == 1) {
      authorization_ = std::string(authorization);
    }
    if (head.content_length > kMaxBody) {
      respond(413, "{\"error\":\"body too large\"}\n");
      return kSkipBody;
    }
    return kContinue;
  }
  int onBody(const char* data, size_t length) override {
    if (body_.size() + length > kMaxBody) return kReject;
    body_.append(data, length);
    return kContinue;
  }
  bool onMessageComplete() override {
    route();
    return true;
  }

 private:
  static constexpr size_t kMaxBody = 1024 * 1024;  // a config for POST /config/diff

  // Constant time in the token's length, so the answer's timing does not leak a prefix.
  static bool sameToken(std::string_view given, std::string_view expected) {
    unsigned char diff = given.size() == expected.size() ? 0 : 1;
    for (size_t i = 0; i < expected.size(); ++i) {
      diff |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
    }
    return diff == 0;
  }

  bool authorized() const {
    const AdminHandlers& h = server_.handlers_;
    std::string token = h.token ? h.token() : "";
    if (token.empty()) return true;
    std::string_view given = authorization_;
    static constexpr std::string_view kBearer = "Bearer ";
    if (!http::startsWithIgnoreCase(given, kBearer)) return false;
    return sameToken(http::trimOws(given.substr(kBearer.size())), token);
  }

  void route() {
    const AdminHandlers& h = server_.handlers_;
    static constexpr std::string_view kServices = "/services/";
    bool probe = path_ == "/health" || path_ == "/healthz" || path_ == "/ready";
    if (!probe && !authorized()) {
      return respond(401, "{\"error\":\"this admin API needs Authorization: Bearer TOKEN\"}\n",
                     "WWW-Authenticate: Bearer\r\n");
    }
    if (path_ == "/config/diff") {
      if (method_ != HTTP_POST || !h.diff) return respond(405, "{\"error\":\"use POST\"}\n");
      AdminReply r = h.diff(body_);
      return respond(r.status, r.json);
    }
    if (path_ == "/config/reload") {
      if (method_ != HTTP_POST) return respond(405, "{\"error\":\"use POST\"}\n");
      std::string result = h.reload ? h.reload() : "{}\n";
      return respond(result.find("\"ok\":true") != std::string::npos ? 200 : 409, result);
    }
    if (path_.rfind(kServices, 0) == 0) {
      std::string rest = path_.substr(kServices.size());
      size_t slash = rest.find('/');
      std::string service = rest.substr(0, slash);
      std::string action = slash == std::string::npos ? "" : rest.substr(slash + 1);
      if (action == "flip" && method_ == HTTP_POST && h.set_active) {
        AdminReply r = h.set_active(service, "", forced());
        return respond(r.status, r.json);
      }
      if (action == "active" && method_ == HTTP_PUT && h.set_active) {
        std::string pool = queryValue("pool");
        if (pool.empty()) pool = std::string(http::trimOws(body_));
        while (!pool.empty() && (pool.back() == '\n' || pool.back() == '\r')) pool.pop_back();
        AdminReply r = h.set_active(service, pool, forced());
        return respond(r.status, r.json);
      }
      return respond(405,
                     "{\"error\":\"use POST /services/NAME/flip or PUT "
                     "/services/NAME/active\"}\n");
    }
    if (path_ == "/debug/heap/dump" && h.heap_dump) {
      if (method_ != HTTP_POST) return respond(405, "{\"error\":\"use POST\"}\n");
      AdminReply r = h.heap_dump();
      return respond(r.status, r.json);
    }
    if (method_ != HTTP_GET && method_ != HTTP_HEAD) {
      return respond(405, "{\"error\":\"method not allowed\"}\n");
    }
    if (path_ == "/health" || path_ == "/healthz") return respond(200, "{\"status\":\"ok\"}\n");
    if (path_ == "/ready") {
      bool ready = h.ready && h.ready();
      return respond(ready ? 200 : 503, ready ? "{\"ready\":true}\n" : "{\"ready\":false}\n");
    }
    if (path_ == "/stats") return respond(200, h.stats_json ? h.stats_json() : "{}\n");
    if (path_ == "/metrics" && h.metrics) {
      return respond(200, h.metrics(), "", observe::kPrometheusContentType);
    }
    if (path_ == "/debug/workers" && h.debug_workers) {
      AdminReply r = h.debug_workers();
      return respond(r.status, r.json, "", r.content_type);
    }
    if (path_ == "/debug/memory" && h.debug_memory) {
      AdminReply r = h.debug_memory();
      return respond(r.status, r.json, "", r.content_type);
    }
    if (path_ == "/config" && h.config) {
      AdminReply r = h.config();
      return respond(r.status, r.json);
    }
    if (path_ == "/services" && h.services) {
      AdminReply r = h.services();
      return respond(r.status, r.json);
    }
    respond(404, "{\"error\":\"not found\"}\n");
  }

  bool forced() const {
    std::string force = queryValue("force");
    return force == "1" || force == "true";
  }

  std::string queryValue(std::string_view key) const {
    std::string_view q = query_;
    while (!q.empty()) {
      size_t amp = q.find('&');
      std::string_view pair = q.substr(0, amp);
      size_t eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == key) {
        return std::string(pair.substr(eq + 1));
      }
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
    return "";
  }

  void respond(int status, const std::string& body, const char* extra_headers = "",
               const char* content_type = "application/json") {
    if (answered_) return;
    answered_ = true;
    std::string out = "HTTP/1.1 " + std::to_string(status) +
                      (status == 200   ? " OK"
                       : status == 401 ? " Unauthorized"
                       : status == 501 ? " Not Implemented"
                       : status == 503 ? " Service Unavailable"
                                       : " Error") +
                      "\r\nContent-Type: " + content_type +
                      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
                      extra_headers + "Connection: close\r\n\r\n" + body;
    transport_.stageCopy(out);
    transport_.flush();
    transport_.shutdownThenClose();
  }

  AdminServer& server_;
  net::TcpTransport transport_;
  http::Parser parser_;
  bool answered_ = false;
  std::string path_;
  std::string query_;
  std::string body_;
  std::string authorization_;
  int method_ = 0;
};

AdminServer::AdminServer(LoopContext& ctx, AdminHandlers handlers)
    : ctx_(ctx), handlers_(std::move(handlers)) {}

int AdminServer::listen(const net::SocketAddress& address) {
  uv_tcp_init(ctx_.loop(), &server_);
  server_.data = this;
  open_ = true;
  int rc = uv_tcp_bind(&server_, address.get(), 0);
  if (rc == 0) rc = uv_tcp_nodelay(&server_, 1);  // inherited by accepted connections
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 64, &AdminServer::onConnection);
  }
  return rc;
}

net::SocketAddress AdminServer::boundAddress() const { return net::boundAddress(&server_); }

void AdminServer::close() {
  if (!open_) return;
  open_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&server_), nullptr);
}

void AdminServer::onConnection(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* self = static_cast<AdminServer*>(server->data);
  (new AdminSession(*self))->start(server);
}

}  // namespace gw::admin
