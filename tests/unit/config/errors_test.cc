#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <string>

#include "gateway/config/loader.h"

using namespace gw::config;

namespace {

// Every test config ends with this, so the lines above it are what is tested.
const std::string kListener = "\n[[listeners]]\nlisten = \"127.0.0.1:0\"\n";

std::string allErrors(const LoadResult& result) {
  std::string out;
  for (const ConfigError& e : result.errors) out += e.toString() + "\n";
  return out;
}

// Loads `text` (named t.toml) and requires that it fails with exactly one error.
ConfigError onlyError(const std::string& text) {
  LoadResult result = loadConfigString(text, "t.toml");
  INFO(allErrors(result));
  REQUIRE_FALSE(result.ok());
  REQUIRE(result.snapshot == nullptr);
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].where.file == "t.toml");
  return result.errors[0];
}

}  // namespace

TEST_CASE("ConfigError::toString is file:line:col: reason, leaving out what is unknown") {
  ConfigError e{{"a.toml", 3, 7}, "bad"};
  CHECK(e.toString() == "a.toml:3:7: bad");
  e.where.column = 0;
  CHECK(e.toString() == "a.toml:3: bad");
  e.where.line = 0;
  CHECK(e.toString() == "a.toml: bad");
}

TEST_CASE("a TOML syntax error has toml++'s description and position") {
  ConfigError e = onlyError("workers = 2\nlog = = 1\n" + kListener);
  CHECK(e.where.line == 2);
  CHECK(e.where.column == 7);
  CHECK_THAT(e.reason, Catch::Contains("could not determine value type"));
  CHECK(e.toString().rfind("t.toml:2:7: ", 0) == 0);
}

TEST_CASE("unknown keys are errors, with a suggestion for typos") {
  SECTION("in an inline match table") {
    ConfigError e = onlyError(kListener + R"(
[[routes]]
service = "a"
match = { hoost = "x.com" }
[services.a.pools.p]
endpoints = ["127.0.0.1:1"]
)");
    CHECK(e.toString() ==
          "t.toml:7:11: unknown key \"hoost\" in [[routes]] match (did you mean \"host\"?)");
  }
  SECTION("at the top level") {
    ConfigError e = onlyError("wokers = 2\n" + kListener);
    CHECK(e.toString() ==
          "t.toml:1:1: unknown key \"wokers\" at the top level (did you mean \"workers\"?)");
  }
  SECTION("a swap of two letters is one edit") {
    ConfigError e = onlyError("[log]\nlevle = \"info\"\n" + kListener);
    CHECK(e.where.line == 2);
    CHECK(e.reason == "unknown key \"levle\" in [log] (did you mean \"level\"?)");
  }
  SECTION("a top-level key written after a table header") {
    ConfigError e = onlyError(kListener + "workers = 2\n");
    CHECK(e.where.line == 4);
    CHECK(e.reason ==
          "unknown key \"workers\" in [[listeners]] (top-level keys must come before the first "
          "[table] or [[array]] header)");
  }
  SECTION("no suggestion when nothing is close") {
    ConfigError e = onlyError("[admin]\ncolour = \"red\"\n" + kListener);
    CHECK(e.where.line == 2);
    CHECK(e.reason == "unknown key \"colour\" in [admin]");
  }
  SECTION("in a listener's limits") {
    ConfigError e =
        onlyError("[[listeners]]\nlisten = \"127.0.0.1:0\"\nlimits = { max_bdy = \"1MiB\" }\n");
    CHECK(e.where.line == 3);
    CHECK(e.where.column == 12);
    CHECK(e.reason ==
          "unknown key \"max_bdy\" in [[listeners]] limits (did you mean \"max_body\"?)");
  }
  SECTION("in [limits], [forwarding], [[listeners]]") {
    LoadResult result = loadConfigString(R"([limits]
max_header = "1KiB"
[forwarding]
x_forwarded_four = true
[[listeners]]
listen = "127.0.0.1:0"
nmae = "x"
)",
                                         "t.toml");
    INFO(allErrors(result));
    REQUIRE(result.errors.size() == 3);
    CHECK(result.errors[0].toString() ==
          "t.toml:2:1: unknown key \"max_header\" in [limits] (did you mean \"max_headers\"?)");
    CHECK(result.errors[1].toString() ==
          "t.toml:4:1: unknown key \"x_forwarded_four\" in [forwarding] (did you mean "
          "\"x_forwarded_for\"?)");
    CHECK(result.errors[2].toString() ==
          "t.toml:7:1: unknown key \"nmae\" in [[listeners]] (did you mean \"name\"?)");
  }
  SECTION("in a service and in a pool") {
    LoadResult result = loadConfigString(kListener + R"(
[services.api]
lbb = "round_robin"
[services.api.pools.blue]
endpoint = ["127.0.0.1:1"]
)",
                                         "t.toml");
    INFO(allErrors(result));
    REQUIRE(result.errors.size() == 3);
    CHECK(result.errors[0].toString() ==
          "t.toml:6:1: unknown key \"lbb\" in [services.api] (did you mean \"lb\"?)");
    CHECK(result.errors[1].where.line == 7);
    CHECK(result.errors[1].reason ==
          "service \"api\" pool \"blue\": \"endpoints\" is required, "
          "e.g. endpoints = [\"127.0.0.1:9001\"]");
    CHECK(result.errors[2].toString() ==
          "t.toml:8:1: unknown key \"endpoint\" in [services.api.pools.blue] (did you mean "
          "\"endpoints\"?)");
  }
  SECTION("in a route") {
    ConfigError e = onlyError(kListener +
                              "[[routes]]\nservice = \"a\"\nmatc = {}\n"
                              "[services.a.pools.p]\nendpoints = [\"127.0.0.1:1\"]\n");
    CHECK(e.where.line == 6);
    CHECK(e.reason == "unknown key \"matc\" in [[routes]] (did you mean \"match\"?)");
  }
}

TEST_CASE("type errors name the key") {
  SECTION("integer") {
    ConfigError e = onlyError("[limits]\nmax_headers = \"100\"\n" + kListener);
    CHECK(e.toString() == "t.toml:2:15: \"max_headers\" must be an integer");
  }
  SECTION("string") {
    ConfigError e = onlyError("[log]\nlevel = 3\n" + kListener);
    CHECK(e.toString() == "t.toml:2:9: \"level\" must be a string");
  }
  SECTION("bool") {
    ConfigError e = onlyError("[forwarding]\nvia = \"yes\"\n" + kListener);
    CHECK(e.toString() == "t.toml:2:7: \"via\" must be true or false");
  }
  SECTION("table") {
    ConfigError e = onlyError("limits = 5\n" + kListener);
    CHECK(e.toString() == "t.toml:1:10: \"limits\" must be a table");
  }
  SECTION("array of strings") {
    ConfigError e = onlyError("[forwarding]\ntrusted_proxies = \"10.0.0.0/8\"\n" + kListener);
    CHECK(e.where.line == 2);
    CHECK(e.reason == "\"trusted_proxies\" must be an array of strings");
  }
  SECTION("element of an array") {
    ConfigError e = onlyError("[forwarding]\ntrusted_proxies = [\"::1\", 5]\n" + kListener);
    CHECK(e.where.line == 2);
    CHECK(e.where.column == 27);
    CHECK(e.reason == "\"trusted_proxies\" must be an array of strings");
  }
}

TEST_CASE("durations need a unit; sizes and counts are range-checked") {
  SECTION("integer duration") {
    ConfigError e = onlyError("[limits]\nidle_timeout = 60\n" + kListener);
    CHECK(e.toString() == "t.toml:2:16: \"idle_timeout\": durations need a unit, e.g. \"5s\"");
  }
  SECTION("bad duration unit") {
    ConfigError e = onlyError("[limits]\nheader_read_timeout = \"5sec\"\n" + kListener);
    CHECK(e.where.line == 2);
    CHECK_THAT(e.reason, Catch::StartsWith("\"header_read_timeout\": invalid duration \"5sec\""));
  }
  SECTION("negative duration") {
    ConfigError e = onlyError("[limits]\nidle_timeout = \"-5s\"\n" + kListener);
    CHECK_THAT(e.reason, Catch::StartsWith("\"idle_timeout\": invalid duration \"-5s\""));
  }
  SECTION("zero timeout") {
    ConfigError e = onlyError("[limits]\nidle_timeout = \"0s\"\n" + kListener);
    CHECK(e.reason == "\"idle_timeout\" must be at least 1ms");
  }
  SECTION("zero drain timeout is fine") {
    LoadResult result = loadConfigString("[limits]\ndrain_timeout = \"0s\"\n" + kListener, "t");
    INFO(allErrors(result));
    REQUIRE(result.ok());
    CHECK(result.snapshot->limits.drain_timeout_ms == 0);
  }
  SECTION("size too large") {
    ConfigError e = onlyError("[limits]\nmax_header_bytes = \"2MiB\"\n" + kListener);
    CHECK(e.toString() ==
          "t.toml:2:20: \"max_header_bytes\" must be between 1KiB and 1MiB (got 2MiB)");
  }
  SECTION("size too small, as an integer") {
    ConfigError e = onlyError("[limits]\nmax_header_bytes = 100\n" + kListener);
    CHECK(e.reason == "\"max_header_bytes\" must be between 1KiB and 1MiB (got 100B)");
  }
  SECTION("bad size") {
    ConfigError e = onlyError("[limits]\nmax_body = \"10XB\"\n" + kListener);
    CHECK_THAT(e.reason, Catch::StartsWith("\"max_body\": invalid size \"10XB\""));
  }
  SECTION("negative size") {
    ConfigError e = onlyError("[limits]\nmax_body = -1\n" + kListener);
    CHECK(e.reason == "\"max_body\" must not be negative");
  }
  SECTION("count out of range") {
    ConfigError e = onlyError("[limits]\nmax_headers = 5000\n" + kListener);
    CHECK(e.toString() == "t.toml:2:15: \"max_headers\" must be between 1 and 1000 (got 5000)");
  }
  SECTION("max_connections out of range") {
    ConfigError e = onlyError("[limits]\nmax_connections = 0\n" + kListener);
    CHECK(e.reason == "\"max_connections\" must be between 1 and 1000000 (got 0)");
  }
  SECTION("workers") {
    CHECK(onlyError("workers = 0\n" + kListener).reason ==
          "\"workers\" must be between 1 and 256 (got 0)");
    CHECK(onlyError("workers = 257\n" + kListener).reason ==
          "\"workers\" must be between 1 and 256 (got 257)");
    ConfigError e = onlyError("workers = \"many\"\n" + kListener);
    CHECK(e.toString() ==
          "t.toml:1:11: \"workers\" must be \"auto\" or an integer between 1 and 256");
    CHECK(onlyError("workers = \"4\"\n" + kListener).reason ==
          "\"workers\" must be \"auto\" or an integer between 1 and 256 (write 4 without quotes)");
  }
  SECTION("max_idle_connections") {
    ConfigError e = onlyError(kListener +
                              "[services.a]\nmax_idle_connections = 10001\n"
                              "[services.a.pools.p]\nendpoints = [\"127.0.0.1:1\"]\n");
    CHECK(e.where.line == 5);
    CHECK(e.reason == "\"max_idle_connections\" must be between 0 and 10000 (got 10001)");
  }
}

TEST_CASE("admin, log and forwarding values are checked") {
  SECTION("admin needs a numeric address") {
    ConfigError e = onlyError("[admin]\nlisten = \"localhost:9901\"\n" + kListener);
    CHECK(e.where.line == 2);
    CHECK_THAT(e.reason, Catch::StartsWith("\"listen\" must be a numeric IP:port"));
    CHECK_THAT(e.reason, Catch::Contains("(got \"localhost:9901\")"));
  }
  SECTION("log level") {
    ConfigError e = onlyError("[log]\nlevel = \"verbose\"\n" + kListener);
    CHECK(e.reason == "\"level\" must be one of debug, info, warn, error (got \"verbose\")");
  }
  SECTION("trusted proxy") {
    ConfigError e = onlyError(
        "[forwarding]\ntrusted_proxies = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n" + kListener);
    CHECK(e.where.line == 2);
    CHECK(e.where.column == 34);
    CHECK_THAT(e.reason, Catch::StartsWith("\"trusted_proxies\": invalid address range "
                                           "\"10.0.0.0/33\""));
  }
}

TEST_CASE("listeners are required, need a numeric address, and must not clash") {
  SECTION("none") {
    ConfigError e = onlyError("workers = 2\n");
    CHECK(e.where.line == 0);
    CHECK_THAT(e.toString(), Catch::StartsWith("t.toml: at least one [[listeners]] is required"));
  }
  SECTION("not an array of tables") {
    ConfigError e = onlyError("listeners = \"0.0.0.0:80\"\n");
    CHECK(e.where.line == 1);
    CHECK_THAT(e.reason, Catch::StartsWith("\"listeners\" must be an array of tables"));
  }
  SECTION("missing listen") {
    ConfigError e = onlyError("workers = 1\n[[listeners]]\nname = \"web\"\n");
    CHECK(e.toString() ==
          "t.toml:2:1: listener \"web\": \"listen\" is required, e.g. listen = \"0.0.0.0:8080\"");
  }
  SECTION("a hostname is not a listen address") {
    ConfigError e = onlyError("[[listeners]]\nlisten = \"localhost:8080\"\n");
    CHECK(e.where.line == 2);
    CHECK(e.where.column == 10);
    CHECK_THAT(e.reason, Catch::StartsWith("\"listen\" must be a numeric IP:port"));
  }
  SECTION("a bad port") {
    ConfigError e = onlyError("[[listeners]]\nlisten = \"0.0.0.0:70000\"\n");
    CHECK(e.where.line == 2);
  }
  SECTION("duplicate names") {
    ConfigError e = onlyError(R"([[listeners]]
name = "web"
listen = "127.0.0.1:1"
[[listeners]]
name = "web"
listen = "127.0.0.1:2"
)");
    CHECK(e.toString() == "t.toml:5:8: duplicate listener name \"web\" (first used on line 2)");
  }
  SECTION("duplicate addresses") {
    ConfigError e = onlyError(R"([[listeners]]
name = "a"
listen = "127.0.0.1:8080"
[[listeners]]
name = "b"
listen = "127.0.0.1:8080"
)");
    CHECK(e.toString() ==
          "t.toml:6:10: listener \"b\": \"127.0.0.1:8080\" conflicts with listener "
          "\"a\" at \"127.0.0.1:8080\"");
  }
  SECTION("a wildcard and a specific address on one port") {
    ConfigError e = onlyError(R"([[listeners]]
listen = "0.0.0.0:8080"
[[listeners]]
listen = "10.1.2.3:8080"
)");
    CHECK(e.where.line == 4);
    CHECK(e.reason ==
          "listener \"listener-1\": \"10.1.2.3:8080\" conflicts with listener "
          "\"listener-0\" at \"0.0.0.0:8080\"");
  }
  SECTION("the admin address") {
    ConfigError e = onlyError("[[listeners]]\nlisten = \"0.0.0.0:9901\"\n");
    CHECK(e.where.line == 2);
    CHECK(e.reason ==
          "listener \"listener-0\": \"0.0.0.0:9901\" conflicts with the admin listener "
          "\"127.0.0.1:9901\"");
  }
}

TEST_CASE("[access_log] and [metrics] are read and checked") {
  LoadResult ok = loadConfigString(
      "[access_log]\npath = \"/tmp/x.log\"\nfields = [\"status\", \"trace_id\"]\n"
      "buffer_size = \"64KiB\"\n[metrics]\nenabled = false\n" +
          kListener,
      "t.toml");
  INFO(allErrors(ok));
  REQUIRE(ok.ok());
  const auto& log = ok.snapshot->access_log;
  CHECK(log.enabled);
  CHECK(log.path == "/tmp/x.log");
  CHECK(log.buffer_bytes == 64 * 1024);
  CHECK(log.fields ==
        std::vector<gw::observe::AccessLogField>{gw::observe::AccessLogField::Status,
                                                 gw::observe::AccessLogField::TraceId});
  CHECK_FALSE(ok.snapshot->metrics.enabled);

  LoadResult off = loadConfigString(kListener, "t.toml");
  REQUIRE(off.ok());
  CHECK_FALSE(off.snapshot->access_log.enabled);
  CHECK(off.snapshot->metrics.enabled);

  ConfigError e = onlyError("[access_log]\nformat = \"xml\"\n" + kListener);
  CHECK(e.toString() ==
        "t.toml:2:10: \"format\" must be one of json, common, combined (got \"xml\")");
  e = onlyError("[access_log]\nfields = [\"status\", \"rout\"]\n" + kListener);
  CHECK(e.toString() ==
        "t.toml:2:21: \"fields\": unknown field \"rout\" (did you mean \"route\"?)");
  e = onlyError("[access_log]\nformat = \"common\"\nfields = [\"status\"]\n" + kListener);
  CHECK(e.where.line == 3);
  e = onlyError("[access_log]\nenabeld = true\n" + kListener);
  CHECK(e.toString().find("unknown key \"enabeld\" in [access_log] (did you mean \"enabled\"?)") !=
        std::string::npos);
  e = onlyError("[metrics]\nenabled = 1\n" + kListener);
  CHECK(e.where.line == 2);
}

// Found by the config fuzzer: toml++ 3.3 aborted on an assertion (builds without NDEBUG)
// for a control character inside a table header; the loader refuses it first.
TEST_CASE("a control character anywhere is an error at its position") {
  ConfigError e = onlyError("workers = 2\n[\x01routes]\n" + kListener);
  CHECK(e.where.line == 2);
  CHECK(e.where.column == 2);
  CHECK(e.reason.find("U+0001") != std::string::npos);
  e = onlyError(std::string("# caf\xc3\xa9 \0\n", 10) + kListener);
  CHECK(e.where.line == 1);
  CHECK(e.where.column == 8);
  CHECK(e.reason.find("U+0000") != std::string::npos);
}

// Found by the config fuzzer: toml++ 3.3 aborted on a debug assertion for a table header
// whose key starts with a character no key can start with (third_party/tomlplusplus.BUILD).
TEST_CASE("a table header with a bad key is an error, not an abort") {
  for (const char* text : {"[[[listeners]]\n", "[=a]\n", "[ #a]\n"}) {
    INFO(text);
    ConfigError e = onlyError(std::string(text) + kListener);
    CHECK(e.where.line == 1);
  }
}

// Found by the config fuzzer: toml++ 3.3 reached __builtin_unreachable() when it asked
// whether a non-ASCII character is whitespace, for most of U+00A1..U+0499 and the code
// points near U+3000 and U+FEFF: after a table header or a value, at a key's start, after
// a line-ending backslash in a multi-line string. Its headers are copied with a fix
// (third_party/tomlplusplus_fix.py); UBSan (--config=asan) stops here on the unfixed ones.
TEST_CASE("non-ASCII text where toml++ looks for whitespace is read, not undefined behaviour") {
  // Outside strings and comments it is an error at its line.
  for (const char* text : {"[admin] \xc3\xa0\n",            // [admin] à
                           "workers = 2 \xd0\x96\n",        // after a value: Ж
                           "\xe3\x80\x81 = 1\n",            // a key starting with U+3001
                           "workers = 2\xef\xbb\xbe\n"}) {  // U+FEFE, next to the BOM
    INFO(text);
    ConfigError e = onlyError(std::string(text) + kListener);
    CHECK(e.where.line == 1);
  }
  // A valid multi-line string: the line-ending backslash trims up to the é.
  LoadResult result = loadConfigString(
      "[access_log]\npath = \"\"\"/tmp/a \\\n  \xc3\xa9\"\"\"\n" + kListener, "t.toml");
  INFO(allErrors(result));
  REQUIRE(result.ok());
  CHECK(result.snapshot->access_log.path == "/tmp/a \xc3\xa9");
  // Real non-ASCII whitespace stays whitespace where TOML allows none: an error, not a key.
  CHECK(onlyError("workers = 2\n\xe3\x80\x80x = 1\n" + kListener).where.line == 2);  // U+3000
}

TEST_CASE("a route's upgrades are protocol names, never h2c; TRACE and CONNECT match no route") {
  const std::string service = "\n[services.a.pools.p]\nendpoints = [\"127.0.0.1:1\"]\n";
  SECTION("h2c") {
    ConfigError e = onlyError(
        kListener + "[[routes]]\nservice = \"a\"\nupgrades = [\"websocket\", \"H2C\"]\n" + service);
    CHECK(e.where.line == 6);
    CHECK(e.where.column == 26);
    CHECK(e.reason.find("\"upgrades\": h2c is never tunnelled") == 0);
  }
  SECTION("not a token") {
    ConfigError e = onlyError(
        kListener + "[[routes]]\nservice = \"a\"\nupgrades = [\"web socket\"]\n" + service);
    CHECK(e.toString() ==
          "t.toml:6:13: \"upgrades\": \"web socket\" is not a protocol name (like \"websocket\")");
  }
  SECTION("TRACE or CONNECT in methods") {
    const std::string method = GENERATE(as<std::string>{}, "trace", "CONNECT");
    ConfigError e =
        onlyError(kListener + "[[routes]]\nservice = \"a\"\nmatch = { methods = [\"GET\", \"" +
                  method + "\"] }\n" + service);
    CHECK(e.where.line == 6);
    CHECK(e.reason == "\"methods\": " + std::string(method == "trace" ? "TRACE" : "CONNECT") +
                          " is always refused with 405, so no route gets it");
  }
}
