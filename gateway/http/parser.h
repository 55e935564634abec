#pragma once
// One HTTP/1.x parser (request or response side) over llhttp in strict mode.
//
// Header names and values are recorded as spans (offsets from the start of the message
// head), so they can be views into the caller's read buffer: when a head arrives whole
// in one read, nothing is copied. Only when a head is split across reads does the
// parser keep the head's bytes so far (and, after a pause, the unparsed rest) in a small
// buffer of its own, released as soon as the message no longer needs it.
//
// Loop-confined. MessageSink callbacks run inside feed()/resume().

#include <llhttp.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/header.h"

namespace gw::http {

struct Span {
  uint32_t offset = 0;
  uint32_t length = 0;
};

struct HeaderSpan {
  Span name;
  Span value;
};

// A parsed head. Views are valid only during MessageSink::onHead.
struct MessageHead {
  const char* base = nullptr;
  const HeaderSpan* spans = nullptr;
  size_t header_count = 0;
  std::string_view url;     // requests
  int method = 0;           // requests: llhttp_method_t
  int status = 0;           // responses
  std::string_view reason;  // responses
  uint8_t http_major = 1;
  uint8_t http_minor = 1;
  bool keep_alive = false;
  bool chunked = false;
  bool has_content_length = false;
  bool has_transfer_encoding = false;
  bool upgrade = false;
  uint64_t content_length = 0;

  std::string_view name(size_t i) const {
    return {base + spans[i].name.offset, spans[i].name.length};
  }
  std::string_view value(size_t i) const {
    return {base + spans[i].value.offset, spans[i].value.length};
  }
  // Number of fields named `field` (case-insensitive), and the first one's value.
  size_t count(std::string_view field, std::string_view* first_value = nullptr) const;
};

// What the owner of a parser implements.
class MessageSink {
 public:
  static constexpr int kContinue = 0;
  // No body follows (the response to HEAD). The parser itself skips the body of 1xx, 204
  // and 304 responses, whatever their Content-Length says (RFC 9112 §6.3).
  static constexpr int kSkipBody = 1;
  static constexpr int kReject = -1;  // call Parser::fail() first to set the status
  // From onHead only: stop right after the head (feed()/resume() return Paused, the
  // rest of the input is kept); resume() goes on with the body. The head's views die
  // when onHead returns, so copy it (HeadCopy) to keep using it.
  static constexpr int kPause = HPE_PAUSED;

  virtual ~MessageSink() = default;
  virtual int onHead(const MessageHead& head) = 0;
  // Body bytes (chunked framing already removed). Return kContinue or kReject.
  virtual int onBody(const char* data, size_t length) = 0;
  // The trailer fields of a chunked message, right before onMessageComplete (only when
  // it has some). `trailers` holds only fields (header_count, name(), value()); its
  // views, copies the parser made, die when the call returns. Return kContinue or
  // kReject. The default drops them.
  virtual int onTrailers(const MessageHead& trailers) {
    (void)trailers;
    return kContinue;
  }
  // The message ended. Return true to pause parsing right after it (feed/resume then
  // return Paused and keep the rest of the input for resume()).
  virtual bool onMessageComplete() = 0;
};

class Parser {
 public:
  enum class Outcome {
    NeedMore,  // all input consumed
    Paused,    // the sink paused after a message (or a head); unparsed input kept
    Upgraded,  // the message switched protocols; pendingInput() holds the bytes after it
    Error,     // errorStatus()/errorReason() say why; the parser is dead
  };

  Parser(llhttp_type_t type, MessageSink* sink);
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  void setLimits(uint32_t max_header_bytes, uint32_t max_headers) {
    max_header_bytes_ = max_header_bytes;
    max_headers_ = max_headers;
  }

  // New bytes from the network; `data` need only live for this call. While paused, the
  // bytes are only kept (pendingInput() grows) and the pause outcome is returned again.
  Outcome feed(const char* data, size_t length);
  // Continues after Paused with the kept input.
  Outcome resume();
  // The peer closed: completes a read-until-close body. Error if a message was cut short.
  Outcome finish();
  // Starts over for a fresh message stream (a new connection).
  void reset();
  // For pooled parsers: who receives the messages from now on.
  void setSink(MessageSink* sink) { sink_ = sink; }

  bool hasPendingInput() const { return fed_ < in_.size(); }
  size_t pendingInputSize() const { return in_.size() - fed_; }
  std::string_view pendingInput() const { return std::string_view(in_).substr(fed_); }
  void clearPendingInput() {
    in_.clear();
    fed_ = 0;
  }
  // True when between messages and nothing partial is held.
  bool idle() const { return !message_open_ && in_.empty(); }
  bool messageOpen() const { return message_open_; }
  bool inHead() const { return in_head_; }
  bool sawBytes() const { return parsed_abs_ != 0; }
  // True while a sink callback runs on bytes the parser keeps itself (a split head or
  // pipelined input). Such bytes move right after the callback's feed()/resume()
  // returns, so the sink must copy them rather than keep a pointer until a later flush.
  bool inputIsOwned() const { return chunk_owned_; }

  // For a request head that asked to upgrade, from the sink's onHead or, after it
  // paused there, before resume(): whether the connection switches protocols after this
  // message (Outcome::Upgraded) or goes on being parsed as HTTP/1.1 (the Upgrade is
  // ignored, as RFC 9110 §7.8 allows a server to).
  void setUpgrade(bool upgrade) { p_.upgrade = upgrade ? 1 : 0; }

  // Rejects the current message from inside a sink callback.
  void fail(int status, const char* reason) {
    error_status_ = status;
    error_reason_ = reason;
  }
  int errorStatus() const { return error_status_; }
  const char* errorReason() const { return error_reason_; }

 private:
  static int onMessageBegin(llhttp_t* p);
  static int onSpanMethodOrVersion(llhttp_t* p, const char* at, size_t n);
  static int onUrl(llhttp_t* p, const char* at, size_t n);
  static int onVersion(llhttp_t* p, const char* at, size_t n);
  static int onStatus(llhttp_t* p, const char* at, size_t n);
  static int onHeaderField(llhttp_t* p, const char* at, size_t n);
  static int onHeaderFieldComplete(llhttp_t* p);
  static int onHeaderValue(llhttp_t* p, const char* at, size_t n);
  static int onHeaderValueComplete(llhttp_t* p);
  static int onHeadersComplete(llhttp_t* p);
  static int onBody(llhttp_t* p, const char* at, size_t n);
  static int onMessageCompleteCb(llhttp_t* p);
  static int onChunkExtension(llhttp_t* p, const char* at, size_t n);
  static int onChunkHeader(llhttp_t* p);
  static const llhttp_settings_t* settings();

  Outcome run(const char* data, size_t length, bool from_buffer);
  uint32_t offsetOf(const char* at);
  bool extend(Span& span, bool& open, const char* at, size_t n);
  bool headTooBig(const char* end);
  // The current head's first byte. A head that starts inside the chunk being executed
  // (a pipelined message) lies after chunk_, so the distance is signed: subtracting the
  // wrapped unsigned difference was pointer overflow (UB; found by the request fuzzer).
  const char* headBase() const {
    return chunk_ + (static_cast<int64_t>(msg_abs_) - static_cast<int64_t>(chunk_abs_));
  }
  bool precededByCrlf(const char* at) const;
  bool headEndsWithCrlfCrlf() const;
  // Trailer field pieces (after the body): copied, since the head's bytes are gone.
  int addTrailerPiece(const char* at, size_t n, bool name);

  llhttp_t p_;
  MessageSink* sink_;
  std::string in_;  // kept bytes: [0, fed_) head so far (parsed), [fed_, end) unparsed
  size_t fed_ = 0;
  const char* chunk_ = nullptr;  // the bytes being executed, at stream position chunk_abs_
  uint64_t chunk_abs_ = 0;
  uint64_t parsed_abs_ = 0;  // stream position of the next byte to parse
  uint64_t msg_abs_ = 0;     // stream position of the current head's first span
  bool msg_started_ = false;
  bool message_open_ = false;
  bool in_head_ = false;
  bool field_open_ = false;
  bool value_open_ = false;
  bool url_open_ = false;
  bool status_open_ = false;
  bool expect_value_ = false;   // a field name was read; its value comes next
  bool version_seen_ = false;   // the request line's version span has started
  uint32_t last_span_end_ = 0;  // offset just past the last span of the head
  bool chunk_owned_ = false;
  bool paused_at_head_ = false;  // the sink paused in onHead (kPause)
  Span url_;
  Span status_;
  std::vector<HeaderSpan> headers_;
  // Trailer fields, copied (a chunked message with trailers only; empty otherwise).
  std::string trailer_bytes_;
  std::vector<HeaderSpan> trailers_;
  bool trailer_name_open_ = false;
  uint64_t trailer_piece_end_abs_ = 0;  // stream position just past the last trailer piece
  uint32_t max_header_bytes_ = 16 * 1024;
  uint32_t max_headers_ = 100;
  uint32_t chunk_extension_bytes_ = 0;  // in the current chunk-size line
  int error_status_ = 0;
  const char* error_reason_ = nullptr;
};

}  // namespace gw::http
