#pragma once
// Hop-by-hop fields (RFC 9110 §7.6.1): they describe one connection and must not be
// forwarded. That is the fixed list below plus every field named in Connection.

#include <cstddef>
#include <string_view>

#include "gateway/http/parser.h"

namespace gw::http {

// The field names listed in a message's Connection header(s), lower-cased on demand.
class ConnectionTokens {
 public:
  static constexpr size_t kMax = 16;
  explicit ConnectionTokens(const MessageHead& head);
  bool contains(std::string_view name) const;
  bool hasClose() const { return contains("close"); }
  bool hasUpgrade() const { return contains("upgrade"); }
  bool hasKeepAlive() const { return contains("keep-alive"); }

 private:
  std::string_view tokens_[kMax];
  size_t count_ = 0;
};

// True for Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
// Upgrade (the fixed hop-by-hop list).
bool isFixedHopByHop(std::string_view name);

}  // namespace gw::http
