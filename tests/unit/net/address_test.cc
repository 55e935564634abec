#define CATCH_CONFIG_MAIN
#include "gateway/net/address.h"

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>

namespace gw::net {
namespace {

SocketAddress address(const char* ip) {
  std::optional<SocketAddress> a = parseIpPort(ip, 1234);
  REQUIRE(a.has_value());
  return *a;
}

Cidr cidr(const char* text) {
  std::optional<Cidr> c = parseCidr(text);
  REQUIRE(c.has_value());
  return *c;
}

// ---- splitHostPort ----------------------------------------------------------------------

TEST_CASE("splitHostPort accepts v4, bracketed v6 and host names") {
  struct Case {
    const char* text;
    const char* host;
    uint16_t port;
  };
  const Case cases[] = {
      {"127.0.0.1:8080", "127.0.0.1", 8080},
      {"0.0.0.0:0", "0.0.0.0", 0},  // port 0: "any port" when binding
      {"[::1]:443", "::1", 443},
      {"[2001:db8::1]:65535", "2001:db8::1", 65535},
      {"[::ffff:10.0.0.1]:80", "::ffff:10.0.0.1", 80},
      {"example.com:80", "example.com", 80},
      {"localhost:1", "localhost", 1},
      {"backend-1.internal:9000", "backend-1.internal", 9000},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    std::optional<HostPort> hp = splitHostPort(c.text);
    REQUIRE(hp.has_value());
    CHECK(hp->host == c.host);
    CHECK(hp->port == c.port);
  }
}

TEST_CASE("splitHostPort rejects bad forms and bad ports") {
  const char* cases[] = {
      "",                  // empty
      "127.0.0.1",         // no port
      "example.com",       // no port
      "example.com:",      // empty port
      ":80",               // empty host
      "host:65536",        // too big
      "host:99999999999",  // far too big
      "host:-1",           // negative
      "host:+80",          // sign
      "host:8o",           // not a number
      "host: 80",          // space
      "host:80 ",          // trailing space
      "host:80:90",        // two colons
      "::1:80",            // v6 without brackets
      "2001:db8::1",       // v6 without brackets or port
      "[::1]",             // brackets, no port
      "[::1]:",            // brackets, empty port
      "[::1]80",           // no colon after the bracket
      "[::1",              // unclosed bracket
      "[]:80",             // empty brackets
      "[::1]:70000",       // bad port after brackets
  };
  for (const char* text : cases) {
    INFO(text);
    CHECK_FALSE(splitHostPort(text).has_value());
  }
}

// ---- parseSocketAddress -----------------------------------------------------------------

TEST_CASE("parseSocketAddress parses numeric v4 and v6 addresses") {
  std::optional<SocketAddress> v4 = parseSocketAddress("127.0.0.1:8080");
  REQUIRE(v4.has_value());
  CHECK(v4->family() == AF_INET);
  CHECK(v4->length() == sizeof(sockaddr_in));
  CHECK(v4->port() == 8080);
  CHECK(v4->ipString() == "127.0.0.1");
  CHECK(v4->toString() == "127.0.0.1:8080");

  std::optional<SocketAddress> v6 = parseSocketAddress("[2001:db8::1]:443");
  REQUIRE(v6.has_value());
  CHECK(v6->family() == AF_INET6);
  CHECK(v6->length() == sizeof(sockaddr_in6));
  CHECK(v6->port() == 443);
  CHECK(v6->ipString() == "2001:db8::1");
  CHECK(v6->toString() == "[2001:db8::1]:443");

  std::optional<SocketAddress> canonical = parseSocketAddress("[0:0:0:0:0:0:0:1]:80");
  REQUIRE(canonical.has_value());
  CHECK(canonical->toString() == "[::1]:80");
}

TEST_CASE("parseSocketAddress rejects names and malformed literals") {
  const char* cases[] = {
      "localhost:80",     // names are not resolved here
      "example.com:80",   //
      "256.0.0.1:80",     // octet out of range
      "1.2.3:80",         // too few octets
      "1.2.3.4.5:80",     // too many
      "[::g]:80",         // not hex
      "[fe80::1%lo]:80",  // zone ids are not supported
      "127.0.0.1",        // no port
      "::1:80",           // v6 without brackets
  };
  for (const char* text : cases) {
    INFO(text);
    CHECK_FALSE(parseSocketAddress(text).has_value());
  }
}

TEST_CASE("SocketAddress equality compares family, address and port") {
  CHECK(*parseSocketAddress("10.0.0.1:80") == *parseSocketAddress("10.0.0.1:80"));
  CHECK_FALSE(*parseSocketAddress("10.0.0.1:80") == *parseSocketAddress("10.0.0.1:81"));
  CHECK_FALSE(*parseSocketAddress("10.0.0.1:80") == *parseSocketAddress("10.0.0.2:80"));
  CHECK(*parseSocketAddress("[::1]:80") == *parseSocketAddress("[0::1]:80"));
  CHECK_FALSE(*parseSocketAddress("[::ffff:10.0.0.1]:80") == *parseSocketAddress("10.0.0.1:80"));
}

// ---- parseCidr / Cidr::contains ---------------------------------------------------------

TEST_CASE("parseCidr reads ranges and bare addresses") {
  Cidr a = cidr("10.0.0.0/8");
  CHECK(a.family == AF_INET);
  CHECK(a.prefix_length == 8);
  Cidr b = cidr("192.0.2.1");
  CHECK(b.family == AF_INET);
  CHECK(b.prefix_length == 32);
  Cidr c = cidr("2001:db8::/32");
  CHECK(c.family == AF_INET6);
  CHECK(c.prefix_length == 32);
  Cidr d = cidr("::1");
  CHECK(d.family == AF_INET6);
  CHECK(d.prefix_length == 128);
  CHECK(cidr("0.0.0.0/0").prefix_length == 0);
  CHECK(cidr("::/0").prefix_length == 0);
}

TEST_CASE("parseCidr rejects malformed ranges") {
  const char* cases[] = {
      "",               // empty
      "10.0.0.0/",      // no prefix
      "10.0.0.0/33",    // too long for v4
      "::/129",         // too long for v6
      "10.0.0.0/-1",    // negative
      "10.0.0.0/-0",    // a sign is not a prefix length
      "10.0.0.0/+8",    // sign
      "10.0.0.0/8x",    // junk
      "10.0.0.0/8/8",   // two slashes
      "10.0.0/8",       // short address
      "example.com/8",  // a name
      "/8",             // no address
      " 10.0.0.0/8",    // whitespace
  };
  for (const char* text : cases) {
    INFO(text);
    CHECK_FALSE(parseCidr(text).has_value());
  }
}

TEST_CASE("an IPv4 range contains the addresses under its prefix") {
  Cidr ten = cidr("10.0.0.0/8");
  CHECK(ten.contains(address("10.0.0.0")));
  CHECK(ten.contains(address("10.255.255.255")));
  CHECK_FALSE(ten.contains(address("11.0.0.0")));
  CHECK_FALSE(ten.contains(address("9.255.255.255")));

  Cidr host = cidr("192.0.2.7/32");
  CHECK(host.contains(address("192.0.2.7")));
  CHECK_FALSE(host.contains(address("192.0.2.6")));
  CHECK_FALSE(host.contains(address("192.0.2.8")));

  Cidr all = cidr("0.0.0.0/0");
  CHECK(all.contains(address("0.0.0.0")));
  CHECK(all.contains(address("255.255.255.255")));
  CHECK(all.contains(address("203.0.113.9")));
}

TEST_CASE("prefixes that are not a whole number of bytes") {
  Cidr twelve = cidr("172.16.0.0/12");
  CHECK(twelve.contains(address("172.16.0.1")));
  CHECK(twelve.contains(address("172.31.255.255")));
  CHECK_FALSE(twelve.contains(address("172.32.0.0")));
  CHECK_FALSE(twelve.contains(address("172.15.255.255")));

  Cidr upper_half = cidr("192.168.1.128/25");
  CHECK(upper_half.contains(address("192.168.1.128")));
  CHECK(upper_half.contains(address("192.168.1.255")));
  CHECK_FALSE(upper_half.contains(address("192.168.1.127")));

  Cidr one_bit = cidr("128.0.0.0/1");
  CHECK(one_bit.contains(address("200.1.1.1")));
  CHECK_FALSE(one_bit.contains(address("127.255.255.255")));

  // Host bits set in the range itself are ignored.
  Cidr sloppy = cidr("10.1.2.3/8");
  CHECK(sloppy.contains(address("10.200.0.1")));
  CHECK_FALSE(sloppy.contains(address("11.1.2.3")));
}

TEST_CASE("an IPv6 range contains the addresses under its prefix") {
  Cidr doc = cidr("2001:db8::/32");
  CHECK(doc.contains(address("2001:db8::1")));
  CHECK(doc.contains(address("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(doc.contains(address("2001:db9::1")));

  Cidr ula = cidr("fc00::/7");
  CHECK(ula.contains(address("fd12:3456::1")));
  CHECK_FALSE(ula.contains(address("fe80::1")));

  Cidr loopback = cidr("::1/128");
  CHECK(loopback.contains(address("::1")));
  CHECK_FALSE(loopback.contains(address("::2")));

  CHECK(cidr("::/0").contains(address("2001:db8::1")));
}

TEST_CASE("an IPv4-mapped IPv6 address matches an IPv4 range") {
  Cidr ten = cidr("10.0.0.0/8");
  CHECK(ten.contains(address("::ffff:10.1.2.3")));
  CHECK_FALSE(ten.contains(address("::ffff:11.1.2.3")));
  CHECK(cidr("0.0.0.0/0").contains(address("::ffff:1.2.3.4")));
  CHECK(cidr("192.0.2.7").contains(address("::ffff:192.0.2.7")));
  // Only the ::ffff:0:0/96 mapping counts, not other embeddings of the same bytes.
  CHECK_FALSE(ten.contains(address("::10.1.2.3")));
  CHECK_FALSE(ten.contains(address("64:ff9b::10.1.2.3")));
}

TEST_CASE("ranges never match addresses of the other family") {
  CHECK_FALSE(cidr("10.0.0.0/8").contains(address("2001:db8::1")));
  CHECK_FALSE(cidr("0.0.0.0/0").contains(address("2001:db8::1")));
  CHECK_FALSE(cidr("::/0").contains(address("10.0.0.1")));
  CHECK_FALSE(cidr("::1").contains(address("127.0.0.1")));

  SocketAddress unknown;  // AF_UNSPEC
  CHECK_FALSE(cidr("0.0.0.0/0").contains(unknown));
  CHECK_FALSE(cidr("::/0").contains(unknown));
}

}  // namespace
}  // namespace gw::net
