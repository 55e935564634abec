#define CATCH_CONFIG_MAIN
#include "gateway/tls/context.h"

#include <catch2/catch.hpp>

#include "gateway/tls/session_tickets.h"
#include "tests/unit/tls/test_certs.h"

using namespace gw::tls;
using gw::testing::makeCert;

namespace {

std::shared_ptr<const ServerContext> build(const ServerSettings& s, ContextError& error) {
  return ServerContext::build(s, error);
}

}  // namespace

TEST_CASE("SNI: exact names, one-label wildcards, the first certificate as default") {
  auto a = makeCert("sni-a", "a", {"a.example.com"});
  auto api = makeCert("sni-api", "api", {});
  auto san = makeCert("sni-san", "san", {"san.example.org", "*.san.example.org"});
  ServerSettings s;
  s.certificates = {{a.cert, a.key, {}},
                    {api.cert, api.key, {"api.example.com", "*.api.example.com"}},
                    {san.cert, san.key, {}}};
  ContextError error;
  auto ctx = build(s, error);
  INFO(error.reason);
  REQUIRE(ctx != nullptr);
  CHECK(ctx->certificateCount() == 3);
  CHECK(ctx->findCertificate("a.example.com") == 0);  // from the certificate's SAN
  CHECK(ctx->findCertificate("api.example.com") == 1);
  CHECK(ctx->findCertificate("v1.api.example.com") == 1);
  CHECK(ctx->findCertificate("a.b.api.example.com") == -1);  // one label only
  CHECK(ctx->findCertificate(".api.example.com") == -1);
  CHECK(ctx->findCertificate("san.example.org") == 2);
  CHECK(ctx->findCertificate("x.san.example.org") == 2);
  CHECK(ctx->findCertificate("example.com") == -1);
  CHECK(ctx->findCertificate("") == -1);
  SSL* ssl = ctx->newConnection();
  REQUIRE(ssl != nullptr);
  CHECK(SSL_get_SSL_CTX(ssl) == ctx->certificateContext(0));  // the default until SNI
  SSL_free(ssl);
}

TEST_CASE("the first certificate naming a host wins") {
  auto one = makeCert("dup-1", "one", {"same.example.com"});
  auto two = makeCert("dup-2", "two", {"same.example.com"});
  ServerSettings s;
  s.certificates = {{one.cert, one.key, {}}, {two.cert, two.key, {}}};
  ContextError error;
  auto ctx = build(s, error);
  REQUIRE(ctx != nullptr);
  CHECK(ctx->findCertificate("same.example.com") == 0);
}

TEST_CASE("bad certificates are refused with the file named") {
  auto good = makeCert("good", "good", {"good.example.com"});
  auto other = makeCert("other", "other", {});
  ServerSettings s;
  ContextError error;

  SECTION("missing file") {
    s.certificates = {{"/nonexistent/cert.pem", good.key, {}}};
    CHECK(build(s, error) == nullptr);
    CHECK(error.file == "/nonexistent/cert.pem");
    CHECK_THAT(error.reason, Catch::Contains("cannot read /nonexistent/cert.pem") &&
                                 Catch::Contains("No such file"));
  }
  SECTION("key does not match") {
    s.certificates = {{good.cert, other.key, {}}};
    CHECK(build(s, error) == nullptr);
    CHECK(error.file == other.key);
    CHECK_THAT(error.reason, Catch::Contains("does not match certificate " + good.cert));
  }
  SECTION("not a certificate") {
    s.certificates = {{good.key, good.key, {}}};
    CHECK(build(s, error) == nullptr);
    CHECK(error.file == good.key);
    CHECK_THAT(error.reason, Catch::Contains("cannot load certificate"));
  }
  SECTION("expired") {
    auto old = makeCert("expired", "old", {}, -7200, -3600);
    s.certificates = {{old.cert, old.key, {}}};
    CHECK(build(s, error) == nullptr);
    CHECK(error.file == old.cert);
    CHECK_THAT(error.reason, Catch::EndsWith("has expired"));
  }
  SECTION("not valid yet") {
    auto future = makeCert("future", "future", {}, 3600, 7200);
    s.certificates = {{future.cert, future.key, {}}};
    CHECK(build(s, error) == nullptr);
    CHECK_THAT(error.reason, Catch::EndsWith("is not valid yet"));
  }
  SECTION("missing client CA") {
    s.certificates = {{good.cert, good.key, {}}};
    s.client_auth = ClientAuth::Required;
    s.client_ca_file = "/nonexistent/ca.pem";
    CHECK(build(s, error) == nullptr);
    CHECK(error.file == "/nonexistent/ca.pem");
  }
  SECTION("unknown cipher") {
    s.certificates = {{good.cert, good.key, {}}};
    s.ciphers = "NOT-A-CIPHER";
    CHECK(build(s, error) == nullptr);
    CHECK_THAT(error.reason, Catch::Contains("tls.ciphers"));
  }
}

TEST_CASE("ticket key names change with the rotation period and are not guessable") {
  unsigned char a[16], b[16], c[16], d[16];
  ticketKeyName(3'600'000, 100, a);
  ticketKeyName(3'600'000, 100, b);
  ticketKeyName(3'600'000, 101, c);
  ticketKeyName(60'000, 100, d);
  CHECK(std::memcmp(a, b, 16) == 0);  // every worker derives the same name
  CHECK(std::memcmp(a, c, 16) != 0);
  CHECK(std::memcmp(a + 8, d + 8, 8) != 0);  // the period length is part of the key
  CHECK(a[7] == 100);                        // the period, big-endian, comes first
}
