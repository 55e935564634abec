#pragma once
// How the proxy rewrites message heads on the way through (RFC 9110 §7.6, RFC 9112),
// and the one format of its own (local) replies. Pure functions over views: no I/O, no
// state, so the rules are unit-testable one by one.

#include <string>
#include <string_view>

#include "gateway/config/snapshot.h"
#include "gateway/filter/header_edits.h"
#include "gateway/http/parser.h"

namespace gw::proxy {

// The request target, split (RFC 9112 §3.2).
struct RequestTarget {
  std::string_view path_and_query;  // origin-form, always starting with '/' (or "*")
  std::string_view path;            // without the query
  std::string_view authority;       // from an absolute-form target; empty otherwise
  std::string_view scheme;          // from an absolute-form target; empty otherwise
};
// False when the target is not origin-form, absolute-form (http/https) or "*" for OPTIONS.
bool parseRequestTarget(std::string_view url, bool is_options, RequestTarget& out);

// True when a Host value names the same authority as an absolute-form target
// (RFC 9112 §3.2.2: a client sends them identical): case-insensitive, and a port that
// is the scheme's default (80, 443) may be on one side only.
bool sameAuthority(std::string_view scheme, std::string_view target_authority,
                   std::string_view host);

// True when `host` is a valid Host value / authority: a reg-name or IP literal with an
// optional port (RFC 9110 §7.2, RFC 3986 §3.2.2). Empty is valid (no authority).
bool validHost(std::string_view host);

struct UpstreamRequest {
  const http::MessageHead* head = nullptr;
  std::string_view method;
  std::string_view target;        // what to put on the request line (rewritten path + query)
  std::string_view authority;     // non-empty: replaces Host (absolute-form request)
  std::string_view default_host;  // Host to send when the client sent none (HTTP/1.0)
  bool chunked_body = false;      // the body is forwarded with chunked framing
  bool upgrade = false;           // keep Upgrade and ask for it with Connection: upgrade
  const config::Forwarding* forwarding = nullptr;
  bool trusted_peer = false;  // the client may extend X-Forwarded-*
  std::string_view client_ip;
  std::string_view proto = "http";
  // mTLS on a `tls` listener: client fields of these names are dropped (they could be
  // forged), and the verified certificate's values are sent under them (if non-empty).
  std::string_view cert_subject_header;
  std::string_view cert_subject;
  std::string_view cert_fingerprint_header;
  std::string_view cert_fingerprint;
  const filter::HeaderEdits* edits = nullptr;  // a filter chain's edits, applied in place
};
// Appends the upstream request head (request line, end-to-end fields in their order and
// case, the forwarding fields, the blank line) to `out`.
void writeUpstreamRequestHead(const UpstreamRequest& request, std::string& out);

struct DownstreamResponse {
  const http::MessageHead* head = nullptr;
  bool chunked_body = false;       // we frame the body as chunked
  bool close = false;              // send Connection: close
  bool keep_alive_header = false;  // an HTTP/1.0 client that asked for keep-alive
  bool upgrade = false;            // a 101: keep Upgrade, send Connection: upgrade
  bool via = true;
  const filter::HeaderEdits* edits = nullptr;  // a filter chain's edits, applied in place
  // Set-Cookie: NAME=VALUE ATTRIBUTES (sticky sessions); none when the name is empty.
  std::string_view cookie_name;
  std::string_view cookie_value;
  std::string_view cookie_attributes;  // "; Path=/; HttpOnly"
};
void writeDownstreamResponseHead(const DownstreamResponse& response, std::string& out);

// The proxy's own replies: a short JSON body {"error": ..., "status": ...}.
void writeLocalReply(int status, std::string_view message, bool close, bool head_request,
                     std::string& out);

// A redirect with an empty body: `status` (e.g. 308) and its Location. `keep_alive_header`:
// an HTTP/1.0 client that asked for keep-alive gets Connection: keep-alive.
void writeRedirectReply(int status, std::string_view location, bool close, bool keep_alive_header,
                        std::string& out);

// "https://host[:port]path": the HTTPS URL of a request that came in over plain HTTP.
// `host` is the Host value (its port, if any, is replaced); 443 leaves the port out.
void httpsLocation(std::string_view host, uint16_t port, std::string_view path_and_query,
                   std::string& out);
// How a local reply to a gRPC request is framed (gRPC "trailers-only"): HTTP 200,
// content-type application/grpc, grpc-status and grpc-message.
enum class GrpcReply : uint8_t {
  None,      // not a gRPC request: the JSON reply
  InHead,    // the grpc fields in the head, no body (HTTP/2 turns it into one HEADERS
             // frame with END_STREAM; an HTTP/1.0 client)
  Trailers,  // HTTP/1.1: chunked with no data, the grpc fields as trailers
};
// What a filter chain adds to a local reply.
struct LocalReplyExtras {
  std::string_view request_id;                   // non-empty: "request_id" in the JSON body
  const filter::HeaderEdits* headers = nullptr;  // extra fields (the live set/add edits)
  bool custom_body = false;                      // body/content_type replace the JSON body
  std::string_view body;
  std::string_view content_type;
  GrpcReply grpc = GrpcReply::None;  // not None: the gRPC form (custom bodies are ignored)
  bool keep_alive_header = false;    // an HTTP/1.0 client that asked for keep-alive, kept
};
void writeLocalReply(int status, std::string_view message, bool close, bool head_request,
                     const LocalReplyExtras& extras, std::string& out);

std::string_view reasonPhrase(int status);

// The trailer section of a chunked message ("0\r\n", the fields, "\r\n") from the
// fields of `trailers` that may be forwarded: no framing, routing, hop-by-hop or
// authentication fields (RFC 9110 §6.5.1). Appends nothing and returns false when none
// is left.
bool writeTrailerSection(const http::MessageHead& trailers, std::string& out);
// True for a trailer field the proxy forwards.
bool forwardableTrailer(std::string_view name);

}  // namespace gw::proxy
