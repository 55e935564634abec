#pragma once
// One request and its response: routes the request, picks an endpoint, streams the
// request to an upstream connection and the response back, with backpressure both ways.
// Owned by its DownstreamSession; pooled per worker (ProxyContext), so its buffers keep
// their capacity between requests. Loop-confined.

#include <cstdint>
#include <string>
#include <vector>

#include "gateway/core/timer.h"
#include "gateway/filter/chain.h"
#include "gateway/http/head_copy.h"
#include "gateway/http/parser.h"
#include "gateway/proxy/messages.h"
#include "gateway/proxy/proxy_context.h"
#include "gateway/route/route.h"
#include "gateway/upstream/connection.h"

namespace gw::proxy {

class Downstream;

class Exchange final : public upstream::UpstreamUser, public http::MessageSink {
 public:
  explicit Exchange(ProxyContext& ctx);
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  void begin(Downstream& session);
  // Ends the exchange: closes an unfinished upstream connection, unpins the snapshot.
  void reset();

  // --- request side, called by the session's parser callbacks ---
  // Returns MessageSink::kContinue, or kReject after setting the parser's error.
  int onRequestHead(const http::MessageHead& head);
  int onRequestBody(const char* data, size_t length);
  void onRequestComplete();
  // The request's trailer fields (chunked HTTP/1 or HTTP/2), before onRequestComplete:
  // forwarded as chunked trailers when the upstream request is chunked.
  void onRequestTrailers(const http::MessageHead& trailers);
  // After the session's read callback: sends what was staged for the upstream.
  void flushUpstream();
  // Bytes from the client after a successful upgrade.
  void tunnelFromClient(const char* data, size_t length);
  void clientClosed();
  // The client's write queue drained: resume reading the upstream.
  void onClientDrained();
  bool responseStarted() const { return response_started_; }
  bool responseDone() const { return response_done_; }
  bool localReply() const { return local_reply_; }
  // The response's body runs until the connection closes (HTTP/1.0 client).
  bool responseUntilClose() const { return response_started_ && response_close_delimited_; }
  // A local reply went out and the rest of the request body is being read and dropped.
  bool discardingBody() const { return discarding_; }
  bool upgradeRequested() const { return upgrade_requested_; }
  // How the downstream frames a local reply to this request (gRPC trailers-only or not).
  GrpcReply grpcReply() const;

  // UpstreamUser
  void onUpstreamConnected(int status) override;
  void onUpstreamRead(const char* data, size_t length) override;
  void onUpstreamReadEnd(int status) override;
  void onUpstreamDrained() override;
  void onUpstreamWriteError(int status) override;

  // MessageSink (responses)
  int onHead(const http::MessageHead& head) override;
  int onBody(const char* data, size_t length) override;
  int onTrailers(const http::MessageHead& trailers) override;
  bool onMessageComplete() override;

 private:
  // What the exchange's one timer currently measures.
  enum class TimerKind { None, Connect, Response, Send, Backoff };

  // Counts a response by status class, and for the chosen pool (canary error rates).
  void countResponse(int status);
  // Counts the upstream's status taken in onHead, once (see count_pending_).
  void commitResponseCount() {
    if (count_pending_) {
      count_pending_ = false;
      countResponse(status_);
    }
  }
  // A plain listener with redirect_to_https: 308 to the same URL over HTTPS.
  void sendHttpsRedirect(std::string_view host, std::string_view path_and_query);
  // `reply`: a filter's reply (its status and message are passed too).
  void sendLocalReply(int status, std::string_view message, bool close,
                      const filter::LocalReply* reply = nullptr);

  // --- the filter chain (see gateway/filter/filter.h) ---
  // The client's address as the trusted-proxy rules establish it: the peer, or, when the
  // peer is a trusted proxy, the nearest untrusted address in X-Forwarded-For.
  void establishClient(const config::Snapshot& snapshot, const http::MessageHead& head);
  // Runs the route's request-header phase. A filter may replace
  // routed_.upstream_target (a rewrite), answer (the reply is sent), or pause: then the
  // head is copied (head_copy_) and onFiltersResumed() goes on later.
  enum class FilterOutcome { Continue, Answered, Paused };
  FilterOutcome runRequestFilters(const config::Snapshot& snapshot, const route::Route& route,
                                  const http::MessageHead& head, const RequestTarget& target,
                                  std::string_view host);
  // A paused chain finished (ChainRun::ResumeFn): forward the request or answer, then
  // let the session parse the rest of the request.
  static void onFiltersResumed(void* self, filter::Status status);
  // After routing and the filters' request phase: picks an endpoint and sends the head.
  void forwardRequest();
  // A request body chunk through the chain; false when a filter answered.
  bool filterRequestBody(std::string_view chunk, bool end);
  void sendFilterReply(bool close);
  // A local reply leaves the request body unread: starts discarding it when the
  // connection can be kept (see discarding_); false when it must close instead.
  bool startDiscardingBody();
  void discardBody(size_t length);
  void connectUpstream();
  void failUpstream(int status, const char* message);
  bool retryOnFreshConnection();
  // The upstream connection failed (EOF or error) other than by ending a response: retry,
  // answer 502, or cut the client off if the response had started.
  void upstreamBroke(const char* message);
  void finishResponse();
  // The client's grpc-timeout passed after a chunked response began: the response ends
  // with trailers saying DEADLINE_EXCEEDED (the upstream was already closed).
  void endWithDeadlineTrailers();
  void closeUpstream();
  void stageUpstream(const char* data, size_t length, bool copy);
  void armResponseTimer();
  void armTimer(TimerKind kind, uint64_t ms);
  void disarmTimer();
  static void onTimer(void* self);

  ProxyContext& ctx_;
  Downstream* session_ = nullptr;
  PinnedSnapshot* pinned_ = nullptr;
  const config::Service* service_ = nullptr;
  upstream::EndpointRuntime* endpoint_ = nullptr;
  uint16_t pool_slot_ = 0;  // the chosen pool's stats slot; 0: none (no pool chosen)
  upstream::UpstreamLink* conn_ = nullptr;  // an HTTP/1 connection or an HTTP/2 stream
  http::Parser response_parser_;
  Timer timer_;
  std::string head_out_;  // upstream request head; kept until the response starts (retry)
  std::string pending_;   // request bytes staged while the upstream connection opens
  std::string scratch_;   // response head / chunk framing being built
  // Trailer sections ("0\r\n" fields "\r\n"), only for messages that have trailers.
  std::string request_trailers_;
  std::string response_trailers_;
  std::vector<http::HeaderView> route_headers_;  // the router's view of the request headers
  filter::ChainRun chain_;                       // this request's filters; pooled with us
  // What forwardRequest() needs from the request head; views into the parser's bytes,
  // or into head_copy_ and the chain's arena while a filter pauses.
  struct RoutedRequest {
    const http::MessageHead* head = nullptr;
    std::string_view method;
    std::string_view upstream_target;  // path and query to send (after rewrites)
    std::string_view authority;        // absolute-form authority, or empty
    std::string_view path;             // for the balancer's hash key
    bool upgrade = false;              // an upgrade the route tunnels
  } routed_;
  http::HeadCopy head_copy_;  // the request head while a filter pauses
  // The TCP peer's IP as text, formatted on first use in each exchange (the session
  // keeps only the binary address: an idle connection should cost little).
  std::string_view peerIp();
  std::string peer_ip_;
  net::SocketAddress client_address_;  // established by establishClient()
  std::string client_ip_;              // from X-Forwarded-For past trusted proxies; empty: peerIp()
  uint64_t body_received_ = 0;
  uint64_t max_body_ = 0;
  uint64_t response_bytes_ = 0;
  bool connected_ = false;
  bool request_chunked_ = false;
  bool request_done_ = false;
  bool request_has_body_ = false;
  bool request_body_sent_ = false;  // some body bytes reached the upstream socket
  // Writing the request failed; the rest of it is dropped while the response is read.
  bool upstream_write_failed_ = false;
  bool is_head_ = false;
  bool upgrade_requested_ = false;
  bool client_http10_ = false;
  bool client_keep_alive_ = false;
  bool response_started_ = false;
  bool response_flushed_ = false;  // some of the response went to the client transport
  bool count_pending_ = false;     // status_ is counted once the response is committed
  uint64_t bytes_out_at_head_ = 0;
  bool response_done_ = false;
  bool response_chunked_out_ = false;
  bool response_close_delimited_ = false;
  bool upstream_keep_alive_ = false;
  bool interim_ = false;
  bool local_reply_ = false;
  // After a local reply sent before the request body was read: the rest of the body is
  // read and dropped (up to kDiscardLimit) so the connection serves the next request.
  bool discarding_ = false;
  bool expect_continue_ = false;  // the client asked for 100 Continue (HTTP/1.1)
  bool continue_sent_ = false;    // ... and got it
  uint64_t declared_length_ = 0;  // the request's Content-Length (0: none or chunked)
  uint64_t discard_budget_ = 0;   // bytes the discard may still read
  bool retried_ = false;
  bool tunnel_ = false;
  bool switching_protocols_ = false;
  TimerKind timer_kind_ = TimerKind::None;
  // gRPC: the request's content-type is application/grpc[+...]; its grpc-timeout as a
  // loop-time deadline (0: none), and whether the armed timer is that deadline.
  bool grpc_ = false;
  bool deadline_armed_ = false;
  uint64_t grpc_deadline_ms_ = 0;
  // Scans the head for content-type (gRPC) and grpc-timeout.
  void noteGrpc(const http::MessageHead& head);

  // --- load balancing and resilience (exchange_balancing.cc) ---
  // Why a try failed, for the retry policy and outlier detection.
  enum class TryFailure { ConnectFailure, Reset, Timeout, Status };
  // Picks the first endpoint (breakers, health, policy); false after a local 503.
  bool chooseEndpoint(const http::MessageHead& head, std::string_view path);
  void useMember(int index);
  // A try failed: counts it against the endpoint (outlier detection).
  void noteTryFailure();
  // Whether the failed try may be repeated on another endpoint now (policy, method, body,
  // attempts left, retry budget). Counts a refusal by the budget.
  bool retryAllowed(TryFailure failure, int status = 0);
  // Repeats the request on another endpoint (after a backoff); false when there is none.
  bool startRetry();
  void startTry();
  // The try failed before any response byte: retry when allowed, else false.
  bool retryAfter(TryFailure failure);
  void releaseBalancing();
  uint64_t tryTimeoutMs() const;
  // Sticky sessions: a Set-Cookie naming the endpoint that answered, unless the request's
  // cookie already named it.
  void stickyCookie(DownstreamResponse& response) const;

  // --- metrics and the access log (exchange_observe.cc) ---
  // At the request head: whether to time and log this request; copies what the log
  // line needs (the head's views die with the callback).
  void observeRequestHead(const http::MessageHead& head);
  void markUpstreamStart() {
    if (timed_ && upstream_start_ns_ == 0) upstream_start_ns_ = uv_hrtime();
  }
  void markUpstreamEnd() {
    if (upstream_start_ns_ != 0 && upstream_end_ns_ == 0) upstream_end_ns_ = uv_hrtime();
  }
  // At the end (from reset()): counts the exchange and writes its access log line.
  void recordEnd();

  const route::Route* route_ = nullptr;  // the matched route (in the pinned snapshot)
  uint64_t start_ns_ = 0;                // uv_hrtime() at the request head (timed_)
  uint64_t upstream_start_ns_ = 0;       // the first try
  uint64_t upstream_end_ns_ = 0;         // the upstream's response ended or failed
  uint64_t bytes_in_ = 0;                // request head (as parsed) and body
  uint64_t bytes_out_ = 0;               // response head and body handed to the client
  int status_ = 0;                       // the status sent; 0: none
  int grpc_status_ = -1;                 // the gateway's own grpc-status; -1: none
  bool timed_ = false;                   // metrics, the access log or spans want durations
  bool logged_ = false;                  // the access log is on for this request
  bool traced_ = false;                  // spans are exported (when the trace filter ran)
  bool head_seen_ = false;
  const char* log_method_ = "";
  uint8_t log_minor_ = 1;
  // The head's fields that the log line and the span need, copied into one buffer that
  // keeps its capacity from one exchange to the next (the head's views die with it).
  struct TextRef {
    uint32_t at = 0, size = 0;
  };
  std::string head_text_;
  TextRef log_target_, log_host_, log_user_agent_, log_referer_, log_request_id_, log_trace_id_;
  TextRef keepText(std::string_view text) {
    TextRef ref{static_cast<uint32_t>(head_text_.size()), static_cast<uint32_t>(text.size())};
    head_text_.append(text);
    return ref;
  }
  std::string_view text(TextRef ref) const { return {head_text_.data() + ref.at, ref.size}; }
  // Exports this exchange's span when the trace filter ran and sampled it.
  void exportSpan(uint64_t total_us);

  upstream::PoolRuntime* pool_ = nullptr;
  upstream::PickRequest pick_;  // the request's hash key and the members tried so far
  // The endpoint the request's sticky cookie named (whether or not it could be used).
  const upstream::EndpointRuntime* sticky_endpoint_ = nullptr;
  uint64_t try_started_ms_ = 0;  // loop time the current try started (latency outliers)
  uint32_t retries_done_ = 0;    // policy retries (not the stale-connection one)
  bool counted_endpoint_ = false;
  bool counted_request_ = false;
  bool counted_retry_ = false;
  bool counted_pending_ = false;
  bool idempotent_ = false;
  bool retry_on_head_ = false;  // onHead refused a retryable status: retry after the parser
  int retry_status_ = 0;
};

}  // namespace gw::proxy
