#pragma once
// The middleware interface. A route's chain is a list of filters in config order (the
// chain for all routes first); each request gets its own Filter objects, made by the
// route's factories in the request's arena.
//
// Contract, for every method below:
// - Called on the worker thread that owns the exchange, never concurrently, never
//   re-entered for the same request.
// - `Context` and everything it points to are valid only for the exchange; a filter
//   keeps nothing from it past onDestroy(). Strings a filter creates for the request
//   (header values, a rewritten target) must live in ctx.arena() or in the factory.
// - Nothing here throws: a filter reports failure by answering with a local reply.
//
// Phases, in order:
//   onRequestHeaders  after routing, before an upstream is chosen. The request's
//                     headers are final; edits go to ctx.request_headers and
//                     ctx.upstream_target.
//   onRequestBody     each chunk of the request body as it streams (never buffered).
//   onResponseHeaders the upstream's response head, or a local reply made after this
//                     filter's request phase; edits go to ctx.response_headers. Runs in
//                     reverse chain order, only for filters whose request phase
//                     returned Continue.
//   onResponseBody    each chunk of the response body (observe only).

#include <cstdint>
#include <string_view>

#include "gateway/filter/arena.h"
#include "gateway/filter/header_edits.h"
#include "gateway/filter/worker_resources.h"

namespace gw::http {
struct MessageHead;
}
namespace gw::net {
struct SocketAddress;
}

namespace gw::filter {

enum class Status {
  // Go on: the next filter, then the upstream (or the client, for responses).
  Continue,
  // The filter filled ctx.reply: the chain stops and the exchange sends that local
  // reply (after the response phase of the filters before this one).
  Respond,
  // The filter started asynchronous work (on ctx.worker's loop). The chain waits, and
  // the exchange stops parsing the client's bytes, until the filter calls
  // ctx.resume() on this worker. Request-header phase only. The filter must bound its
  // own wait (a timeout) and stop its work in onDestroy() (the client may leave).
  Pause,
};

// What the request looked like when it arrived (after routing). Read-only. Every view
// stays valid for the whole exchange except `head`, which is null after the
// request-header phase (the parser's bytes move on): copy what you need to keep. While
// a filter is paused, `head` is the exchange's copy of the head and stays valid.
struct RequestInfo {
  std::string_view method;          // "GET"
  std::string_view path;            // without the query, as the client sent it
  std::string_view path_and_query;  // the client's origin-form target
  std::string_view host;            // Host (or the absolute-form authority), may have a port
  std::string_view client_ip;       // see client_address
  const net::SocketAddress* client_address = nullptr;  // the peer, or the address a
                                                       // trusted proxy forwarded for
  std::string_view route;                              // the matched route's name
  const http::MessageHead* head = nullptr;             // the client's header fields
  uint64_t content_length = 0;                         // declared body length (0 when chunked/none)
  bool chunked = false;
};

// A local reply asked for by a filter that returned Respond.
struct LocalReply {
  int status = 500;
  // The "error" of the shared JSON body {"error", "status", "request_id"}.
  std::string_view message;
  // When set, this body (and content_type) replaces the JSON body.
  bool custom_body = false;
  std::string_view body;
  std::string_view content_type;
};

class Context {
 public:
  RequestInfo request;
  // The request's id (set by the request_id filter); shown in local replies.
  std::string_view request_id;
  // Set by the trace filter (in the arena): the traceparent sent upstream, whose parent
  // id is this hop's span id, and the caller's span id ("" when the trace began here).
  // The exchange exports the span from them (gateway/observe/otlp.h).
  std::string_view traceparent;
  std::string_view parent_span_id;
  // The path and query to send upstream (starts as the route's rewrite of the target).
  std::string_view upstream_target;
  HeaderEdits request_headers;
  // Response phase: the status and the upstream head (null for a local reply).
  int response_status = 0;
  const http::MessageHead* response_head = nullptr;
  HeaderEdits response_headers;  // also the extra headers of a local reply
  LocalReply reply;
  // The worker serving the request: its loop and its per-worker resources (for a
  // filter that pauses). Null only in unit tests that do not need it.
  WorkerResources* worker = nullptr;

  Arena& arena() { return arena_; }

  // For a filter that returned Pause: continue the chain with `status` (Continue or
  // Respond). Safe to call while the filter's own call is still on the stack: the chain
  // then acts on it when that call returns.
  void resume(Status status);

  // Clears everything for the next request (keeps capacities).
  void reset();

 private:
  friend class ChainRun;
  Arena arena_;
  class ChainRun* run_ = nullptr;
};

class Filter {
 public:
  virtual ~Filter() = default;
  // Default: Continue.
  virtual Status onRequestHeaders(Context& ctx);
  // A chunk of the request body; `end` on the last call (chunk may then be empty).
  // Continue or Respond (Respond before the upstream answered replaces the response;
  // the request is then cut short). Default: Continue.
  virtual Status onRequestBody(Context& ctx, std::string_view chunk, bool end);
  // Default: nothing.
  virtual void onResponseHeaders(Context& ctx);
  // Default: nothing.
  virtual void onResponseBody(Context& ctx, std::string_view chunk, bool end);
  // The exchange ends (normally or not). A paused filter must cancel its work here:
  // it may no longer call ctx.resume(). Default: nothing.
  virtual void onDestroy(Context& ctx);
};

// Built once per route at config load from the filter's TOML table; immutable and
// shared by every worker, so it must be thread-safe for const use.
class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  // A filter for one request, made in ctx.arena() (Arena::make). Never null.
  virtual Filter* create(Context& ctx) const = 0;
  // Which phases the filter implements, so the chain skips the others.
  virtual bool wantsRequestBody() const { return false; }
  virtual bool wantsResponseBody() const { return false; }
};

}  // namespace gw::filter
