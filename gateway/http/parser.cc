#include "gateway/http/parser.h"

#include <algorithm>

#include "gateway/http/hop_by_hop.h"

namespace gw::http {
namespace {

Parser* self(llhttp_t* p) { return static_cast<Parser*>(p->data); }

// RFC 9110 §5.5: field values are VCHAR, obs-text, SP and HTAB. Everything else (NUL,
// CR, LF, other controls, DEL) is refused rather than passed on.
bool validFieldValueBytes(const char* at, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(at[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

// Fields whose value decides where a request ends or where it goes.
bool isFramingOrRoutingField(const char* base, const Span& name) {
  std::string_view n(base + name.offset, name.length);
  return equalsIgnoreCase(n, "content-length") || equalsIgnoreCase(n, "transfer-encoding") ||
         equalsIgnoreCase(n, "host");
}

// RFC 9110 §5.6.2 token characters, the only ones allowed in a field name.
bool validFieldNameBytes(const char* at, size_t n) {
  static const bool* table = [] {
    static bool t[256] = {};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
  }();
  for (size_t i = 0; i < n; ++i) {
    if (!table[static_cast<unsigned char>(at[i])]) return false;
  }
  return true;
}

}  // namespace

size_t MessageHead::count(std::string_view field, std::string_view* first_value) const {
  size_t n = 0;
  for (size_t i = 0; i < header_count; ++i) {
    if (equalsIgnoreCase(name(i), field)) {
      if (n == 0 && first_value != nullptr) *first_value = value(i);
      ++n;
    }
  }
  return n;
}

const llhttp_settings_t* Parser::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t v;
    llhttp_settings_init(&v);
    v.on_message_begin = &Parser::onMessageBegin;
    v.on_method = &Parser::onSpanMethodOrVersion;
    v.on_version = &Parser::onVersion;
    v.on_url = &Parser::onUrl;
    v.on_status = &Parser::onStatus;
    v.on_header_field = &Parser::onHeaderField;
    v.on_header_field_complete = &Parser::onHeaderFieldComplete;
    v.on_header_value = &Parser::onHeaderValue;
    v.on_header_value_complete = &Parser::onHeaderValueComplete;
    v.on_headers_complete = &Parser::onHeadersComplete;
    v.on_body = &Parser::onBody;
    v.on_message_complete = &Parser::onMessageCompleteCb;
    v.on_chunk_extension_name = &Parser::onChunkExtension;
    v.on_chunk_extension_value = &Parser::onChunkExtension;
    v.on_chunk_header = &Parser::onChunkHeader;
    return v;
  }();
  return &s;
}

Parser::Parser(llhttp_type_t type, MessageSink* sink) : sink_(sink) {
  llhttp_init(&p_, type, settings());
  p_.data = this;
}

void Parser::reset() {
  llhttp_reset(&p_);
  p_.data = this;
  // A pooled parser keeps its buffer's capacity, unless a large pipelined burst grew it.
  if (in_.capacity() > 64 * 1024) std::string().swap(in_);
  in_.clear();
  fed_ = 0;
  chunk_ = nullptr;
  chunk_abs_ = parsed_abs_ = msg_abs_ = 0;
  msg_started_ = message_open_ = in_head_ = false;
  field_open_ = value_open_ = url_open_ = status_open_ = false;
  expect_value_ = chunk_owned_ = paused_at_head_ = false;
  headers_.clear();
  trailers_.clear();
  trailer_bytes_.clear();
  trailer_name_open_ = false;
  chunk_extension_bytes_ = 0;
  error_status_ = 0;
  error_reason_ = nullptr;
}

uint32_t Parser::offsetOf(const char* at) {
  uint64_t abs = chunk_abs_ + static_cast<uint64_t>(at - chunk_);
  if (!msg_started_) {
    msg_started_ = true;
    msg_abs_ = abs;
  }
  return static_cast<uint32_t>(abs - msg_abs_);
}

bool Parser::headTooBig(const char* end) {
  uint64_t abs = chunk_abs_ + static_cast<uint64_t>(end - chunk_);
  return msg_started_ && abs - msg_abs_ > max_header_bytes_;
}

// Span callbacks may arrive in pieces (a read ended mid-token); pieces are contiguous in
// the stream, so the span is its first offset plus the summed length.
bool Parser::extend(Span& span, bool& open, const char* at, size_t n) {
  if (!open) {
    span.offset = offsetOf(at);
    span.length = 0;
    open = true;
  } else if (offsetOf(at) != span.offset + span.length) {
    // llhttp joins an obs-folded line (CRLF + SP) into the same value. RFC 9112 §5.2
    // lets a server refuse it; a proxy that forwarded it would disagree with upstreams
    // about where fields end, so refuse it.
    fail(400, "obsolete line folding in header");
    return false;
  }
  span.length += static_cast<uint32_t>(n);
  if (span.offset + span.length > last_span_end_) last_span_end_ = span.offset + span.length;
  if (headTooBig(at + n)) {
    fail(431, "request header fields too large");
    return false;
  }
  return true;
}

int Parser::onMessageBegin(llhttp_t* p) {
  Parser* s = self(p);
  s->message_open_ = true;
  s->in_head_ = true;
  s->msg_started_ = false;
  s->headers_.clear();
  s->trailers_.clear();
  s->trailer_bytes_.clear();
  s->trailer_name_open_ = false;
  s->chunk_extension_bytes_ = 0;
  s->url_ = s->status_ = Span{};
  s->field_open_ = s->value_open_ = s->url_open_ = s->status_open_ = false;
  s->expect_value_ = false;
  s->version_seen_ = false;
  s->last_span_end_ = 0;
  return 0;
}

int Parser::onSpanMethodOrVersion(llhttp_t* p, const char* at, size_t n) {
  Parser* s = self(p);
  if (s->in_head_) {
    uint32_t end = s->offsetOf(at) + static_cast<uint32_t>(n);  // also marks the head start
    if (end > s->last_span_end_) s->last_span_end_ = end;
  }
  return 0;
}

// llhttp 8 accepts a bare LF after the request line and as the blank line that ends the
// head (it refuses it elsewhere). RFC 9112 §2.2 allows either choice; a proxy that
// accepted what the next hop refuses (or the reverse) invites desync, so requests must
// use CRLF everywhere. The head so far is contiguous in memory (see onHeaderValue).
bool Parser::precededByCrlf(const char* at) const {
  const char* base = headBase();
  return at - base >= 2 && at[-2] == '\r' && at[-1] == '\n';
}

bool Parser::headEndsWithCrlfCrlf() const {
  const char* c = headBase() + last_span_end_;
  // llhttp has consumed the whole head, so these bytes are in memory; the comparisons
  // stop at the first mismatch, so nothing past the head's last LF is read.
  if (*c == ':') ++c;  // the last field had an empty value
  while (*c == ' ' || *c == '\t') ++c;
  return c[0] == '\r' && c[1] == '\n' && c[2] == '\r' && c[3] == '\n';
}

int Parser::onUrl(llhttp_t* p, const char* at, size_t n) {
  Parser* s = self(p);
  // RFC 9112 §3: exactly one SP between method and target (llhttp takes several).
  if (!s->url_open_ && (at - s->headBase() < 2 || at[-1] != ' ' || at[-2] == ' ')) {
    s->fail(400, "malformed request line");
    return HPE_USER;
  }
  return s->extend(s->url_, s->url_open_, at, n) ? 0 : HPE_USER;
}

int Parser::onVersion(llhttp_t* p, const char* at, size_t n) {
  Parser* s = self(p);
  if (p->type == HTTP_REQUEST && s->in_head_ && !s->version_seen_) {
    // ... and exactly one SP between target and "HTTP/" (checked at the version's first
    // piece; a read may split it).
    s->version_seen_ = true;
    const char* base = s->headBase();
    if (at - base < 7 || std::string_view(at - 5, 5) != "HTTP/" || at[-6] != ' ' || at[-7] == ' ') {
      s->fail(400, "malformed request line");
      return HPE_USER;
    }
  }
  return onSpanMethodOrVersion(p, at, n);
}

int Parser::onStatus(llhttp_t* p, const char* at, size_t n) {
  Parser* s = self(p);
  return s->extend(s->status_, s->status_open_, at, n) ? 0 : HPE_USER;
}

int Parser::onHeaderField(llhttp_t* p, const char* at, size_t n) {
  Parser* s = self(p);
  if (!s->in_head_) return s->addTrailerPiece(at, n, true);
  if (!s->field_open_) {
    if (s->headers_.size() >= s->max_headers_) {
      s->fail(431, "too many header fields");
      return HPE_USER;
    }
    if (p->type == HTTP_REQUEST && !s->precededByCrlf(at)) {
      s->fail(400, "bare LF in request head");
      return HPE_USER;
    }
    s->headers_.emplace_back();
    s->value_open_ = false;
  }
  if (!validFieldNameBytes(at, n)) {
    s->fail(400, "invalid character in header name");
    return HPE_USER;
  }
  return s->extend(s->headers_.back().name, s->field_open_, at, n) ? 0 : HPE_USER;
}

// Trailer fields (RFC 9112 §7.1.2) come after the body, whose bytes are not kept, so
// they are copied into trailer_bytes_; a message without trailers never gets here.
// Same byte checks and limits as the head (count, and bytes against max_header_bytes).
int Parser::addTrailerPiece(const char* at, size_t n, bool name) {
  if (name ? !validFieldNameBytes(at, n) : !validFieldValueBytes(at, n)) {
    fail(400, name ? "invalid character in trailer name" : "invalid character in trailer value");
    return HPE_USER;
  }
  if (name && !trailer_name_open_) {
    if (trailers_.size() >= max_headers_) {
      fail(431, "too many trailer fields");
      return HPE_USER;
    }
    trailers_.emplace_back();
    trailers_.back().name.offset = static_cast<uint32_t>(trailer_bytes_.size());
    trailer_name_open_ = true;
  } else if (!name && trailers_.empty()) {
    fail(400, "empty trailer name");
    return HPE_USER;
  }
  HeaderSpan& field = trailers_.back();
  // Obs-fold is refused in trailers as in the head (RFC 9112 §5.2). llhttp joins a folded
  // line into the value, so a fold shows as a value piece that does not start where
  // the last piece of the field ended, or, for an empty first line, as a line break
  // between the name and the first value byte. The trailer bytes are not kept, so that
  // gap is inspected when it lies in the current read (a fold split across reads right
  // after the colon is taken as the joined value the upstream receives anyway).
  const uint64_t at_abs = chunk_abs_ + static_cast<uint64_t>(at - chunk_);
  if (!name) {
    bool folded = false;
    if (field.value.length != 0) {
      folded = at_abs != trailer_piece_end_abs_;
    } else if (at_abs >= trailer_piece_end_abs_ &&
               at_abs - trailer_piece_end_abs_ <= static_cast<uint64_t>(at - chunk_)) {
      for (const char* c = at - (at_abs - trailer_piece_end_abs_); c < at; ++c) {
        folded = folded || *c == '\r' || *c == '\n';
      }
    }
    if (folded) {
      fail(400, "obsolete line folding in trailer");
      return HPE_USER;
    }
    if (field.value.length == 0) field.value.offset = static_cast<uint32_t>(trailer_bytes_.size());
  }
  trailer_piece_end_abs_ = at_abs + n;
  if (trailer_bytes_.size() + n > max_header_bytes_) {
    fail(431, "trailer fields too large");
    return HPE_USER;
  }
  trailer_bytes_.append(at, n);
  (name ? field.name : field.value).length += static_cast<uint32_t>(n);
  return 0;
}

int Parser::onHeaderFieldComplete(llhttp_t* p) {
  Parser* s = self(p);
  if (!s->in_head_) {
    if (!s->trailer_name_open_ || s->trailers_.back().name.length == 0) {
      s->fail(400, "empty trailer name");
      return HPE_USER;
    }
    s->trailer_name_open_ = false;
    return 0;
  }
  if (s->in_head_ && (!s->field_open_ || s->headers_.back().name.length == 0)) {
    s->fail(400, "empty header name");  // ": value"
    return HPE_USER;
  }
  s->field_open_ = false;
  s->expect_value_ = true;
  return 0;
}

int Parser::onHeaderValue(llhttp_t* p, const char* at, size_t n) {
  Parser* s = self(p);
  // llhttp reports an empty value as a zero-length piece whose pointer may sit past the
  // line end; there is nothing to record or check in it.
  if (!s->in_head_) return n == 0 ? 0 : s->addTrailerPiece(at, n, false);
  if (n == 0) return 0;
  if (!s->expect_value_ || s->headers_.empty()) {
    s->fail(400, "empty header name");
    return HPE_USER;
  }
  if (!validFieldValueBytes(at, n)) {
    s->fail(400, "invalid character in header value");
    return HPE_USER;
  }
  if (!s->value_open_) {
    // The value must start on the field's own line: a line break between the colon and
    // the first value byte is obs-fold after an empty first line. The head so far is
    // contiguous here (in this read, or kept in in_), so the gap can be inspected.
    const char* base = s->headBase();
    const Span& name = s->headers_.back().name;
    const char* gap = base + name.offset + name.length;
    for (const char* c = gap; c < at; ++c) {
      if (*c == '\r' || *c == '\n') {
        s->fail(400, "obsolete line folding in header");
        return HPE_USER;
      }
      // HTAB is optional whitespace (RFC 9110 §5.6.3), but before a framing or routing
      // field's value it is a known obfuscation ("Transfer-Encoding:<TAB>chunked" in the
      // TE.TE lists) on which hops disagree: nginx refuses it. (llhttp refuses it after.)
      if (*c == '\t' && p->type == HTTP_REQUEST && isFramingOrRoutingField(base, name)) {
        s->fail(400, "tab before a Content-Length, Transfer-Encoding or Host value");
        return HPE_USER;
      }
    }
  }
  return s->extend(s->headers_.back().value, s->value_open_, at, n) ? 0 : HPE_USER;
}

int Parser::onHeaderValueComplete(llhttp_t* p) {
  Parser* s = self(p);
  if (s->in_head_ && !s->expect_value_) {
    // A value with no field name before it (": 1").
    s->fail(400, "empty header name");
    return HPE_USER;
  }
  s->value_open_ = false;
  s->expect_value_ = false;
  return 0;
}

int Parser::onHeadersComplete(llhttp_t* p) {
  Parser* s = self(p);
  s->in_head_ = false;
  if (p->type == HTTP_REQUEST && !s->headEndsWithCrlfCrlf()) {
    s->fail(400, "bare LF in request head");
    return -1;
  }
  // RFC 9112 §4: the status code is three digits. llhttp also takes "HTTP/1.1 20 OK"
  // (status 20), which a sink would take for an interim 1xx and then wait for a final
  // response (found by the response fuzzer).
  if (p->type == HTTP_RESPONSE && p->status_code < 100) {
    s->fail(502, "invalid status code in response");
    return -1;
  }
  // llhttp takes "GET /" and even "CONNECT " (no target) without a version as HTTP/0.9,
  // skipping the request-line checks in onVersion; RFC 9112 §3 requires the version, and
  // a head with an empty target must not reach the sink (found by the request fuzzer).
  if (p->type == HTTP_REQUEST && !s->version_seen_) {
    s->fail(400, "malformed request line");
    return -1;
  }
  MessageHead head;
  // The head started at msg_abs_; the chunk being executed holds (or, when kept in in_,
  // is contiguous with) everything from there.
  head.base = s->headBase();
  head.spans = s->headers_.data();
  head.header_count = s->headers_.size();
  head.url = {head.base + s->url_.offset, s->url_.length};
  head.reason = {head.base + s->status_.offset, s->status_.length};
  head.method = p->method;
  head.status = p->status_code;
  head.http_major = p->http_major;
  head.http_minor = p->http_minor;
  head.keep_alive = llhttp_should_keep_alive(p) != 0;
  head.chunked = (p->flags & F_CHUNKED) != 0;
  head.has_content_length = (p->flags & F_CONTENT_LENGTH) != 0;
  head.has_transfer_encoding = (p->flags & F_TRANSFER_ENCODING) != 0;
  head.content_length = head.has_content_length ? p->content_length : 0;
  head.upgrade = p->upgrade != 0;
  if (head.upgrade && p->type == HTTP_REQUEST && p->method != HTTP_CONNECT) {
    // RFC 6455 §4.1: a WebSocket handshake carries one Sec-WebSocket-Key; one without
    // is not a handshake any upstream can complete (HAProxy refuses it too).
    if (upgradeOffers(head, "websocket") && head.count("sec-websocket-key") != 1) {
      s->fail(400, "WebSocket upgrade without one Sec-WebSocket-Key");
      return -1;
    }
    // h2c is never tunnelled (see upgradeOffers). Cleared before llhttp looks at it
    // again, the flag keeps llhttp reading this connection as HTTP/1.1 after the message.
    if (upgradeOffers(head, "h2c")) {
      p->upgrade = 0;
      head.upgrade = false;
    }
  }
  int rc = s->sink_->onHead(head);
  s->paused_at_head_ = rc == MessageSink::kPause;
  if (rc < 0) {
    if (s->error_status_ == 0) s->fail(400, "rejected");
    return -1;
  }
  // RFC 9112 §6.3: a 1xx, 204 or 304 response ends at its blank line whatever its
  // Content-Length or Transfer-Encoding say. llhttp 8 only knows this when neither is
  // present, so "103 ... Content-Length: 5" made the next response's first bytes its
  // body: the connection's responses desynchronised (found by the response fuzzer).
  // 101 too: with Content-Length llhttp read a body before switching protocols, taking
  // the new protocol's first bytes; skipping it still ends an upgrade in Upgraded. (An
  // "HTTP/1.1 204" with a body is a broken upstream; the bytes after the head then fail
  // as the next response.)
  if (p->type == HTTP_RESPONSE && rc == MessageSink::kContinue &&
      (head.status < 200 || head.status == 204 || head.status == 304)) {
    return MessageSink::kSkipBody;
  }
  return rc;
}

int Parser::onBody(llhttp_t* p, const char* at, size_t n) {
  Parser* s = self(p);
  if (s->sink_->onBody(at, n) < 0) {
    if (s->error_status_ == 0) s->fail(400, "rejected body");
    return HPE_USER;
  }
  return 0;
}

int Parser::onMessageCompleteCb(llhttp_t* p) {
  Parser* s = self(p);
  if (!s->trailers_.empty()) {
    MessageHead trailers;
    trailers.base = s->trailer_bytes_.data();
    trailers.spans = s->trailers_.data();
    trailers.header_count = s->trailers_.size();
    int rc = s->sink_->onTrailers(trailers);
    s->trailers_.clear();
    s->trailer_bytes_.clear();
    if (rc < 0) {
      if (s->error_status_ == 0) s->fail(400, "rejected trailers");
      return HPE_USER;
    }
  }
  s->message_open_ = false;
  s->msg_started_ = false;
  return s->sink_->onMessageComplete() ? HPE_PAUSED : 0;
}

// Chunk extensions carry nothing the gateway uses, and llhttp reads them without a
// limit: 100 KiB of them on one chunk-size line passed. Nobody needs more than a few
// bytes; nginx takes any length, HAProxy up to its buffer (16 KiB).
constexpr uint32_t kMaxChunkExtensionBytes = 4096;

int Parser::onChunkExtension(llhttp_t* p, const char* at, size_t n) {
  (void)at;
  Parser* s = self(p);
  s->chunk_extension_bytes_ +=
      static_cast<uint32_t>(std::min<size_t>(n, kMaxChunkExtensionBytes + 1));
  if (s->chunk_extension_bytes_ > kMaxChunkExtensionBytes) {
    s->fail(p->type == HTTP_REQUEST ? 400 : 502, "chunk extensions too long");
    return HPE_USER;
  }
  return 0;
}

int Parser::onChunkHeader(llhttp_t* p) {
  self(p)->chunk_extension_bytes_ = 0;
  return 0;
}

Parser::Outcome Parser::feed(const char* data, size_t length) {
  // While paused (a message is being answered) new bytes only queue up behind it.
  llhttp_errno_t state = llhttp_get_errno(&p_);
  if (state == HPE_PAUSED || state == HPE_PAUSED_UPGRADE) {
    in_.append(data, length);
    return state == HPE_PAUSED ? Outcome::Paused : Outcome::Upgraded;
  }
  if (in_.empty()) return run(data, length, false);
  in_.append(data, length);
  return run(in_.data() + fed_, in_.size() - fed_, true);
}

Parser::Outcome Parser::resume() {
  bool at_head = paused_at_head_;
  paused_at_head_ = false;
  if (llhttp_get_errno(&p_) == HPE_PAUSED) llhttp_resume(&p_);
  // After a pause at a head, llhttp still has to decide what follows it (a message with
  // no body completes right here), so it runs even with no input.
  if (!hasPendingInput() && !at_head) return Outcome::NeedMore;
  return run(in_.data() + fed_, in_.size() - fed_, true);
}

Parser::Outcome Parser::finish() {
  llhttp_errno_t err = llhttp_finish(&p_);
  if (err == HPE_OK || err == HPE_PAUSED) return Outcome::NeedMore;
  if (error_status_ == 0) fail(400, llhttp_get_error_reason(&p_));
  return Outcome::Error;
}

Parser::Outcome Parser::run(const char* data, size_t length, bool from_buffer) {
  chunk_ = data;
  chunk_abs_ = parsed_abs_;
  chunk_owned_ = from_buffer;
  llhttp_errno_t err = llhttp_execute(&p_, data, length);
  chunk_owned_ = false;
  size_t consumed = length;
  if (err != HPE_OK) {
    const char* pos = llhttp_get_error_pos(&p_);
    if (pos != nullptr && pos >= data && pos <= data + length) {
      consumed = static_cast<size_t>(pos - data);
    }
  }
  parsed_abs_ += consumed;

  if (err == HPE_OK) {
    if (in_head_ && msg_started_) {
      // Keep the head so far: its spans are offsets from its first byte.
      const char* head_start = headBase();  // chunk_ == data here
      const char* end = data + length;
      // Bytes after the last span (line ends, whitespace) are counted with 4 bytes of
      // slack, so that the verdict is the same however the reads split the head (the
      // span checks in extend() count up to the end of the last span).
      if (static_cast<uint64_t>(end - head_start) > uint64_t{max_header_bytes_} + 4) {
        fail(431, "request header fields too large");
        return Outcome::Error;
      }
      if (from_buffer) {
        in_.erase(0, static_cast<size_t>(head_start - in_.data()));
      } else {
        in_.assign(head_start, end);
      }
      fed_ = in_.size();
    } else {
      in_.clear();
      fed_ = 0;
    }
    return Outcome::NeedMore;
  }
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    const char* rest = data + consumed;
    size_t rest_length = length - consumed;
    if (from_buffer) {
      in_.erase(0, static_cast<size_t>(rest - in_.data()));
    } else {
      in_.assign(rest, rest_length);
    }
    fed_ = 0;
    return err == HPE_PAUSED ? Outcome::Paused : Outcome::Upgraded;
  }
  if (error_status_ == 0) fail(400, llhttp_get_error_reason(&p_));
  return Outcome::Error;
}

}  // namespace gw::http
