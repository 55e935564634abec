#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <string>

#include "gateway/config/loader.h"
#include "tests/unit/tls/test_certs.h"

using namespace gw::config;
using gw::testing::makeCert;

namespace {

const std::string kRest = R"(
[[routes]]
service = "a"
[services.a.pools.p]
endpoints = ["127.0.0.1:1"]
)";

std::string allErrors(const LoadResult& result) {
  std::string out;
  for (const ConfigError& e : result.errors) out += e.toString() + "\n";
  return out;
}

ConfigError onlyError(const std::string& text) {
  LoadResult result = loadConfigString(text + kRest, "t.toml");
  INFO(allErrors(result));
  REQUIRE_FALSE(result.ok());
  REQUIRE(result.errors.size() == 1);
  return result.errors[0];
}

}  // namespace

TEST_CASE("a tls listener loads, with defaults and SNI names") {
  auto c = makeCert("cfg-a", "a", {"a.example.com"});
  auto api = makeCert("cfg-api", "api", {});
  LoadResult result = loadConfigString(R"([[listeners]]
listen = "127.0.0.1:0"
tls.certificates = [
  { cert = ")" + c.cert + R"(", key = ")" + c.key +
                                           R"(" },
  { cert = ")" + api.cert + R"(", key = ")" +
                                           api.key +
                                           R"(", server_names = ["*.api.example.com"] },
]
tls.min_version = "1.3"
tls.handshake_timeout = "3s"
)" + kRest,
                                       "t.toml");
  INFO(allErrors(result));
  REQUIRE(result.ok());
  const Listener& l = result.snapshot->listeners[0];
  REQUIRE(l.tls != nullptr);
  const gw::tls::ServerSettings& s = l.tls->settings();
  CHECK(s.min_version == TLS1_3_VERSION);
  CHECK(s.handshake_timeout_ms == 3000);
  CHECK(s.session_tickets);
  CHECK(s.ticket_key_rotation_ms == 3'600'000);
  CHECK(s.client_auth == gw::tls::ClientAuth::None);
  CHECK(l.tls->findCertificate("a.example.com") == 0);
  CHECK(l.tls->findCertificate("x.api.example.com") == 1);
}

TEST_CASE("a listener without tls stays plain") {
  LoadResult result = loadConfigString("[[listeners]]\nlisten = \"127.0.0.1:0\"\n" + kRest, "t");
  REQUIRE(result.ok());
  CHECK(result.snapshot->listeners[0].tls == nullptr);
}

TEST_CASE("tls errors name the line and the file") {
  auto c = makeCert("cfg-b", "b", {});
  auto other = makeCert("cfg-other", "o", {});
  const std::string head = "[[listeners]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\n";

  SECTION("missing certificate file: at the cert value") {
    ConfigError e = onlyError(head + "tls.certificates = [{ cert = \"/no/such.pem\", key = \"" +
                              c.key + "\" }]\n");
    INFO(e.toString());
    CHECK(e.toString().rfind("t.toml:4:30: listener \"web\": cannot read /no/such.pem", 0) == 0);
  }
  SECTION("key that does not match: at the key value") {
    ConfigError e = onlyError(head + "tls.certificates = [{ cert = \"" + c.cert + "\", key = \"" +
                              other.key + "\" }]\n");
    CHECK(e.where.line == 4);
    CHECK_THAT(e.reason, Catch::Contains("private key " + other.key + " does not match"));
  }
  SECTION("expired certificate") {
    auto old = makeCert("cfg-old", "old", {}, -7200, -60);
    ConfigError e = onlyError(head + "tls.certificates = [{ cert = \"" + old.cert + "\", key = \"" +
                              old.key + "\" }]\n");
    CHECK_THAT(e.reason, Catch::Contains(old.cert + " has expired"));
  }
  SECTION("relative paths are relative to the config file") {
    LoadResult result = loadConfigString(
        head + "tls.certificates = [{ cert = \"sub/x.pem\", key = \"sub/x.key\" }]\n" + kRest,
        "/etc/gw/main.toml");
    REQUIRE(result.errors.size() == 1);
    CHECK_THAT(result.errors[0].reason, Catch::Contains("cannot read /etc/gw/sub/x.pem"));
  }
  SECTION("no certificates") {
    ConfigError e = onlyError(head + "tls.min_version = \"1.2\"\n");
    CHECK_THAT(e.reason, Catch::Contains("tls needs certificates"));
  }
  SECTION("cert without key") {
    ConfigError e = onlyError(head + "tls.certificates = [{ cert = \"" + c.cert + "\" }]\n");
    CHECK_THAT(e.reason, Catch::Contains("\"key\" is required"));
  }
  SECTION("bad min_version") {
    ConfigError e = onlyError(head + "tls.certificates = [{ cert = \"" + c.cert + "\", key = \"" +
                              c.key + "\" }]\ntls.min_version = \"1.1\"\n");
    CHECK(e.toString() == "t.toml:5:19: tls.min_version must be \"1.2\" or \"1.3\" (got \"1.1\")");
  }
  SECTION("client_auth without client_ca") {
    ConfigError e = onlyError(head + "tls.certificates = [{ cert = \"" + c.cert + "\", key = \"" +
                              c.key + "\" }]\ntls.client_auth = \"optional\"\n");
    CHECK_THAT(e.reason, Catch::Contains("needs client_ca"));
  }
  SECTION("unknown key, with a suggestion") {
    ConfigError e = onlyError(head + "tls.certificates = [{ cert = \"" + c.cert + "\", key = \"" +
                              c.key + "\" }]\ntls.min_verson = \"1.2\"\n");
    CHECK_THAT(e.reason, Catch::Contains("unknown key \"min_verson\"") &&
                             Catch::Contains("did you mean \"min_version\""));
  }
  SECTION("wildcard in the middle") {
    ConfigError e = onlyError(head + "tls.certificates = [{ cert = \"" + c.cert + "\", key = \"" +
                              c.key + "\", server_names = [\"a.*.com\"] }]\n");
    CHECK_THAT(e.reason, Catch::Contains("a wildcard may only be a whole first label"));
  }
  SECTION("bad header name") {
    ConfigError e = onlyError(head + "tls.certificates = [{ cert = \"" + c.cert + "\", key = \"" +
                              c.key + "\" }]\ntls.client_subject_header = \"bad header\"\n");
    CHECK_THAT(e.reason, Catch::Contains("must be a header name"));
  }
}

TEST_CASE("redirect_to_https: true means 443, an integer is the port") {
  auto load = [](const std::string& value) {
    return loadConfigString(
        "[[listeners]]\nlisten = \"127.0.0.1:0\"\nredirect_to_https = " + value + "\n" + kRest,
        "t.toml");
  };
  LoadResult yes = load("true");
  REQUIRE(yes.ok());
  CHECK(yes.snapshot->listeners[0].redirect_https_port == 443);
  LoadResult port = load("8443");
  REQUIRE(port.ok());
  CHECK(port.snapshot->listeners[0].redirect_https_port == 8443);
  LoadResult bad = load("\"yes\"");
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].toString() ==
        "t.toml:3:21: \"redirect_to_https\" must be true or the HTTPS port (1-65535)");
  CHECK(load("70000").errors.size() == 1);
}

TEST_CASE("http2: off by default; on a tls listener its context offers h2") {
  auto c = makeCert("cfg-h2", "h2", {});
  auto load = [&](const std::string& extra) {
    return loadConfigString("[[listeners]]\nlisten = \"127.0.0.1:0\"\n" + extra + "\n" + kRest,
                            "t.toml");
  };
  LoadResult plain = load("");
  REQUIRE(plain.ok());
  CHECK_FALSE(plain.snapshot->listeners[0].http2);
  LoadResult on = load("http2 = true\ntls.certificates = [{ cert = \"" + c.cert + "\", key = \"" +
                       c.key + "\" }]");
  INFO(allErrors(on));
  REQUIRE(on.ok());
  CHECK(on.snapshot->listeners[0].http2);
  CHECK(on.snapshot->listeners[0].tls->settings().http2);
  LoadResult bad = load("http2 = \"on\"");
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].toString() == "t.toml:3:9: \"http2\" must be true or false");
}

TEST_CASE("http2 as a table: limits, each checked with its line") {
  auto load = [&](const std::string& extra) {
    return loadConfigString("[[listeners]]\nlisten = \"127.0.0.1:0\"\n" + extra + "\n" + kRest,
                            "t.toml");
  };
  LoadResult on = load(
      "http2 = { max_concurrent_streams = 8, max_frame_size = \"64KiB\", stream_window = "
      "\"1MiB\", connection_window = \"4MiB\", flood_window = \"2s\", max_resets = 5, "
      "max_control_frames = 50, max_empty_frames = 7, max_continuations = 2 }");
  INFO(allErrors(on));
  REQUIRE(on.ok());
  const Listener& l = on.snapshot->listeners[0];
  CHECK(l.http2);
  CHECK(l.http2_settings.max_concurrent_streams == 8);
  CHECK(l.http2_settings.max_frame_size == 64 * 1024);
  CHECK(l.http2_settings.stream_window == 1024 * 1024);
  CHECK(l.http2_settings.connection_window == 4 * 1024 * 1024);
  CHECK(l.http2_settings.flood_window_ms == 2000);
  CHECK(l.http2_settings.max_resets == 5);
  CHECK(l.http2_settings.max_control_frames == 50);
  CHECK(l.http2_settings.max_empty_frames == 7);
  CHECK(l.http2_settings.max_continuations == 2);

  LoadResult defaults = load("http2 = {}");
  REQUIRE(defaults.ok());
  CHECK(defaults.snapshot->listeners[0].http2);
  CHECK(defaults.snapshot->listeners[0].http2_settings.max_concurrent_streams == 100);
  LoadResult off = load("http2 = { enabled = false, max_resets = 10 }");
  REQUIRE(off.ok());
  CHECK_FALSE(off.snapshot->listeners[0].http2);

  LoadResult small_frame = load("http2 = { max_frame_size = \"8KiB\" }");
  REQUIRE(small_frame.errors.size() == 1);
  CHECK(small_frame.errors[0].toString().rfind("t.toml:3:", 0) == 0);
  CHECK(small_frame.errors[0].toString().find("max_frame_size") != std::string::npos);
  LoadResult unknown = load("http2 = { max_stream = 3 }");
  REQUIRE(unknown.errors.size() == 1);
  CHECK(unknown.errors[0].toString().find("max_stream") != std::string::npos);
  CHECK(load("http2 = { max_concurrent_streams = 0 }").errors.size() == 1);
  CHECK(load("http2 = { flood_window = \"10ms\" }").errors.size() == 1);
}

TEST_CASE("a pool's upstream tls: true, or a table; files checked at load") {
  auto c = makeCert("pool-client", "client", {});
  auto load = [](const std::string& tls) {
    return loadConfigString(
        "[[listeners]]\nlisten = \"127.0.0.1:0\"\n[[routes]]\nservice = \"a\"\n"
        "[services.a.pools.p]\nendpoints = [\"127.0.0.1:1\"]\ntls = " +
            tls + "\n",
        "t.toml");
  };
  LoadResult plain = load("false");
  REQUIRE(plain.ok());
  CHECK(plain.snapshot->services.at("a").pools.at("p").tls == nullptr);
  LoadResult on = load("true");
  REQUIRE(on.ok());
  const auto& settings = on.snapshot->services.at("a").pools.at("p").tls->settings();
  CHECK(settings.verify);
  CHECK(settings.server_name.empty());
  LoadResult table = load("{ sni = \"api.internal\", ca_file = \"" + c.cert + "\", cert = \"" +
                          c.cert + "\", key = \"" + c.key + "\" }");
  INFO(allErrors(table));
  REQUIRE(table.ok());
  CHECK(table.snapshot->services.at("a").pools.at("p").tls->settings().server_name ==
        "api.internal");
  LoadResult missing = load("{ ca_file = \"/no/ca.pem\" }");
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].toString().rfind(
            "t.toml:7:19: service \"a\" pool \"p\": cannot read /no/ca.pem", 0) == 0);
  LoadResult half = load("{ cert = \"" + c.cert + "\" }");
  REQUIRE(half.errors.size() == 1);
  CHECK_THAT(half.errors[0].reason, Catch::Contains("needs both tls.cert and tls.key"));
  LoadResult typo = load("{ verfy = false }");
  REQUIRE(typo.errors.size() == 1);
  CHECK_THAT(typo.errors[0].reason, Catch::Contains("did you mean \"verify\""));
}
