#include "gateway/admin/admin_server.h"

#include "gateway/http/parser.h"
#include "gateway/net/tcp_transport.h"

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
    if (parser_.feed(data, length) == http::Parser::Outcome::Error) {
      respond(400, "{\"error\":\"bad request\"}\n");
    }
  }
  void onReadEnd(int) override { transport_.close(); }
  void onClosed() override { delete this; }
  int onHead(const http::MessageHead& head) override {
    std::string_view path = head.url.substr(0, head.url.find('?'));
    if (path == "/config/reload") {
      if (head.method != HTTP_POST) {
        respond(405, "{\"error\":\"use POST\"}\n");
      } else {
        std::string result = server_.handlers_.reload ? server_.handlers_.reload() : "{}\n";
        respond(result.find("\"ok\":true") != std::string::npos ? 200 : 409, result);
      }
    } else if (head.method != HTTP_GET && head.method != HTTP_HEAD) {
      respond(405, "{\"error\":\"method not allowed\"}\n");
    } else if (path == "/healthz") {
      respond(200, "{\"status\":\"ok\"}\n");
    } else if (path == "/ready") {
      bool ready = server_.handlers_.ready && server_.handlers_.ready();
      respond(ready ? 200 : 503, ready ? "{\"ready\":true}\n" : "{\"ready\":false}\n");
    } else if (path == "/stats") {
      respond(200, server_.handlers_.stats_json ? server_.handlers_.stats_json() : "{}\n");
    } else {
      respond(404, "{\"error\":\"not found\"}\n");
    }
    return kSkipBody;
  }
  int onBody(const char*, size_t) override { return kContinue; }
  bool onMessageComplete() override { return true; }

 private:
  void respond(int status, const std::string& body) {
    if (answered_) return;
    answered_ = true;
    std::string out =
        "HTTP/1.1 " + std::to_string(status) +
        (status == 200   ? " OK"
         : status == 503 ? " Service Unavailable"
                         : " Error") +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    transport_.stageCopy(out);
    transport_.flush();
    transport_.shutdownThenClose();
  }

  AdminServer& server_;
  net::TcpTransport transport_;
  http::Parser parser_;
  bool answered_ = false;
};

AdminServer::AdminServer(LoopContext& ctx, AdminHandlers handlers)
    : ctx_(ctx), handlers_(std::move(handlers)) {}

int AdminServer::listen(const net::SocketAddress& address) {
  uv_tcp_init(ctx_.loop(), &server_);
  server_.data = this;
  open_ = true;
  int rc = uv_tcp_bind(&server_, address.get(), 0);
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
