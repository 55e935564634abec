#pragma once
// Socket addresses and CIDR ranges: parsing ("127.0.0.1:8080", "[::1]:8080",
// "10.0.0.0/8") and matching. Pure functions, no I/O.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gw::net {

struct SocketAddress {
  // IPv4 or IPv6 only: 28 bytes in all rather than sockaddr_storage's 128, since one sits in
  // every client connection. v6 first, so `{}` zeroes all of it.
  union Storage {
    sockaddr_in6 v6;
    sockaddr_in v4;
    sockaddr sa;
  };
  Storage storage{};

  // Follows from the family (0 when unset): one field less per client connection.
  socklen_t length() const {
    return storage.sa.sa_family == AF_INET    ? sizeof(sockaddr_in)
           : storage.sa.sa_family == AF_INET6 ? sizeof(sockaddr_in6)
                                              : 0;
  }

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.sa.sa_family; }
  uint16_t port() const;
  // "1.2.3.4:80" or "[::1]:80".
  std::string toString() const;
  // Just the IP, no port: "1.2.3.4" or "::1".
  std::string ipString() const;
  // Appends ipString()'s text to `out` (no allocation once `out` has room).
  void appendIp(std::string& out) const;
  bool operator==(const SocketAddress& other) const;
};

// Splits "host:port" / "[v6]:port" into host and port. Hostnames are allowed here;
// nothing is resolved. Returns nullopt when the form or the port is invalid.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
std::optional<HostPort> splitHostPort(std::string_view text);

// Parses a numeric IP literal and port into an address (no DNS).
std::optional<SocketAddress> parseIpPort(std::string_view host, uint16_t port);

// Parses "ADDR:PORT" where ADDR is a numeric IPv4/IPv6 literal.
std::optional<SocketAddress> parseSocketAddress(std::string_view text);

struct Cidr {
  int family = AF_INET;
  uint8_t bytes[16]{};
  int prefix_length = 0;

  bool contains(const SocketAddress& address) const;
};
// "10.0.0.0/8", "::1/128", or a bare address (a /32 or /128).
std::optional<Cidr> parseCidr(std::string_view text);

}  // namespace gw::net
