#define CATCH_CONFIG_MAIN
#include "gateway/http/parser.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gateway/http/head_copy.h"

namespace gw::http {
namespace {

using Outcome = Parser::Outcome;
using namespace std::string_literals;

// A head copied out of the parser's views (they die when onHead returns).
struct RecordedHead {
  std::string url;
  int method = 0;
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  int http_major = 0;
  int http_minor = 0;
  bool keep_alive = false;
  bool chunked = false;
  bool has_content_length = false;
  bool has_transfer_encoding = false;
  bool upgrade = false;
  uint64_t content_length = 0;

  bool operator==(const RecordedHead& o) const {
    return url == o.url && method == o.method && status == o.status && reason == o.reason &&
           headers == o.headers && http_major == o.http_major && http_minor == o.http_minor &&
           keep_alive == o.keep_alive && chunked == o.chunked &&
           has_content_length == o.has_content_length &&
           has_transfer_encoding == o.has_transfer_encoding && upgrade == o.upgrade &&
           content_length == o.content_length;
  }
};

// Records heads, bodies (one string per message) and completions.
class RecordingSink : public MessageSink {
 public:
  int onHead(const MessageHead& head) override {
    RecordedHead h;
    h.url = std::string(head.url);
    h.method = head.method;
    h.status = head.status;
    h.reason = std::string(head.reason);
    for (size_t i = 0; i < head.header_count; ++i) {
      h.headers.emplace_back(std::string(head.name(i)), std::string(head.value(i)));
    }
    h.http_major = head.http_major;
    h.http_minor = head.http_minor;
    h.keep_alive = head.keep_alive;
    h.chunked = head.chunked;
    h.has_content_length = head.has_content_length;
    h.has_transfer_encoding = head.has_transfer_encoding;
    h.upgrade = head.upgrade;
    h.content_length = head.content_length;
    heads.push_back(std::move(h));
    bodies.emplace_back();
    if (decline_upgrades != nullptr && head.upgrade) decline_upgrades->setUpgrade(false);
    return head_result;
  }
  int onBody(const char* data, size_t length) override {
    if (bodies.empty()) bodies.emplace_back();  // would be a bug; the checks below catch it
    bodies.back().append(data, length);
    ++body_calls;
    return kContinue;
  }
  int onTrailers(const MessageHead& fields) override {
    std::vector<std::pair<std::string, std::string>> t;
    for (size_t i = 0; i < fields.header_count; ++i) {
      t.emplace_back(std::string(fields.name(i)), std::string(fields.value(i)));
    }
    trailers.push_back(std::move(t));
    trailers_at_completion.push_back(completions);
    return trailers_result;
  }
  bool onMessageComplete() override {
    ++completions;
    return pause_after_message;
  }

  std::vector<std::vector<std::pair<std::string, std::string>>> trailers;
  std::vector<int> trailers_at_completion;  // completions seen when the trailers came
  int trailers_result = kContinue;
  std::vector<RecordedHead> heads;
  std::vector<std::string> bodies;
  int body_calls = 0;
  int completions = 0;
  int head_result = kContinue;
  bool pause_after_message = false;
  Parser* decline_upgrades = nullptr;  // as a route that does not tunnel the protocol
};

// The result of feeding a whole stream to a fresh parser.
struct Run {
  RecordingSink sink;
  Outcome last = Outcome::NeedMore;
  int error_status = 0;
};

void feedPieces(Parser& parser, const std::vector<std::string>& pieces, Run& run) {
  for (const std::string& piece : pieces) {
    run.last = parser.feed(piece.data(), piece.size());
    if (run.last == Outcome::Error) break;
  }
  run.error_status = parser.errorStatus();
}

// Feeds `pieces` to a request parser (each piece from its own short-lived buffer, so views
// into an earlier piece would read freed memory under ASan).
void runRequest(const std::vector<std::string>& pieces, Run& run, uint32_t max_header_bytes = 0,
                uint32_t max_headers = 0) {
  Parser parser(HTTP_REQUEST, &run.sink);
  if (max_header_bytes != 0) parser.setLimits(max_header_bytes, max_headers);
  feedPieces(parser, pieces, run);
}

// One piece per byte.
std::vector<std::string> bytewise(const std::string& s) {
  std::vector<std::string> out;
  for (char c : s) out.emplace_back(1, c);
  return out;
}

int requestErrorStatus(const std::string& raw) {
  Run run;
  runRequest({raw}, run);
  if (run.last != Outcome::Error) return 0;
  return run.error_status;
}

const std::vector<std::pair<std::string, std::string>> kSimpleHeaders = {
    {"Host", "example.com"},
    {"X-Mixed-CASE", "Value With  Spaces"},
    {"accept", "*/*"},
    {"X-Mixed-Case", "second"},
};

const std::string kSimpleGet =
    "GET /path?q=1 HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "X-Mixed-CASE: Value With  Spaces\r\n"
    "accept: */*\r\n"
    "X-Mixed-Case: second\r\n"
    "\r\n";

TEST_CASE("a simple GET is parsed into one head with no body") {
  Run run;
  runRequest({kSimpleGet}, run);
  CHECK(run.last == Outcome::NeedMore);
  REQUIRE(run.sink.heads.size() == 1);
  const RecordedHead& h = run.sink.heads[0];
  CHECK(h.method == HTTP_GET);
  CHECK(h.url == "/path?q=1");
  CHECK(h.http_major == 1);
  CHECK(h.http_minor == 1);
  CHECK(h.keep_alive);
  CHECK_FALSE(h.chunked);
  CHECK_FALSE(h.has_content_length);
  CHECK_FALSE(h.upgrade);
  CHECK(run.sink.completions == 1);
  CHECK(run.sink.body_calls == 0);
}

TEST_CASE("header fields keep their order, case and inner whitespace") {
  Run run;
  runRequest({kSimpleGet}, run);
  REQUIRE(run.sink.heads.size() == 1);
  CHECK(run.sink.heads[0].headers == kSimpleHeaders);
}

TEST_CASE("MessageHead::count is case-insensitive and returns the first value") {
  struct CountingSink : RecordingSink {
    int onHead(const MessageHead& head) override {
      std::string_view first;
      mixed = head.count("x-mixed-case", &first);
      first_value = std::string(first);
      missing = head.count("content-length");
      return RecordingSink::onHead(head);
    }
    size_t mixed = 0;
    size_t missing = 99;
    std::string first_value;
  } sink;
  Parser parser(HTTP_REQUEST, &sink);
  REQUIRE(parser.feed(kSimpleGet.data(), kSimpleGet.size()) == Outcome::NeedMore);
  CHECK(sink.mixed == 2);
  CHECK(sink.first_value == "Value With  Spaces");
  CHECK(sink.missing == 0);
}

TEST_CASE("a head split at every byte boundary parses the same as whole") {
  const std::string raw =
      kSimpleGet.substr(0, kSimpleGet.size() - 2) + "Content-Length: 5\r\n\r\nhello";
  Run whole;
  runRequest({raw}, whole);
  REQUIRE(whole.last == Outcome::NeedMore);
  REQUIRE(whole.sink.heads.size() == 1);
  REQUIRE(whole.sink.bodies[0] == "hello");
  REQUIRE(whole.sink.completions == 1);

  SECTION("one byte at a time") {
    Run run;
    runRequest(bytewise(raw), run);
    CHECK(run.last == Outcome::NeedMore);
    REQUIRE(run.sink.heads.size() == 1);
    CHECK(run.sink.heads[0] == whole.sink.heads[0]);
    CHECK(run.sink.bodies[0] == "hello");
    CHECK(run.sink.completions == 1);
  }
  SECTION("every 2-way split") {
    for (size_t cut = 1; cut < raw.size(); ++cut) {
      INFO("cut at " << cut);
      Run run;
      runRequest({raw.substr(0, cut), raw.substr(cut)}, run);
      CHECK(run.last == Outcome::NeedMore);
      REQUIRE(run.sink.heads.size() == 1);
      CHECK(run.sink.heads[0] == whole.sink.heads[0]);
      CHECK(run.sink.bodies[0] == "hello");
      CHECK(run.sink.completions == 1);
    }
  }
  SECTION("every 3-way split") {
    for (size_t a = 1; a < raw.size(); ++a) {
      for (size_t b = a + 1; b < raw.size(); ++b) {
        Run run;
        runRequest({raw.substr(0, a), raw.substr(a, b - a), raw.substr(b)}, run);
        if (!(run.sink.heads.size() == 1 && run.sink.heads[0] == whole.sink.heads[0] &&
              run.sink.bodies[0] == "hello" && run.sink.completions == 1)) {
          FAIL("3-way split at " << a << ", " << b << " differs");
        }
      }
    }
    SUCCEED();
  }
}

TEST_CASE("a response head split at every byte boundary parses the same as whole") {
  const std::string raw =
      "HTTP/1.1 404 Not Found\r\nServer: x\r\nContent-Length: 3\r\nX-A: b\r\n\r\nabc";
  RecordingSink whole_sink;
  Parser whole(HTTP_RESPONSE, &whole_sink);
  REQUIRE(whole.feed(raw.data(), raw.size()) == Outcome::NeedMore);
  REQUIRE(whole_sink.heads.size() == 1);
  CHECK(whole_sink.heads[0].reason == "Not Found");
  for (size_t cut = 1; cut < raw.size(); ++cut) {
    INFO("cut at " << cut);
    RecordingSink sink;
    Parser parser(HTTP_RESPONSE, &sink);
    std::string first = raw.substr(0, cut);
    std::string second = raw.substr(cut);
    CHECK(parser.feed(first.data(), first.size()) == Outcome::NeedMore);
    CHECK(parser.feed(second.data(), second.size()) == Outcome::NeedMore);
    REQUIRE(sink.heads.size() == 1);
    CHECK(sink.heads[0] == whole_sink.heads[0]);
    CHECK(sink.bodies[0] == "abc");
  }
}

TEST_CASE("a Content-Length body split across feeds is delivered whole, then completes") {
  Run run;
  runRequest({"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhel", "lo wo", "rld"},
             run);
  CHECK(run.last == Outcome::NeedMore);
  REQUIRE(run.sink.heads.size() == 1);
  CHECK(run.sink.heads[0].has_content_length);
  CHECK(run.sink.heads[0].content_length == 11);
  CHECK(run.sink.bodies[0] == "hello world");
  CHECK(run.sink.body_calls == 3);
  CHECK(run.sink.completions == 1);
}

TEST_CASE("the message stays open until the whole Content-Length body has arrived") {
  RecordingSink sink;
  Parser parser(HTTP_REQUEST, &sink);
  std::string head = "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab";
  REQUIRE(parser.feed(head.data(), head.size()) == Outcome::NeedMore);
  CHECK(parser.messageOpen());
  CHECK_FALSE(parser.inHead());
  CHECK(sink.completions == 0);
  REQUIRE(parser.feed("cd", 2) == Outcome::NeedMore);
  CHECK_FALSE(parser.messageOpen());
  CHECK(parser.idle());
  CHECK(sink.completions == 1);
  CHECK(sink.bodies[0] == "abcd");
}

TEST_CASE("a chunked body is delivered decoded, its trailers after it") {
  const std::string raw =
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n"
      "6;ext=1\r\n world\r\n"
      "0\r\nX-Trailer: t\r\n\r\n";
  SECTION("whole") {
    Run run;
    runRequest({raw}, run);
    CHECK(run.last == Outcome::NeedMore);
    REQUIRE(run.sink.heads.size() == 1);
    CHECK(run.sink.heads[0].chunked);
    CHECK(run.sink.heads[0].has_transfer_encoding);
    CHECK(run.sink.heads[0].headers.size() == 2);
    CHECK(run.sink.bodies[0] == "hello world");
    CHECK(run.sink.completions == 1);
  }
  SECTION("one byte at a time") {
    Run run;
    runRequest(bytewise(raw), run);
    CHECK(run.last == Outcome::NeedMore);
    REQUIRE(run.sink.heads.size() == 1);
    CHECK(run.sink.heads[0].headers.size() == 2);
    CHECK(run.sink.bodies[0] == "hello world");
    CHECK(run.sink.completions == 1);
  }
}

TEST_CASE("pipelined requests: pausing after a message keeps the rest for resume()") {
  const std::string first = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok";
  RecordingSink sink;
  sink.pause_after_message = true;
  Parser parser(HTTP_REQUEST, &sink);

  SECTION("both whole in one feed") {
    std::string both = first + second;
    REQUIRE(parser.feed(both.data(), both.size()) == Outcome::Paused);
    REQUIRE(sink.heads.size() == 1);
    CHECK(sink.heads[0].url == "/a");
    CHECK(sink.completions == 1);
    CHECK(parser.hasPendingInput());
    CHECK(parser.pendingInput() == second);

    both.assign(both.size(), 'X');  // the parser must not depend on the caller's buffer
    REQUIRE(parser.resume() == Outcome::Paused);
    REQUIRE(sink.heads.size() == 2);
    CHECK(sink.heads[1].url == "/b");
    CHECK(sink.heads[1].method == HTTP_POST);
    CHECK(sink.heads[1].headers.size() == 2);
    CHECK(sink.bodies[1] == "ok");
    CHECK(sink.completions == 2);
    CHECK_FALSE(parser.hasPendingInput());

    CHECK(parser.resume() == Outcome::NeedMore);
    CHECK(parser.idle());
  }
  SECTION("the second head cut short, completed by a later feed") {
    std::string part = first + second.substr(0, 20);
    REQUIRE(parser.feed(part.data(), part.size()) == Outcome::Paused);
    CHECK(parser.pendingInput() == second.substr(0, 20));
    REQUIRE(parser.resume() == Outcome::NeedMore);
    CHECK(parser.inHead());
    CHECK(sink.heads.size() == 1);
    std::string rest = second.substr(20);
    REQUIRE(parser.feed(rest.data(), rest.size()) == Outcome::Paused);
    REQUIRE(sink.heads.size() == 2);
    CHECK(sink.heads[1].url == "/b");
    CHECK(sink.heads[1].headers ==
          std::vector<std::pair<std::string, std::string>>{{"Host", "h"}, {"Content-Length", "2"}});
    CHECK(sink.bodies[1] == "ok");
  }
  SECTION("three in one feed, resumed one by one") {
    std::string all = first + first + second;
    REQUIRE(parser.feed(all.data(), all.size()) == Outcome::Paused);
    REQUIRE(parser.resume() == Outcome::Paused);
    REQUIRE(parser.resume() == Outcome::Paused);
    REQUIRE(sink.heads.size() == 3);
    CHECK(sink.heads[0].url == "/a");
    CHECK(sink.heads[1].url == "/a");
    CHECK(sink.heads[2].url == "/b");
    CHECK(sink.completions == 3);
    CHECK_FALSE(parser.hasPendingInput());
  }
}

TEST_CASE("bytes fed while paused queue up behind the paused message") {
  const std::string first = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  RecordingSink sink;
  sink.pause_after_message = true;
  Parser parser(HTTP_REQUEST, &sink);
  REQUIRE(parser.feed(first.data(), first.size()) == Outcome::Paused);
  CHECK_FALSE(parser.hasPendingInput());
  CHECK(parser.feed(second.data(), 10) == Outcome::Paused);
  CHECK(parser.feed(second.data() + 10, second.size() - 10) == Outcome::Paused);
  CHECK(sink.heads.size() == 1);
  CHECK(parser.pendingInputSize() == second.size());
  CHECK(parser.pendingInput() == second);
  REQUIRE(parser.resume() == Outcome::Paused);
  REQUIRE(sink.heads.size() == 2);
  CHECK(sink.heads[1].url == "/b");
  CHECK(sink.heads[1].headers.size() == 1);
  CHECK(parser.resume() == Outcome::NeedMore);
}

TEST_CASE("pausing at a head keeps the body for resume(), which delivers it whole") {
  const std::string head = "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
  const std::string next = "GET /n HTTP/1.1\r\nHost: h\r\n\r\n";
  RecordingSink sink;
  sink.head_result = MessageSink::kPause;
  Parser parser(HTTP_REQUEST, &sink);

  SECTION("head, body and a pipelined request in one feed") {
    std::string all = head + "hello" + next;
    REQUIRE(parser.feed(all.data(), all.size()) == Outcome::Paused);
    REQUIRE(sink.heads.size() == 1);
    CHECK(sink.body_calls == 0);
    CHECK(parser.messageOpen());
    CHECK(parser.pendingInput() == "hello" + next);
    all.assign(all.size(), 'X');  // the kept rest must not depend on the caller's buffer
    sink.head_result = MessageSink::kContinue;
    sink.pause_after_message = true;
    REQUIRE(parser.resume() == Outcome::Paused);  // after the first message
    CHECK(sink.bodies[0] == "hello");
    CHECK(sink.completions == 1);
    REQUIRE(parser.resume() == Outcome::Paused);
    REQUIRE(sink.heads.size() == 2);
    CHECK(sink.heads[1].url == "/n");
  }
  SECTION("body bytes fed while paused queue up; nothing is delivered before resume()") {
    REQUIRE(parser.feed(head.data(), head.size()) == Outcome::Paused);
    CHECK_FALSE(parser.hasPendingInput());
    CHECK(parser.feed("hel", 3) == Outcome::Paused);
    CHECK(sink.body_calls == 0);
    sink.head_result = MessageSink::kContinue;
    REQUIRE(parser.resume() == Outcome::NeedMore);
    CHECK(sink.bodies[0] == "hel");
    REQUIRE(parser.feed("lo", 2) == Outcome::NeedMore);
    CHECK(sink.bodies[0] == "hello");
    CHECK(sink.completions == 1);
    CHECK(parser.idle());
  }
  SECTION("a request without a body completes on resume() with no more input") {
    const std::string get = "GET /g HTTP/1.1\r\nHost: h\r\n\r\n";
    REQUIRE(parser.feed(get.data(), get.size()) == Outcome::Paused);
    CHECK(sink.completions == 0);
    sink.head_result = MessageSink::kContinue;
    sink.pause_after_message = true;
    REQUIRE(parser.resume() == Outcome::Paused);  // paused again, after the message
    CHECK(sink.completions == 1);
    CHECK(parser.resume() == Outcome::NeedMore);
    CHECK(parser.idle());
  }
  SECTION("a chunked body after a pause is decoded the same") {
    const std::string chunked =
        "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\n\r\n";
    REQUIRE(parser.feed(chunked.data(), chunked.size()) == Outcome::Paused);
    sink.head_result = MessageSink::kContinue;
    REQUIRE(parser.resume() == Outcome::NeedMore);
    CHECK(sink.bodies[0] == "abc");
    CHECK(sink.completions == 1);
  }
}

TEST_CASE("HeadCopy keeps a head readable after the parser's bytes are gone") {
  struct CopyingSink : MessageSink {
    HeadCopy copy;
    int onHead(const MessageHead& head) override {
      copy.assign(head);
      return kContinue;
    }
    int onBody(const char*, size_t) override { return kContinue; }
    bool onMessageComplete() override { return false; }
  } sink;
  Parser parser(HTTP_REQUEST, &sink);
  for (const auto& pieces : {std::vector<std::string>{kSimpleGet}, bytewise(kSimpleGet)}) {
    parser.reset();
    for (std::string piece : pieces) {
      REQUIRE(parser.feed(piece.data(), piece.size()) == Outcome::NeedMore);
      piece.assign(piece.size(), 'X');
    }
    const MessageHead& h = sink.copy.head();
    CHECK(h.url == "/path?q=1");
    CHECK(h.method == HTTP_GET);
    REQUIRE(h.header_count == kSimpleHeaders.size());
    for (size_t i = 0; i < h.header_count; ++i) {
      CHECK(h.name(i) == kSimpleHeaders[i].first);
      CHECK(h.value(i) == kSimpleHeaders[i].second);
    }
    std::string_view host;
    CHECK(h.count("host", &host) == 1);
    CHECK(host == "example.com");
  }
}

TEST_CASE("without pausing, pipelined requests are all parsed in one feed") {
  Run run;
  runRequest({"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"}, run);
  CHECK(run.last == Outcome::NeedMore);
  REQUIRE(run.sink.heads.size() == 2);
  CHECK(run.sink.heads[0].url == "/1");
  CHECK(run.sink.heads[1].url == "/2");
  CHECK(run.sink.completions == 2);
}

std::string headWithFieldBytes(size_t value_length) {
  return "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(value_length, 'v') + "\r\n\r\n";
}

TEST_CASE("a head larger than max_header_bytes is refused with 431") {
  const std::string raw = headWithFieldBytes(300);
  SECTION("whole") {
    Run run;
    runRequest({raw}, run, 128, 100);
    CHECK(run.last == Outcome::Error);
    CHECK(run.error_status == 431);
    CHECK(run.sink.heads.empty());
  }
  SECTION("one byte at a time") {
    Run run;
    runRequest(bytewise(raw), run, 128, 100);
    CHECK(run.last == Outcome::Error);
    CHECK(run.error_status == 431);
    CHECK(run.sink.heads.empty());
  }
  SECTION("in pieces of 10") {
    std::vector<std::string> pieces;
    for (size_t i = 0; i < raw.size(); i += 10) pieces.push_back(raw.substr(i, 10));
    Run run;
    runRequest(pieces, run, 128, 100);
    CHECK(run.last == Outcome::Error);
    CHECK(run.error_status == 431);
  }
  SECTION("many small fields") {
    std::string many = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 20; ++i) many += "X-F" + std::to_string(i) + ": 0123456789\r\n";
    many += "\r\n";
    Run run;
    runRequest({many}, run, 128, 100);
    CHECK(run.last == Outcome::Error);
    CHECK(run.error_status == 431);
  }
  SECTION("a long request line") {
    Run run;
    runRequest({"GET /" + std::string(300, 'p') + " HTTP/1.1\r\nHost: h\r\n\r\n"}, run, 128, 100);
    CHECK(run.last == Outcome::Error);
    CHECK(run.error_status == 431);
  }
}

TEST_CASE("a head within max_header_bytes is accepted, whole and in pieces") {
  const std::string raw = headWithFieldBytes(40);
  REQUIRE(raw.size() < 128);
  Run whole;
  runRequest({raw}, whole, 128, 100);
  CHECK(whole.last == Outcome::NeedMore);
  CHECK(whole.sink.heads.size() == 1);
  Run pieces;
  runRequest(bytewise(raw), pieces, 128, 100);
  CHECK(pieces.last == Outcome::NeedMore);
  CHECK(pieces.sink.heads.size() == 1);
}

TEST_CASE("the head limit applies per message, not per connection") {
  // Three heads of ~60 bytes each: together over the limit, each one under it.
  std::string one = "GET /x HTTP/1.1\r\nHost: h\r\nX-Pad: 0123456789abcdef\r\n\r\n";
  REQUIRE(one.size() < 100);
  Run run;
  runRequest({one + one + one}, run, 100, 100);
  CHECK(run.last == Outcome::NeedMore);
  CHECK(run.sink.heads.size() == 3);
  Run bytes;
  runRequest(bytewise(one + one + one), bytes, 100, 100);
  CHECK(bytes.last == Outcome::NeedMore);
  CHECK(bytes.sink.heads.size() == 3);
}

// Whether a head is within max_header_bytes must not depend on how the reads split it.
TEST_CASE("the head limit verdict does not depend on where the head is split") {
  const std::string raw = headWithFieldBytes(10);
  for (uint32_t limit = 30; limit <= raw.size() + 2; ++limit) {
    Run whole;
    runRequest({raw}, whole, limit, 100);
    for (size_t cut = 1; cut < raw.size(); ++cut) {
      Run split;
      runRequest({raw.substr(0, cut), raw.substr(cut)}, split, limit, 100);
      if (split.last != whole.last || split.error_status != whole.error_status) {
        FAIL_CHECK("limit " << limit << ": whole gives " << whole.error_status << ", cut at " << cut
                            << " gives " << split.error_status);
      }
    }
  }
  SUCCEED();
}

TEST_CASE("more than max_headers fields is refused with 431") {
  std::string raw = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 6; ++i) raw += "X-" + std::to_string(i) + ": v\r\n";
  raw += "\r\n";
  Run over;
  runRequest({raw}, over, 16 * 1024, 5);
  CHECK(over.last == Outcome::Error);
  CHECK(over.error_status == 431);
  CHECK(over.sink.heads.empty());

  Run exact;
  runRequest({raw}, exact, 16 * 1024, 6);
  CHECK(exact.last == Outcome::NeedMore);
  REQUIRE(exact.sink.heads.size() == 1);
  CHECK(exact.sink.heads[0].headers.size() == 6);

  Run bytes;
  runRequest(bytewise(raw), bytes, 16 * 1024, 5);
  CHECK(bytes.last == Outcome::Error);
  CHECK(bytes.error_status == 431);
}

TEST_CASE("framing conflicts are refused with 400") {
  const char* cases[] = {
      // Content-Length and Transfer-Encoding together (request smuggling).
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
      "0\r\n\r\n",
      // Two different Content-Length values.
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
      // A list in Content-Length.
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\nab",
      // A non-numeric Content-Length.
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
      // A request whose final transfer coding is not chunked.
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc",
      // An invalid chunk size.
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
  };
  for (const char* raw : cases) {
    INFO(raw);
    CHECK(requestErrorStatus(raw) == 400);
  }
}

TEST_CASE("malformed header lines are refused with 400") {
  const std::string cases[] = {
      // obs-fold: a continuation line starting with SP or HTAB.
      "GET / HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n\tb\r\n\r\n",
      // The first field line starting with whitespace.
      "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
      // NUL, other controls and DEL in a value.
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n"s,
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x1b[0m\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n",
      // A bare CR inside a value.
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n",
      // Whitespace between the field name and the colon.
      "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
      "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n",
      // No colon; a separator or a non-ASCII byte inside the name.
      "GET / HTTP/1.1\r\nHost h\r\n\r\n",
      "GET / HTTP/1.1\r\nX(a): h\r\n\r\n",
      "GET / HTTP/1.1\r\nX-\xc3\xa9: h\r\n\r\n",
  };
  for (const std::string& raw : cases) {
    INFO(raw);
    CHECK(requestErrorStatus(raw) == 400);
    // Same verdict when the bytes trickle in.
    Run run;
    runRequest(bytewise(raw), run);
    CHECK(run.last == Outcome::Error);
    CHECK(run.error_status == 400);
  }
}

// A field name is a token: one or more tchar (RFC 9110 §5.1). An empty one would be
// forwarded upstream as a line starting with ':'.
TEST_CASE("an empty field name is refused with 400") {
  const std::string cases[] = {
      "GET / HTTP/1.1\r\n: x\r\nHost: h\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n",
  };
  for (const std::string& raw : cases) {
    INFO(raw);
    CHECK(requestErrorStatus(raw) == 400);
  }
}

// The parser refuses obs-fold (see Parser::extend); that must not depend on whether the
// first line of the folded field had a value.
TEST_CASE("obs-fold after an empty first line is refused like any obs-fold") {
  const std::string cases[] = {
      "GET / HTTP/1.1\r\nHost: h\r\nX-A:\r\n b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nX-A: \r\n b\r\n\r\n",
  };
  for (const std::string& raw : cases) {
    INFO(raw);
    CHECK(requestErrorStatus(raw) == 400);
  }
}

TEST_CASE("field values may hold SP, HTAB and obs-text") {
  Run run;
  runRequest({"GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xc3\xa9 \tx\r\nX-Empty:\r\n\r\n"}, run);
  CHECK(run.last == Outcome::NeedMore);
  REQUIRE(run.sink.heads.size() == 1);
  REQUIRE(run.sink.heads[0].headers.size() == 3);
  CHECK(run.sink.heads[0].headers[1].second == "caf\xc3\xa9 \tx");
  CHECK(run.sink.heads[0].headers[2].first == "X-Empty");
  CHECK(run.sink.heads[0].headers[2].second.empty());
}

TEST_CASE("a malformed request line is refused with 400") {
  const char* cases[] = {
      "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",     // trailing space
      "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n",     // tab as separator
      "GET / HTTP/9.9\r\nHost: h\r\n\r\n",      // unknown version
      "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",   // space in the target
      "get / HTTP/1.1\r\nHost: h\r\n\r\n",      // methods are case-sensitive
      "G@T / HTTP/1.1\r\nHost: h\r\n\r\n",      // not a method token
      "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n",  // control in the target
      "GET / HTTP/1.1\rHost: h\r\n\r\n",        // bare CR
  };
  for (const char* raw : cases) {
    INFO(raw);
    CHECK(requestErrorStatus(raw) == 400);
  }
}

// Lines ending in a bare LF instead of CRLF. RFC 9112 §2.2 lets a recipient accept them,
// but a proxy in front of servers that do not is safer refusing them, and the parser
// refuses them after a field line already, so the other places should agree.
TEST_CASE("bare LF line endings are refused with 400") {
  const char* cases[] = {
      "GET / HTTP/1.1\nHost: h\r\n\r\n",            // after the request line
      "GET / HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n",  // after a field line
      "GET / HTTP/1.1\r\nHost: h\r\n\n",            // as the blank line
      "GET / HTTP/1.1\nHost: h\n\n",                // everywhere
  };
  for (const char* raw : cases) {
    INFO(raw);
    CHECK(requestErrorStatus(raw) == 400);
  }
}

TEST_CASE("bare LF in chunked framing is refused with 400") {
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  CHECK(requestErrorStatus(head + "3\nabc\r\n0\r\n\r\n") == 400);
  CHECK(requestErrorStatus(head + "3\r\nabc\n0\r\n\r\n") == 400);
}

TEST_CASE("the sink can reject a head; the reason defaults to 400") {
  SECTION("without fail()") {
    RecordingSink sink;
    sink.head_result = MessageSink::kReject;
    Parser parser(HTTP_REQUEST, &sink);
    CHECK(parser.feed(kSimpleGet.data(), kSimpleGet.size()) == Outcome::Error);
    CHECK(parser.errorStatus() == 400);
    CHECK(sink.completions == 0);
  }
  SECTION("with fail() setting the status") {
    struct Failing : RecordingSink {
      int onHead(const MessageHead& head) override {
        RecordingSink::onHead(head);
        parser->fail(417, "expectation failed");
        return kReject;
      }
      Parser* parser = nullptr;
    } sink;
    Parser parser(HTTP_REQUEST, &sink);
    sink.parser = &parser;
    CHECK(parser.feed(kSimpleGet.data(), kSimpleGet.size()) == Outcome::Error);
    CHECK(parser.errorStatus() == 417);
    CHECK(std::string(parser.errorReason()) == "expectation failed");
  }
}

// ---- responses ------------------------------------------------------------------------

TEST_CASE("a response head carries status, reason and version") {
  RecordingSink sink;
  Parser parser(HTTP_RESPONSE, &sink);
  std::string raw = "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno";
  REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::NeedMore);
  REQUIRE(sink.heads.size() == 1);
  CHECK(sink.heads[0].status == 503);
  CHECK(sink.heads[0].reason == "Service Unavailable");
  CHECK(sink.heads[0].http_minor == 0);
  CHECK_FALSE(sink.heads[0].keep_alive);
  CHECK(sink.bodies[0] == "no");
  CHECK(sink.completions == 1);
}

TEST_CASE("the response to HEAD has no body even with Content-Length") {
  RecordingSink sink;
  sink.head_result = MessageSink::kSkipBody;
  Parser parser(HTTP_RESPONSE, &sink);
  std::string raw =
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
  REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::NeedMore);
  REQUIRE(sink.heads.size() == 2);
  CHECK(sink.heads[0].content_length == 10);
  CHECK(sink.bodies[0].empty());
  CHECK(sink.body_calls == 0);
  CHECK(sink.completions == 2);
  CHECK(parser.idle());
}

TEST_CASE("1xx, 204 and 304 responses without Content-Length have no body") {
  RecordingSink sink;
  Parser parser(HTTP_RESPONSE, &sink);
  std::string raw =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 204 No Content\r\nServer: s\r\n\r\n"
      "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
  REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::NeedMore);
  REQUIRE(sink.heads.size() == 4);
  CHECK(sink.heads[0].status == 100);
  CHECK(sink.heads[1].status == 204);
  CHECK(sink.heads[2].status == 304);
  CHECK(sink.bodies[0].empty());
  CHECK(sink.bodies[1].empty());
  CHECK(sink.bodies[2].empty());
  CHECK(sink.bodies[3] == "abc");
  CHECK(sink.completions == 4);
}

// llhttp alone would read 42 body bytes after this 304; the parser skips them itself, and a
// sink that also says kSkipBody (as the proxy does) sees the same.
// Found by the response fuzzer: llhttp read Content-Length bytes after a 103 (and after
// 204/304 when the sink did not skip), taking the next response's head as body.
TEST_CASE("1xx, 204 and 304 responses have no body whatever their framing headers say") {
  RecordingSink sink;
  Parser parser(HTTP_RESPONSE, &sink);
  std::string raw =
      "HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\n"
      "HTTP/1.1 102 Processing\r\nTransfer-Encoding: chunked\r\n\r\n"
      "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
  REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::NeedMore);
  REQUIRE(sink.heads.size() == 5);
  CHECK(sink.heads[0].status == 103);
  CHECK(sink.heads[1].status == 102);
  CHECK(sink.heads[2].status == 204);
  CHECK(sink.heads[3].status == 304);
  CHECK(sink.heads[4].status == 200);
  CHECK(sink.bodies[4] == "abc");
  CHECK(sink.body_calls == 1);
  CHECK(sink.completions == 5);
  CHECK(parser.idle());
}

// Found by the response fuzzer: with Content-Length, llhttp read a body after a 101,
// taking the new protocol's first bytes.
TEST_CASE("a 101 with Content-Length switches protocols right after its head") {
  RecordingSink sink;
  Parser parser(HTTP_RESPONSE, &sink);
  std::string raw =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Content-Length: 4\r\n\r\nabcd";
  CHECK(parser.feed(raw.data(), raw.size()) == Outcome::Upgraded);
  REQUIRE(sink.heads.size() == 1);
  CHECK(sink.body_calls == 0);
  CHECK(parser.pendingInput() == "abcd");
}

// Found by the response fuzzer: llhttp took a two-digit status.
TEST_CASE("a response status below 100 is refused") {
  for (std::string raw : {"HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 099 X\r\n\r\n"}) {
    INFO(raw);
    RecordingSink sink;
    Parser parser(HTTP_RESPONSE, &sink);
    CHECK(parser.feed(raw.data(), raw.size()) == Outcome::Error);
    CHECK(sink.heads.empty());
  }
}

// Found by the request fuzzer: llhttp parsed these as HTTP/0.9, the second with an empty
// target.
TEST_CASE("a request line without a version is refused") {
  for (std::string raw : {"GET /\r\n\r\n", "CONNECT \r\n\r\n"}) {
    INFO(raw);
    Run run;
    runRequest({raw}, run);
    CHECK(run.last == Outcome::Error);
    CHECK(run.error_status == 400);
    CHECK(run.sink.heads.empty());
  }
}

// Found by the request fuzzer (UBSan: pointer overflow): a second message starting inside
// the same read put its head after the read's start, and the head's address was computed
// by subtracting a wrapped unsigned distance.
TEST_CASE("pipelined requests in one read have heads at the right place") {
  Run run;
  runRequest({"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nX: y\r\n\r\n"}, run);
  REQUIRE(run.sink.heads.size() == 2);
  CHECK(run.sink.heads[1].url == "/b");
  CHECK(run.sink.heads[1].headers[0].second == "y");
  CHECK(run.sink.completions == 2);
}

TEST_CASE("a 304 with Content-Length has no body when the sink skips it") {
  struct SkipNoContent : RecordingSink {
    int onHead(const MessageHead& head) override {
      RecordingSink::onHead(head);
      return head.status == 204 || head.status == 304 ? kSkipBody : kContinue;
    }
  } sink;
  Parser parser(HTTP_RESPONSE, &sink);
  std::string raw =
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
  REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::NeedMore);
  REQUIRE(sink.heads.size() == 2);
  CHECK(sink.heads[0].content_length == 42);
  CHECK(sink.bodies[0].empty());
  CHECK(sink.bodies[1] == "abc");
}

TEST_CASE("a read-until-close response body is completed by finish()") {
  RecordingSink sink;
  Parser parser(HTTP_RESPONSE, &sink);
  std::string head = "HTTP/1.1 200 OK\r\nServer: s\r\n\r\nsome ";
  REQUIRE(parser.feed(head.data(), head.size()) == Outcome::NeedMore);
  REQUIRE(parser.feed("bytes", 5) == Outcome::NeedMore);
  CHECK(sink.completions == 0);
  CHECK(parser.messageOpen());
  CHECK(parser.finish() == Outcome::NeedMore);
  CHECK(sink.completions == 1);
  CHECK(sink.bodies[0] == "some bytes");
  CHECK_FALSE(parser.messageOpen());
}

TEST_CASE("finish() reports a message cut short") {
  SECTION("inside a Content-Length body") {
    RecordingSink sink;
    Parser parser(HTTP_RESPONSE, &sink);
    std::string raw = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::NeedMore);
    CHECK(parser.finish() == Outcome::Error);
    CHECK(parser.errorStatus() != 0);
    CHECK(sink.completions == 0);
  }
  SECTION("inside a chunked body") {
    RecordingSink sink;
    Parser parser(HTTP_RESPONSE, &sink);
    std::string raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab";
    REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::NeedMore);
    CHECK(parser.finish() == Outcome::Error);
    CHECK(sink.completions == 0);
  }
  SECTION("inside a head") {
    RecordingSink sink;
    Parser parser(HTTP_RESPONSE, &sink);
    std::string raw = "HTTP/1.1 200 OK\r\nContent-Le";
    REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::NeedMore);
    CHECK(parser.finish() == Outcome::Error);
    CHECK(sink.heads.empty());
  }
  SECTION("between messages is fine") {
    RecordingSink sink;
    Parser parser(HTTP_RESPONSE, &sink);
    std::string raw = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
    REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::NeedMore);
    CHECK(parser.finish() == Outcome::NeedMore);
    CHECK(sink.completions == 1);
  }
}

TEST_CASE("a 101 response switches protocols and keeps the bytes after the head") {
  RecordingSink sink;
  Parser parser(HTTP_RESPONSE, &sink);
  std::string raw =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
      "\x81\x05hello";
  REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::Upgraded);
  REQUIRE(sink.heads.size() == 1);
  CHECK(sink.heads[0].status == 101);
  CHECK(sink.heads[0].upgrade);
  CHECK(sink.completions == 1);
  CHECK(parser.hasPendingInput());
  CHECK(parser.pendingInput() == "\x81\x05hello");
}

TEST_CASE("a 101 response split before the raw bytes keeps nothing pending") {
  RecordingSink sink;
  Parser parser(HTTP_RESPONSE, &sink);
  std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n";
  REQUIRE(parser.feed(head.data(), head.size()) == Outcome::NeedMore);
  REQUIRE(parser.feed("\r\n", 2) == Outcome::Upgraded);
  CHECK(sink.heads.size() == 1);
  CHECK_FALSE(parser.hasPendingInput());
}

TEST_CASE("bytes fed after an upgrade are kept as pending input") {
  RecordingSink sink;
  Parser parser(HTTP_RESPONSE, &sink);
  std::string raw =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nab";
  REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::Upgraded);
  CHECK(parser.feed("cd", 2) == Outcome::Upgraded);
  CHECK(parser.pendingInput() == "abcd");
  CHECK(sink.heads.size() == 1);
}

TEST_CASE("CONNECT switches protocols after the head") {
  RecordingSink sink;
  Parser parser(HTTP_REQUEST, &sink);
  std::string raw = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03";
  REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::Upgraded);
  REQUIRE(sink.heads.size() == 1);
  CHECK(sink.heads[0].method == HTTP_CONNECT);
  CHECK(sink.heads[0].url == "example.com:443");
  CHECK(parser.pendingInput() == "\x16\x03");
}

TEST_CASE("an upgrade request switches protocols and keeps the bytes after the head") {
  RecordingSink sink;
  Parser parser(HTTP_REQUEST, &sink);
  std::string raw =
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
      "frame-bytes";
  REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::Upgraded);
  REQUIRE(sink.heads.size() == 1);
  CHECK(sink.heads[0].upgrade);
  CHECK(parser.pendingInput() == "frame-bytes");
}

// h2c smuggling: after a tunnelled 101 the client would speak HTTP/2 to the upstream
// itself, past routes and filters. The parser reports no upgrade and reads on.
TEST_CASE("an Upgrade offering h2c is no upgrade: the connection goes on as HTTP/1.1") {
  const std::string upgrade =
      GENERATE(as<std::string>{}, "h2c", "H2C", "websocket, h2c", "h2c, WebSocket", " h2c/1 ,foo");
  CAPTURE(upgrade);
  std::string raw =
      "POST /a HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
      "Upgrade: " +
      upgrade +
      "\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Content-Length: 5\r\n\r\nhello"
      "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  for (const auto& pieces : {std::vector<std::string>{raw}, bytewise(raw)}) {
    Run run;
    runRequest(pieces, run);
    CHECK(run.last == Outcome::NeedMore);
    REQUIRE(run.sink.heads.size() == 2);
    CHECK_FALSE(run.sink.heads[0].upgrade);
    CHECK(run.sink.heads[0].keep_alive);
    CHECK(run.sink.bodies[0] == "hello");
    CHECK(run.sink.heads[1].url == "/b");
    CHECK_FALSE(run.sink.heads[1].upgrade);
    CHECK(run.sink.completions == 2);
  }
}

// A route that does not tunnel the offered protocol declines the upgrade from onHead:
// the request is served as plain HTTP/1.1 and the bytes after it are the next request.
TEST_CASE("a declined upgrade reads on as HTTP/1.1, also after a pause at the head") {
  const bool pause_at_head = GENERATE(false, true);
  CAPTURE(pause_at_head);
  std::string raw =
      "POST /a HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: foo/2, bar\r\n"
      "Content-Length: 5\r\n\r\nhello"
      "GET /b HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n"
      "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  for (const auto& pieces : {std::vector<std::string>{raw}, bytewise(raw)}) {
    RecordingSink sink;
    Parser parser(HTTP_REQUEST, &sink);
    sink.decline_upgrades = &parser;
    if (pause_at_head) sink.head_result = MessageSink::kPause;
    Outcome last = Outcome::NeedMore;
    for (const std::string& piece : pieces) {
      last = parser.feed(piece.data(), piece.size());
      while (last == Outcome::Paused) last = parser.resume();
      REQUIRE(last != Outcome::Error);
    }
    CHECK(last == Outcome::NeedMore);
    REQUIRE(sink.heads.size() == 3);
    CHECK(sink.heads[0].upgrade);  // as the client asked; the sink chose not to
    CHECK(sink.bodies[0] == "hello");
    CHECK(sink.heads[1].url == "/b");
    CHECK(sink.heads[2].url == "/c");
    CHECK(sink.completions == 3);
    CHECK_FALSE(parser.hasPendingInput());
  }
}

// The exchange declines every upgrade in onHead and takes it back when it forwards the
// request, which a filter may delay past a pause at the head.
TEST_CASE("an upgrade declined in onHead and taken before resume() switches protocols") {
  RecordingSink sink;
  Parser parser(HTTP_REQUEST, &sink);
  sink.decline_upgrades = &parser;
  sink.head_result = MessageSink::kPause;
  std::string raw =
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nframe-bytes";
  REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::Paused);
  parser.setUpgrade(true);
  CHECK(parser.resume() == Outcome::Upgraded);
  CHECK(sink.completions == 1);
  CHECK(parser.pendingInput() == "frame-bytes");
}

TEST_CASE("a WebSocket upgrade needs exactly one Sec-WebSocket-Key") {
  const std::string keys =
      GENERATE(as<std::string>{}, "", "Sec-WebSocket-Key: a\r\nSec-WebSocket-Key: b\r\n");
  const std::string upgrade = GENERATE(as<std::string>{}, "websocket", "h2c, websocket");
  CAPTURE(keys, upgrade);
  std::string raw = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: " + upgrade +
                    "\r\n" + keys + "\r\n";
  CHECK(requestErrorStatus(raw) == 400);
  // Without Connection: upgrade it is no upgrade request, and Upgrade is only a field.
  std::string plain = "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: " + upgrade + "\r\n\r\n";
  CHECK(requestErrorStatus(plain) == 0);
}

TEST_CASE("a tab before a request's Content-Length or Transfer-Encoding value is refused") {
  CHECK(requestErrorStatus("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\t5\r\n\r\nhello") == 400);
  CHECK(requestErrorStatus("POST / HTTP/1.1\r\nHost: h\r\ncontent-length: \t5\r\n\r\nhello") ==
        400);
  CHECK(requestErrorStatus("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\tchunked\r\n\r\n"
                           "0\r\n\r\n") == 400);
  CHECK(requestErrorStatus("GET / HTTP/1.1\r\nHost:\th\r\n\r\n") == 400);
  // Elsewhere a tab is the optional whitespace it is.
  CHECK(requestErrorStatus("POST / HTTP/1.1\r\nHost: h\r\nX-A:\t1\r\nContent-Length: 5\r\n\r\n"
                           "hello") == 0);
  RecordingSink sink;
  Parser parser(HTTP_RESPONSE, &sink);
  std::string response = "HTTP/1.1 200 OK\r\nContent-Length:\t5\r\n\r\nhello";
  CHECK(parser.feed(response.data(), response.size()) == Outcome::NeedMore);
  CHECK(sink.completions == 1);
}

TEST_CASE("obs-fold in a trailer is refused however the reads split it") {
  const std::string folds =
      GENERATE(as<std::string>{}, "X-T: 1\r\n 2\r\n", "X-T: 1\r\n\t2\r\n", "X-T:\r\n 2\r\n");
  CAPTURE(folds);
  std::string raw =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n" +
      folds + "\r\n";
  Run whole;
  runRequest({raw}, whole);
  CHECK(whole.last == Outcome::Error);
  CHECK(whole.error_status == 400);
  if (folds.rfind("X-T:\r\n", 0) != 0) {  // a fold right after the colon is caught whole
    Run split;
    runRequest(bytewise(raw), split);
    CHECK(split.last == Outcome::Error);
    CHECK(split.error_status == 400);
  }
  // An ordinary trailer, split anywhere, still passes.
  std::string ok =
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\nX-T:  1 2\r\nX-U: 3\r\n\r\n";
  for (const auto& pieces : {std::vector<std::string>{ok}, bytewise(ok)}) {
    Run run;
    runRequest(pieces, run);
    CHECK(run.last == Outcome::NeedMore);
    REQUIRE(run.sink.trailers.size() == 1);
    CHECK(run.sink.trailers[0].size() == 2);
  }
}

TEST_CASE("chunk extensions are limited to 4 KiB per chunk-size line") {
  auto body = [](size_t ext) {
    return "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;" +
           std::string(ext, 'e') + "\r\nhello\r\n3;" + std::string(ext, 'f') +
           "\r\nabc\r\n0\r\n\r\n";
  };
  for (const auto& pieces : {std::vector<std::string>{body(4096)}, bytewise(body(4096))}) {
    Run run;
    runRequest(pieces, run);
    CHECK(run.error_status == 0);  // the limit is per line: two lines of 4 KiB pass
    CHECK(run.sink.completions == 1);
    REQUIRE(run.sink.bodies.size() == 1);
    CHECK(run.sink.bodies[0] == "helloabc");
  }
  CHECK(requestErrorStatus(body(4097)) == 400);
  // name=value: both count.
  CHECK(requestErrorStatus("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "5;" +
                           std::string(2048, 'n') + "=" + std::string(2049, 'v') +
                           "\r\nhello\r\n0\r\n\r\n") == 400);
  RecordingSink sink;
  Parser parser(HTTP_RESPONSE, &sink);
  std::string response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;" +
                         std::string(5000, 'e') + "\r\nhello\r\n0\r\n\r\n";
  CHECK(parser.feed(response.data(), response.size()) == Outcome::Error);
  CHECK(parser.errorStatus() == 502);
}

TEST_CASE("an Upgrade naming a protocol that only starts with h2c is still an upgrade") {
  RecordingSink sink;
  Parser parser(HTTP_REQUEST, &sink);
  std::string raw = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2cx\r\n\r\n";
  REQUIRE(parser.feed(raw.data(), raw.size()) == Outcome::Upgraded);
  REQUIRE(sink.heads.size() == 1);
  CHECK(sink.heads[0].upgrade);
}

TEST_CASE("reset() makes a parser reusable, even after an error") {
  RecordingSink sink;
  Parser parser(HTTP_REQUEST, &sink);
  std::string bad = "GET / HTTP/1.1\r\nHost : h\r\n\r\n";
  REQUIRE(parser.feed(bad.data(), bad.size()) == Outcome::Error);
  REQUIRE(parser.errorStatus() == 400);
  parser.reset();
  CHECK(parser.errorStatus() == 0);
  CHECK(parser.idle());
  CHECK_FALSE(parser.sawBytes());
  REQUIRE(parser.feed(kSimpleGet.data(), kSimpleGet.size()) == Outcome::NeedMore);
  REQUIRE(sink.heads.size() == 1);
  CHECK(sink.heads[0].headers == kSimpleHeaders);

  SECTION("reset in the middle of a head drops the partial head") {
    std::string part = "GET /partial HTTP/1.1\r\nHo";
    REQUIRE(parser.feed(part.data(), part.size()) == Outcome::NeedMore);
    CHECK(parser.inHead());
    parser.reset();
    CHECK(parser.idle());
    REQUIRE(parser.feed(kSimpleGet.data(), kSimpleGet.size()) == Outcome::NeedMore);
    REQUIRE(sink.heads.size() == 2);
    CHECK(sink.heads[1].url == "/path?q=1");
    CHECK(sink.heads[1].headers == kSimpleHeaders);
  }
  SECTION("reset while paused drops the kept input") {
    sink.pause_after_message = true;
    std::string two = kSimpleGet + kSimpleGet;
    REQUIRE(parser.feed(two.data(), two.size()) == Outcome::Paused);
    CHECK(parser.hasPendingInput());
    parser.reset();
    CHECK_FALSE(parser.hasPendingInput());
    REQUIRE(parser.feed(kSimpleGet.data(), kSimpleGet.size()) == Outcome::Paused);
    CHECK(sink.heads.size() == 3);
  }
}

}  // namespace
}  // namespace gw::http

namespace gw::http {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

const std::string kTrailed =
    "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n"
    "0\r\ngrpc-status: 0\r\nGrpc-Message: all good\r\nx-empty:\r\n\r\n"
    "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";

TEST_CASE("trailer fields are reported once, before the message completes") {
  const Fields want = {{"grpc-status", "0"}, {"Grpc-Message", "all good"}, {"x-empty", ""}};
  for (bool split : {false, true}) {
    Run run;
    runRequest(split ? bytewise(kTrailed) : std::vector<std::string>{kTrailed}, run);
    CHECK(run.last == Outcome::NeedMore);
    REQUIRE(run.sink.heads.size() == 2);
    CHECK(run.sink.bodies[0] == "hello");
    REQUIRE(run.sink.trailers.size() == 1);
    CHECK(run.sink.trailers[0] == want);
    CHECK(run.sink.trailers_at_completion[0] == 0);
    CHECK(run.sink.completions == 2);
    // The next message's head is not confused by the trailers before it.
    CHECK(run.sink.heads[1].url == "/next");
    CHECK(run.sink.heads[1].headers.size() == 1);
  }
}

TEST_CASE("a chunked message without trailers reports none") {
  Run run;
  runRequest({"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
              "1\r\na\r\n0\r\n\r\n"},
             run);
  CHECK(run.sink.completions == 1);
  CHECK(run.sink.trailers.empty());
}

TEST_CASE("response trailers are reported too") {
  RecordingSink sink;
  Parser parser(HTTP_RESPONSE, &sink);
  const std::string raw =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\ngrpc-status: 5\r\n\r\n";
  CHECK(parser.feed(raw.data(), raw.size()) == Outcome::NeedMore);
  REQUIRE(sink.trailers.size() == 1);
  CHECK(sink.trailers[0] == Fields{{"grpc-status", "5"}});
  CHECK(sink.completions == 1);
}

TEST_CASE("bad trailer fields are refused") {
  const std::string head = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  CHECK(requestErrorStatus(head + "bad name: x\r\n\r\n") == 400);
  CHECK(requestErrorStatus(head + "x: a\x01b\r\n\r\n") == 400);
  CHECK(requestErrorStatus(head + ": x\r\n\r\n") == 400);
  SECTION("more fields than the limit") {
    std::string many = head;
    for (int i = 0; i < 5; ++i) many += "t" + std::to_string(i) + ": v\r\n";
    Run run;
    runRequest({many + "\r\n"}, run, 16 * 1024, 4);
    CHECK(run.last == Outcome::Error);
    CHECK(run.error_status == 431);
  }
  SECTION("more bytes than the head limit") {
    Run run;
    runRequest({head + "t: " + std::string(300, 'v') + "\r\n\r\n"}, run, 200, 100);
    CHECK(run.last == Outcome::Error);
    CHECK(run.error_status == 431);
  }
  SECTION("a sink that rejects them") {
    Run run;
    run.sink.trailers_result = MessageSink::kReject;
    runRequest({head + "t: v\r\n\r\n"}, run);
    CHECK(run.last == Outcome::Error);
    CHECK(run.sink.completions == 0);
  }
}

}  // namespace
}  // namespace gw::http
