#include "gateway/http/hop_by_hop.h"

namespace gw::http {

ConnectionTokens::ConnectionTokens(const MessageHead& head) : head_(head) {
  for (size_t i = 0; i < head.header_count; ++i) {
    if (equalsIgnoreCase(head.name(i), "connection")) {
      first_ = i;
      any_ = true;
      return;
    }
  }
}

bool ConnectionTokens::contains(std::string_view name) const {
  if (!any_) return false;
  for (size_t i = first_; i < head_.header_count; ++i) {
    if (!equalsIgnoreCase(head_.name(i), "connection")) continue;
    std::string_view v = head_.value(i);
    while (!v.empty()) {
      size_t comma = v.find(',');
      if (equalsIgnoreCase(trimOws(v.substr(0, comma)), name)) return true;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

bool isProtectedFromConnection(std::string_view name) {
  return equalsIgnoreCase(name, "content-length") || equalsIgnoreCase(name, "host");
}

bool isFixedHopByHop(std::string_view name) {
  switch (name.size()) {
    case 2:
      return equalsIgnoreCase(name, "te");
    case 7:
      return equalsIgnoreCase(name, "trailer") || equalsIgnoreCase(name, "upgrade");
    case 10:
      return equalsIgnoreCase(name, "connection") || equalsIgnoreCase(name, "keep-alive");
    case 14:
      return equalsIgnoreCase(name, "http2-settings");
    case 16:
      return equalsIgnoreCase(name, "proxy-connection");
    case 17:
      return equalsIgnoreCase(name, "transfer-encoding");
    default:
      return false;
  }
}

bool upgradeOffers(const MessageHead& head, std::string_view wanted) {
  for (size_t i = 0; i < head.header_count; ++i) {
    if (!equalsIgnoreCase(head.name(i), "upgrade")) continue;
    std::string_view v = head.value(i);
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view protocol = trimOws(v.substr(0, comma));
      protocol = protocol.substr(0, protocol.find('/'));  // "name/version"
      if (equalsIgnoreCase(protocol, wanted)) return true;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

}  // namespace gw::http
