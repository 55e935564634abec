#define CATCH_CONFIG_MAIN
#include "gateway/filter/header_edits.h"

#include <catch2/catch.hpp>
#include <string>

#include "gateway/http/parser.h"

using gw::filter::HeaderEdits;

namespace {

// Parses one request head and keeps a copy of it alive for the test.
struct Head : gw::http::MessageSink {
  std::string raw;
  gw::http::MessageHead head;
  std::vector<gw::http::HeaderSpan> spans;
  explicit Head(std::string text) : raw(std::move(text)) {
    gw::http::Parser parser(HTTP_REQUEST, this);
    parser.feed(raw.data(), raw.size());
  }
  int onHead(const gw::http::MessageHead& h) override {
    head = h;
    spans.assign(h.spans, h.spans + h.header_count);
    head.spans = spans.data();
    return kContinue;
  }
  int onBody(const char*, size_t) override { return kContinue; }
  bool onMessageComplete() override { return false; }
};

}  // namespace

TEST_CASE("set replaces originals and earlier edits; add keeps them; remove drops all") {
  Head h("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\nx-b: 3\r\n\r\n");
  HeaderEdits e;
  e.add("X-A", "added");
  e.set("x-a", "set");
  e.remove("X-B");
  e.add("X-B", "after-remove");
  CHECK(e.dropsOriginal("X-A"));
  CHECK(e.dropsOriginal("x-B"));
  CHECK_FALSE(e.dropsOriginal("Host"));
  std::string_view v;
  REQUIRE(e.find(&h.head, "x-a", v));
  CHECK(v == "set");
  REQUIRE(e.find(&h.head, "X-B", v));
  CHECK(v == "after-remove");
  REQUIRE(e.find(&h.head, "host", v));
  CHECK(v == "a");
  CHECK_FALSE(e.find(&h.head, "X-None", v));
  int live = 0;
  for (const auto& edit : e.edits()) live += edit.live ? 1 : 0;
  CHECK(live == 3);  // set X-A, remove X-B, add X-B
  CHECK_FALSE(e.edits()[0].live);
}

TEST_CASE("add alone keeps the original first for find") {
  Head h("GET / HTTP/1.1\r\nHost: a\r\nX-A: orig\r\n\r\n");
  HeaderEdits e;
  e.add("X-A", "more");
  std::string_view v;
  REQUIRE(e.find(&h.head, "X-A", v));
  CHECK(v == "orig");
  REQUIRE(e.find(nullptr, "X-A", v));
  CHECK(v == "more");
  e.clear();
  CHECK(e.empty());
}
