#pragma once
// Hop-by-hop fields (RFC 9110 §7.6.1): they describe one connection and must not be
// forwarded. That is the fixed list below plus every field named in Connection.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "gateway/http/parser.h"

namespace gw::http {

// The field names listed in a message's Connection header(s). Nothing is copied: each
// query scans the Connection fields, and a message without one costs one pass at
// construction. No list length limit, so no option can be silently ignored.
class ConnectionTokens {
 public:
  explicit ConnectionTokens(const MessageHead& head);
  bool contains(std::string_view name) const;

 private:
  const MessageHead& head_;
  size_t first_ = 0;  // index of the first Connection field
  bool any_ = false;
};

// Fields a Connection option may never remove: they frame the message or route it, and
// dropping them on a client's say-so would desynchronise the hops (request smuggling).
bool isProtectedFromConnection(std::string_view name);

// True for Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
// Upgrade and HTTP2-Settings (the fixed hop-by-hop list; HTTP2-Settings is
// connection-specific by RFC 7540 §3.2.1).
bool isFixedHopByHop(std::string_view name);

// True when an Upgrade field of the head offers `protocol` (case-insensitive, any
// version: "h2c" matches "h2c" and "h2c/1").
//
// The parser uses it for h2c (RFC 7540 §3.2), an upgrade the gateway never tunnels:
// after a 101 the client would speak HTTP/2 straight to the upstream, every later
// request bypassing routes and filters ("h2c smuggling"). Such a request is proxied as
// an ordinary HTTP/1.1 request instead, as a server may ignore Upgrade (RFC 9110 §7.8)
// and as Envoy does.
bool upgradeOffers(const MessageHead& head, std::string_view protocol);

// True when the Upgrade fields offer at least one protocol and every protocol they
// offer is named in `allowed` (lower case; compared case-insensitively, versions
// ignored). A route tunnels only such an upgrade: with one protocol it does not allow in
// the list, the upstream could pick that one.
bool upgradeOffersOnly(const MessageHead& head, std::span<const std::string> allowed);

// True when the head has no Transfer-Encoding, or exactly one field saying "chunked":
// the only coding the gateway takes (request and response side), since it forwards
// bodies dechunked and never forwards Transfer-Encoding itself.
bool onlyChunkedCoding(const MessageHead& head);

}  // namespace gw::http
