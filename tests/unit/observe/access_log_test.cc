#define CATCH_CONFIG_MAIN
#include "gateway/observe/access_log.h"

#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "gateway/core/loop_context.h"

using namespace gw;
using namespace gw::observe;

namespace {

AccessLogEntry sample() {
  AccessLogEntry e;
  e.request_id = "id-1";
  e.client = "10.0.0.1";
  e.method = "GET";
  e.path = "/a?b=\"c\"";
  e.protocol = "HTTP/1.1";
  e.status = 200;
  e.bytes_in = 80;
  e.bytes_out = 1234;
  e.duration_us = 1'234'567;
  e.upstream_duration_us = 5;
  e.route = "api";
  e.service = "api";
  e.pool = "blue";
  e.endpoint = "10.0.1.1:80";
  e.user_agent = "curl/8";
  e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  return e;
}

const timespec kNow = {1'700'000'000, 123'456'789};  // 2023-11-14T22:13:20.123Z

std::string readFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("JSON lines carry the configured fields in order, escaped") {
  AccessLogSettings s;
  s.fields = {AccessLogField::Time,
              AccessLogField::Path,
              AccessLogField::Status,
              AccessLogField::Duration,
              AccessLogField::UpstreamDuration,
              AccessLogField::Sni};
  std::string out;
  formatAccessLog(s, sample(), kNow, out);
  CHECK(out ==
        "{\"time\":\"2023-11-14T22:13:20.123Z\",\"path\":\"/a?b=\\\"c\\\"\",\"status\":200,"
        "\"duration_ms\":1234.567,\"upstream_duration_ms\":0.005,\"sni\":\"\"}\n");
  AccessLogEntry none = sample();
  none.upstream_duration_us = -1;
  out.clear();
  s.fields = {AccessLogField::UpstreamDuration};
  formatAccessLog(s, none, kNow, out);
  CHECK(out == "{\"upstream_duration_ms\":null}\n");
}

TEST_CASE("every field has a unique name that maps back") {
  for (AccessLogField f : allAccessLogFields()) {
    auto back = accessLogFieldByName(accessLogFieldName(f));
    REQUIRE(back.has_value());
    CHECK(*back == f);
  }
  CHECK_FALSE(accessLogFieldByName("nope").has_value());
}

TEST_CASE("grpc_status is opt-in: null unless a gRPC local reply set it") {
  AccessLogSettings s;
  CHECK(s.fields.size() + 1 == allAccessLogFields().size());
  s.fields = {AccessLogField::Status, AccessLogField::GrpcStatus};
  std::string out;
  formatAccessLog(s, sample(), kNow, out);
  CHECK(out == "{\"status\":200,\"grpc_status\":null}\n");
  AccessLogEntry e = sample();
  e.status = 503;
  e.grpc_status = 14;
  out.clear();
  formatAccessLog(s, e, kNow, out);
  CHECK(out == "{\"status\":503,\"grpc_status\":14}\n");
}

TEST_CASE("common and combined formats") {
  AccessLogSettings s;
  s.format = AccessLogFormat::Common;
  std::string out;
  formatAccessLog(s, sample(), kNow, out);
  CHECK(out == "10.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET /a?b=\"c\" HTTP/1.1\" 200 1234\n");
  s.format = AccessLogFormat::Combined;
  AccessLogEntry e = sample();
  e.path = "/x y";  // a space cannot break the request field apart
  e.status = 0;
  e.user_agent = "say \"hi\"";
  out.clear();
  formatAccessLog(s, e, kNow, out);
  CHECK(out ==
        "10.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET /x_y HTTP/1.1\" - 1234 \"-\" "
        "\"say \\x22hi\\x22\"\n");
}

TEST_CASE("the writer writes through the loop, and drops lines over its buffer") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  char dir_template[] = "/tmp/gw-access-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  std::string path = std::string(dir_template) + "/a.log";
  AccessLogCounters counters;
  {
    LoopContext ctx(&loop);
    {
      AccessLogWriter writer(ctx, counters);
      AccessLogSettings s;
      s.enabled = true;
      s.path = path;
      s.fields = {AccessLogField::Path};
      s.buffer_bytes = 4096;
      REQUIRE(writer.configure(s) == "");
      AccessLogEntry e;
      std::string long_path(100, 'p');
      e.path = long_path;
      // Nothing is written until the loop runs: 4096 bytes hold 36 lines of 112 bytes.
      for (int i = 0; i < 50; ++i) writer.append(s, e);
      CHECK(counters.lines.get() == 36);
      CHECK(counters.dropped.get() == 14);
      CHECK(readFile(path).empty());
      uv_run(&loop, UV_RUN_DEFAULT);  // the deferred flush and its uv_fs_write
      CHECK(readFile(path).size() == 36 * 112);
      CHECK(counters.buffered_bytes.get() == 0);
      // reopen after a rename: new lines go to the new file
      std::string rotated = path + ".1";
      REQUIRE(std::rename(path.c_str(), rotated.c_str()) == 0);
      writer.reopen();
      uv_run(&loop, UV_RUN_DEFAULT);
      CHECK(counters.reopens.get() == 1);
      writer.append(s, e);
      uv_run(&loop, UV_RUN_DEFAULT);
      CHECK(readFile(path).size() == 112);
      CHECK(readFile(rotated).size() == 36 * 112);
      // what is still buffered when the writer goes is written by its destructor
      writer.append(s, e);
    }
    CHECK(readFile(path).size() == 2 * 112);
    ctx.close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&loop) == 0);
  std::remove((path + ".1").c_str());
  std::remove(path.c_str());
  rmdir(dir_template);
}

TEST_CASE("JSON escaping finds specials at any position, eight bytes at a time or not") {
  AccessLogSettings s;
  s.fields = {AccessLogField::Path};
  std::string in = "/0123456789abcdef\"0123456\\01234567\x01\x1f tail \xc3\xa9";
  AccessLogEntry e;
  e.path = in;
  std::string out;
  formatAccessLog(s, e, kNow, out);
  CHECK(out ==
        "{\"path\":\"/0123456789abcdef\\\"0123456\\\\01234567\\u0001\\u001f tail \xc3\xa9\"}\n");
  // Every position of a quote in a 20-byte value.
  for (size_t i = 0; i < 20; ++i) {
    std::string value(20, 'x');
    value[i] = '"';
    e.path = value;
    out.clear();
    formatAccessLog(s, e, kNow, out);
    std::string want = "{\"path\":\"" + value.substr(0, i) + "\\\"" + value.substr(i + 1) + "\"}\n";
    CHECK(out == want);
  }
}

TEST_CASE("a field listed many times still fits the line's reserved space") {
  AccessLogSettings s;
  s.fields.assign(40, AccessLogField::Path);
  std::string path(5000, '"');  // the worst case: every byte escaped
  AccessLogEntry e;
  e.path = path;
  std::string out;
  formatAccessLog(s, e, kNow, out);
  // {"path":"...", 40 times (the first without its comma), each quote escaped, "}\n"
  CHECK(out.size() == 1 + 40 * (8 + 2 + 2 * 5000) - 1 + 2);
}

TEST_CASE("JSON strings of every length up to 40, plain or with one special anywhere") {
  AccessLogSettings s;
  s.fields = {AccessLogField::Path, AccessLogField::Route};
  for (size_t n = 0; n <= 40; ++n) {
    std::string plain(n, 'x');
    for (size_t i = 0; i < n; ++i) plain[i] = static_cast<char>('a' + i % 26);
    AccessLogEntry e;
    e.path = plain;
    e.route = "r";
    std::string out;
    formatAccessLog(s, e, kNow, out);
    CHECK(out == "{\"path\":\"" + plain + "\",\"route\":\"r\"}\n");
    for (size_t i = 0; i < n; ++i) {
      for (char special : {'"', '\\', '\x01', '\x1f'}) {
        std::string value = plain;
        value[i] = special;
        e.path = value;
        out.clear();
        formatAccessLog(s, e, kNow, out);
        std::string escaped = special == '"'    ? "\\\""
                              : special == '\\' ? "\\\\"
                              : special == 1    ? "\\u0001"
                                                : "\\u001f";
        CHECK(out == "{\"path\":\"" + plain.substr(0, i) + escaped + plain.substr(i + 1) +
                         "\",\"route\":\"r\"}\n");
      }
    }
  }
}
