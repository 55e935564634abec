#include "gateway/net/address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace gw::net {

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

std::string SocketAddress::ipString() const {
  std::string out;
  appendIp(out);
  return out;
}

void SocketAddress::appendIp(std::string& out) const {
  if (family() == AF_INET) {
    // Dotted quad by hand: this runs once per proxied request (X-Forwarded-For).
    const auto* b = reinterpret_cast<const uint8_t*>(&storage.v4.sin_addr);
    char buf[16];
    char* p = buf;
    for (int i = 0; i < 4; ++i) {
      if (i > 0) *p++ = '.';
      p = std::to_chars(p, buf + sizeof buf, b[i]).ptr;
    }
    out.append(buf, p);
  } else if (family() == AF_INET6) {
    char buf[INET6_ADDRSTRLEN] = {0};
    inet_ntop(AF_INET6, &storage.v6.sin6_addr, buf, sizeof buf);
    out.append(buf);
  }
}

std::string SocketAddress::toString() const {
  std::string ip = ipString();
  std::string port_text = std::to_string(port());
  if (family() == AF_INET6) return "[" + ip + "]:" + port_text;
  return ip + ":" + port_text;
}

bool SocketAddress::operator==(const SocketAddress& other) const {
  return length() == other.length() && std::memcmp(&storage, &other.storage, length()) == 0;
}

std::optional<HostPort> splitHostPort(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // v6 needs brackets
  }
  if (host.empty() || port_text.empty()) return std::nullopt;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || value > 65535) {
    return std::nullopt;
  }
  return HostPort{std::string(host), static_cast<uint16_t>(value)};
}

std::optional<SocketAddress> parseIpPort(std::string_view host, uint16_t port) {
  std::string h(host);
  SocketAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return out;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return out;
  }
  return std::nullopt;
}

std::optional<SocketAddress> parseSocketAddress(std::string_view text) {
  auto hp = splitHostPort(text);
  if (!hp) return std::nullopt;
  return parseIpPort(hp->host, hp->port);
}

std::optional<Cidr> parseCidr(std::string_view text) {
  Cidr out;
  std::string_view ip = text;
  int prefix = -1;
  size_t slash = text.find('/');
  if (slash != std::string_view::npos) {
    ip = text.substr(0, slash);
    std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.front() < '0' || p.front() > '9') return std::nullopt;  // no sign
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (ec != std::errc() || end != p.data() + p.size() || prefix < 0) return std::nullopt;
  }
  std::string h(ip);
  if (inet_pton(AF_INET, h.c_str(), out.bytes) == 1) {
    out.family = AF_INET;
    if (prefix < 0) prefix = 32;
    if (prefix > 32) return std::nullopt;
  } else if (inet_pton(AF_INET6, h.c_str(), out.bytes) == 1) {
    out.family = AF_INET6;
    if (prefix < 0) prefix = 128;
    if (prefix > 128) return std::nullopt;
  } else {
    return std::nullopt;
  }
  out.prefix_length = prefix;
  return out;
}

bool Cidr::contains(const SocketAddress& address) const {
  const uint8_t* candidate = nullptr;
  uint8_t mapped[4];
  if (address.family() == AF_INET) {
    candidate = reinterpret_cast<const uint8_t*>(
        &reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_addr);
  } else if (address.family() == AF_INET6) {
    const auto* a6 = reinterpret_cast<const uint8_t*>(
        &reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_addr);
    if (family == AF_INET) {
      // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 ranges.
      static const uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      if (std::memcmp(a6, kMappedPrefix, 12) != 0) return false;
      std::memcpy(mapped, a6 + 12, 4);
      candidate = mapped;
    } else {
      candidate = a6;
    }
  } else {
    return false;
  }
  if (address.family() == AF_INET && family != AF_INET) return false;
  int full = prefix_length / 8;
  if (std::memcmp(candidate, bytes, full) != 0) return false;
  int rest = prefix_length % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (candidate[full] & mask) == (bytes[full] & mask);
}

}  // namespace gw::net
