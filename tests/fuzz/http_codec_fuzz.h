#pragma once
// The shared harness of the request and response codec fuzzers (request_fuzzer.cc,
// response_fuzzer.cc).
//
// Input layout: two control bytes, then the byte stream the peer sends.
//   byte 0, bits 0-1: how the stream is split into reads: 0 one read, 1 one byte per read,
//                     2 reads of 1..16 bytes, 3 reads of 1..512 bytes (sizes from a PRNG
//                     seeded with byte 1, so the split points come from the input)
//   byte 0, bit 2:    the sink pauses after every message; the harness resumes
//   byte 0, bit 3:    while paused, the next read is fed (it must queue) before resume()
//   byte 0, bit 4:    small limits (256 header bytes, 8 header fields)
//   byte 0, bit 5:    finish() at the end (the peer closed)
//   byte 0, bits 6-7 and byte 1 (response side): which messages answer a HEAD request,
//                     i.e. which heads the sink answers with kSkipBody
//   byte 1:           the PRNG seed
//
// Invariants checked (a violation aborts, which libFuzzer reports as a crash):
//   - every view of a head lies inside memory that ASan lets us read (each byte is read);
//     header names are non-empty tokens, values hold no CR, LF or NUL, the spans are in
//     stream order and the head fits the limits
//   - heads and completions alternate: no head while a message is open, no completion
//     without a head, no body outside a message, no body after kSkipBody, none for
//     1xx/204/304 responses
//   - a completed message with Content-Length (and no chunking) delivered exactly that
//     many body bytes; a request with neither Content-Length nor chunking has no body
//   - body bytes delivered never exceed the bytes fed
//   - the split does not matter: the same stream fed in one read gives the same events
//     (heads, bodies, completions, verdict), except near the header-size limit where
//     the 431 verdict may depend on where a read ends (see Parser::run)

#include <llhttp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gateway/http/parser.h"

namespace gw::fuzz {

[[noreturn]] inline void invariantFailed(const char* what) {
  std::fprintf(stderr, "invariant violated: %s\n", what);
  std::abort();
}

#define FUZZ_CHECK(cond)                             \
  do {                                               \
    if (!(cond)) ::gw::fuzz::invariantFailed(#cond); \
  } while (0)

inline bool isTokenChar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Reads every byte of a view (ASan reports a view outside live memory) and folds it in.
inline uint32_t touch(std::string_view v) {
  uint32_t h = 0;
  for (char c : v) h = h * 31 + static_cast<unsigned char>(c);
  return h;
}

class CheckingSink : public http::MessageSink {
 public:
  CheckingSink(llhttp_type_t type, uint32_t skip_mask, bool pause, uint32_t max_header_bytes,
               uint32_t max_headers)
      : type_(type),
        skip_mask_(skip_mask),
        pause_(pause),
        max_header_bytes_(max_header_bytes),
        max_headers_(max_headers) {}

  int onHead(const http::MessageHead& head) override {
    FUZZ_CHECK(heads_ == completions_);  // no head while a message is open
    ++heads_;
    FUZZ_CHECK(head.base != nullptr);
    FUZZ_CHECK(head.header_count <= max_headers_);
    uint64_t end = 0;
    auto spanEnd = [&](std::string_view v) {
      FUZZ_CHECK(v.data() >= head.base);
      uint64_t e = static_cast<uint64_t>(v.data() - head.base) + v.size();
      if (e > end) end = e;
    };
    uint32_t h = 0;
    const char* previous = head.base;
    for (size_t i = 0; i < head.header_count; ++i) {
      std::string_view name = head.name(i);
      std::string_view value = head.value(i);
      FUZZ_CHECK(!name.empty());
      for (char c : name) FUZZ_CHECK(isTokenChar(static_cast<unsigned char>(c)));
      for (char c : value) FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
      FUZZ_CHECK(name.data() >= previous);  // spans in stream order
      if (!value.empty()) FUZZ_CHECK(value.data() >= name.data() + name.size());
      previous = value.empty() ? name.data() + name.size() : value.data() + value.size();
      spanEnd(name);
      spanEnd(value);
      h ^= touch(name) ^ touch(value);
    }
    if (type_ == HTTP_REQUEST) {
      FUZZ_CHECK(!head.url.empty());
      spanEnd(head.url);
    } else {
      FUZZ_CHECK(head.status >= 100 && head.status <= 999);
      if (!head.reason.empty()) spanEnd(head.reason);
    }
    h ^= touch(head.url) ^ touch(head.reason);
    FUZZ_CHECK(end <= uint64_t{max_header_bytes_} + 4);
    sink_hash_ ^= h;

    std::string_view cl;
    size_t cl_count = head.count("content-length", &cl);
    FUZZ_CHECK(head.has_content_length == (cl_count != 0));
    // A proxy must never see both framings on one request (RFC 9112 §6.3: smuggling).
    if (type_ == HTTP_REQUEST) FUZZ_CHECK(!(head.chunked && head.has_content_length));

    skip_ = false;
    if (type_ == HTTP_RESPONSE && head.status >= 200) {
      skip_ = (skip_mask_ >> (final_responses_ % 32)) & 1;
      ++final_responses_;
    }
    no_body_ = skip_ || (type_ == HTTP_RESPONSE &&
                         (head.status < 200 || head.status == 204 || head.status == 304));
    // A CONNECT request has no content (RFC 9110 §9.3.6): llhttp ends it at its head and
    // hands what follows over as tunnel bytes, whatever Content-Length says.
    if (type_ == HTTP_REQUEST && head.method == HTTP_CONNECT) no_body_ = true;
    expect_length_ = !head.chunked && head.has_content_length && !no_body_;
    if (type_ == HTTP_REQUEST && !head.chunked && !head.has_content_length) no_body_ = true;
    content_length_ = head.content_length;
    body_ = 0;
    log_ += "H" + std::to_string(head.method) + " " + std::to_string(head.status) + " " +
            std::string(head.url) + "|" + std::to_string(head.header_count) + "|" +
            std::to_string(head.content_length) + (head.chunked ? "c" : "") +
            (head.upgrade ? "u" : "") + (head.keep_alive ? "k" : "") + "\n";
    for (size_t i = 0; i < head.header_count; ++i) {
      log_ += std::string(head.name(i)) + ":" + std::string(head.value(i)) + "\n";
    }
    return skip_ ? kSkipBody : kContinue;
  }

  int onBody(const char* data, size_t length) override {
    FUZZ_CHECK(heads_ == completions_ + 1);  // inside a message
    FUZZ_CHECK(!no_body_);
    FUZZ_CHECK(length > 0);
    body_ += length;
    total_body_ += length;
    if (body_ == length) log_ += "B";  // once per message: the split must not show
    log_.append(data, length);
    return kContinue;
  }

  bool onMessageComplete() override {
    FUZZ_CHECK(heads_ == completions_ + 1);
    ++completions_;
    if (expect_length_) FUZZ_CHECK(body_ == content_length_);
    if (no_body_) FUZZ_CHECK(body_ == 0);
    log_ += "C\n";
    return pause_;
  }

  uint64_t heads() const { return heads_; }
  uint64_t completions() const { return completions_; }
  uint64_t totalBody() const { return total_body_; }
  const std::string& log() const { return log_; }

 private:
  llhttp_type_t type_;
  uint32_t skip_mask_;
  bool pause_;
  uint32_t max_header_bytes_;
  uint32_t max_headers_;
  uint64_t heads_ = 0;
  uint64_t completions_ = 0;
  uint64_t final_responses_ = 0;
  bool skip_ = false;
  bool no_body_ = false;
  bool expect_length_ = false;
  uint64_t content_length_ = 0;
  uint64_t body_ = 0;
  uint64_t total_body_ = 0;
  uint32_t sink_hash_ = 0;
  std::string log_;
};

struct RunResult {
  std::string log;
  http::Parser::Outcome outcome = http::Parser::Outcome::NeedMore;
  int error_status = 0;
};

class SplitRng {
 public:
  explicit SplitRng(uint32_t seed) : state_(seed * 2654435761u + 1) {}
  uint32_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_;
  }

 private:
  uint32_t state_;
};

// Feeds `stream` to a parser in reads chosen by `split_mode` and drives pauses.
inline RunResult runParser(llhttp_type_t type, std::string_view stream, int split_mode,
                           uint8_t seed, uint8_t flags, uint32_t skip_mask) {
  using Outcome = http::Parser::Outcome;
  const bool pause = flags & 0x04;
  const bool feed_while_paused = flags & 0x08;
  const bool small_limits = flags & 0x10;
  const bool finish = (flags & 0x20) || type == HTTP_RESPONSE;
  const uint32_t max_header_bytes = small_limits ? 256 : 16 * 1024;
  const uint32_t max_headers = small_limits ? 8 : 100;

  CheckingSink sink(type, skip_mask, pause, max_header_bytes, max_headers);
  http::Parser parser(type, &sink);
  parser.setLimits(max_header_bytes, max_headers);
  SplitRng rng(seed);
  RunResult result;

  auto nextLength = [&](size_t left) -> size_t {
    size_t n = left;
    if (split_mode == 1) n = 1;
    if (split_mode == 2) n = 1 + rng.next() % 16;
    if (split_mode == 3) n = 1 + rng.next() % 512;
    return n < left ? n : left;
  };

  size_t pos = 0;
  Outcome outcome = Outcome::NeedMore;
  bool stopped = false;
  while (pos < stream.size() && !stopped) {
    // Each read is a fresh heap copy so ASan sees a view kept past its read.
    size_t n = nextLength(stream.size() - pos);
    std::string read(stream.substr(pos, n));
    pos += n;
    outcome = parser.feed(read.data(), read.size());
    read.assign(read.size(), '\xee');  // the parser may not keep pointers into a read
    while (outcome == Outcome::Paused) {
      FUZZ_CHECK(pause);
      if (feed_while_paused && pos < stream.size()) {
        size_t m = nextLength(stream.size() - pos);
        size_t before = parser.pendingInputSize();
        FUZZ_CHECK(parser.feed(stream.data() + pos, m) == Outcome::Paused);
        FUZZ_CHECK(parser.pendingInputSize() == before + m);  // queued, not parsed
        pos += m;
      }
      outcome = parser.resume();
    }
    if (outcome == Outcome::Upgraded) {
      FUZZ_CHECK(parser.pendingInputSize() <= stream.size());
      stopped = true;
    }
    if (outcome == Outcome::Error) {
      FUZZ_CHECK(parser.errorStatus() >= 400 && parser.errorStatus() < 600);
      FUZZ_CHECK(parser.errorReason() != nullptr);
      stopped = true;
    }
    FUZZ_CHECK(sink.completions() <= sink.heads());
    FUZZ_CHECK(sink.totalBody() <= pos);
  }
  if (!stopped && finish) {
    outcome = parser.finish();
    if (outcome == Outcome::Error) FUZZ_CHECK(parser.errorStatus() >= 400);
  }
  FUZZ_CHECK(sink.completions() <= sink.heads());
  FUZZ_CHECK(sink.heads() <= sink.completions() + 1);
  if (outcome == Outcome::NeedMore && !stopped && parser.idle()) {
    FUZZ_CHECK(sink.heads() == sink.completions());
  }
  result.log = sink.log();
  result.outcome = outcome;
  result.error_status = outcome == Outcome::Error ? parser.errorStatus() : 0;
  return result;
}

inline int fuzzCodec(llhttp_type_t type, const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  const uint8_t seed = data[1];
  const uint32_t skip_mask = (uint32_t{seed} << 2) | (flags >> 6);
  std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);
  const int split_mode = flags & 0x03;
  RunResult split = runParser(type, stream, split_mode, seed, flags, skip_mask);
  if (split_mode != 0) {
    RunResult whole = runParser(type, stream, 0, seed, flags, skip_mask);
    if (split.error_status != 431 && whole.error_status != 431) {
      if (split.log != whole.log || split.outcome != whole.outcome ||
          split.error_status != whole.error_status) {
        std::fprintf(stderr,
                     "split:\n%s\n(outcome %d, status %d)\nwhole:\n%s\n(outcome %d, status %d)\n",
                     split.log.c_str(), static_cast<int>(split.outcome), split.error_status,
                     whole.log.c_str(), static_cast<int>(whole.outcome), whole.error_status);
        invariantFailed("the same stream split differently gave different events");
      }
    }
  }
  return 0;
}

}  // namespace gw::fuzz
