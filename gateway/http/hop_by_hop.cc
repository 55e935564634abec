#include "gateway/http/hop_by_hop.h"

#include <algorithm>

namespace gw::http {
namespace {

// Calls fn(element) for each element of the comma-separated `list` (OWS around it
// trimmed; with `ignore_version`, its "/version" cut) until fn returns true, and says
// whether one did.
template <typename Fn>
bool anyListElement(std::string_view list, bool ignore_version, Fn fn) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view element = trimOws(list.substr(0, comma));
    if (ignore_version) element = element.substr(0, element.find('/'));
    if (fn(element)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// True when the comma-separated `list` holds `token` (case-insensitive).
bool listHas(std::string_view list, std::string_view token, bool ignore_version) {
  return anyListElement(list, ignore_version, [token](std::string_view element) {
    return equalsIgnoreCase(element, token);
  });
}

}  // namespace

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
    if (equalsIgnoreCase(head_.name(i), "connection") && listHas(head_.value(i), name, false)) {
      return true;
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
    if (equalsIgnoreCase(head.name(i), "upgrade") && listHas(head.value(i), wanted, true)) {
      return true;
    }
  }
  return false;
}

bool upgradeOffersOnly(const MessageHead& head, std::span<const std::string> allowed) {
  bool offers = false;
  for (size_t i = 0; i < head.header_count; ++i) {
    if (!equalsIgnoreCase(head.name(i), "upgrade")) continue;
    bool other = anyListElement(head.value(i), true, [&](std::string_view protocol) {
      if (protocol.empty()) return false;  // ",," is an empty list element, not a protocol
      offers = true;
      return std::none_of(allowed.begin(), allowed.end(), [protocol](const std::string& name) {
        return equalsIgnoreCase(protocol, name);
      });
    });
    if (other) return false;
  }
  return offers;
}

bool onlyChunkedCoding(const MessageHead& head) {
  std::string_view te;
  size_t fields = head.count("transfer-encoding", &te);
  return fields == 0 || (fields == 1 && equalsIgnoreCase(trimOws(te), "chunked"));
}

}  // namespace gw::http
