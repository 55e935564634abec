#include "gateway/http/hop_by_hop.h"

namespace gw::http {

ConnectionTokens::ConnectionTokens(const MessageHead& head) {
  for (size_t i = 0; i < head.header_count; ++i) {
    if (!equalsIgnoreCase(head.name(i), "connection")) continue;
    std::string_view v = head.value(i);
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view token = trimOws(v.substr(0, comma));
      if (!token.empty() && count_ < kMax) tokens_[count_++] = token;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
}

bool ConnectionTokens::contains(std::string_view name) const {
  for (size_t i = 0; i < count_; ++i) {
    if (equalsIgnoreCase(tokens_[i], name)) return true;
  }
  return false;
}

bool isFixedHopByHop(std::string_view name) {
  switch (name.size()) {
    case 2: return equalsIgnoreCase(name, "te");
    case 7: return equalsIgnoreCase(name, "trailer") || equalsIgnoreCase(name, "upgrade");
    case 10: return equalsIgnoreCase(name, "connection") || equalsIgnoreCase(name, "keep-alive");
    case 16: return equalsIgnoreCase(name, "proxy-connection");
    case 17: return equalsIgnoreCase(name, "transfer-encoding");
    default: return false;
  }
}

}  // namespace gw::http
