#include "gateway/http2/fields.h"

#include <array>
#include <charconv>

#include "gateway/http/header.h"
#include "gateway/http/hop_by_hop.h"

namespace gw::http2 {
namespace {

// RFC 9110 §5.6.2 token characters, lowercase only (RFC 9113 §8.2.1).
bool validName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// RFC 9113 §8.2.1: no NUL, CR or LF, no leading or trailing whitespace. The head is
// written to the upstream as HTTP/1 text, so a CR or LF here would be request smuggling.
bool validValue(std::string_view value) {
  for (char c : value) {
    if (c == '\0' || c == '\r' || c == '\n') return false;
  }
  return value.empty() || (value.front() != ' ' && value.front() != '\t' && value.back() != ' ' &&
                           value.back() != '\t');
}

bool connectionSpecific(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade";
}

}  // namespace

int methodFromName(std::string_view name) {
  // The common ones first; the rest by llhttp's own names.
  if (name == "GET") return HTTP_GET;
  if (name == "POST") return HTTP_POST;
  if (name == "HEAD") return HTTP_HEAD;
  if (name == "PUT") return HTTP_PUT;
  if (name == "DELETE") return HTTP_DELETE;
  if (name == "OPTIONS") return HTTP_OPTIONS;
  if (name == "PATCH") return HTTP_PATCH;
    // HTTP methods only (not RTSP's); llhttp_method_name() aborts on an unknown number.
#define GW_METHOD(num, upper, text) \
  if (name == #text) return num;
  HTTP_METHOD_MAP(GW_METHOD)
#undef GW_METHOD
  return -1;
}

void RequestHeadBuilder::reset() {
  bytes_.clear();
  spans_.clear();
  has_method_ = has_scheme_ = has_authority_ = has_path_ = false;
  regular_seen_ = has_content_length_ = false;
  content_length_ = list_size_ = 0;
  head_ = http::MessageHead{};
}

const char* RequestHeadBuilder::add(std::string_view name, std::string_view value) {
  list_size_ += name.size() + value.size() + 32;
  if (!validValue(value)) return "invalid field value";
  auto append = [&](std::string_view s) {
    http::Span span{static_cast<uint32_t>(bytes_.size()), static_cast<uint32_t>(s.size())};
    bytes_.append(s);
    return span;
  };
  if (!name.empty() && name[0] == ':') {
    if (regular_seen_) return "pseudo-header field after a regular field";
    struct Pseudo {
      std::string_view name;
      http::Span* span;
      bool* seen;
    };
    std::array<Pseudo, 4> known = {{{":method", &method_, &has_method_},
                                    {":scheme", &scheme_, &has_scheme_},
                                    {":authority", &authority_, &has_authority_},
                                    {":path", &path_, &has_path_}}};
    for (Pseudo& p : known) {
      if (name != p.name) continue;
      if (*p.seen) return "repeated pseudo-header field";
      *p.seen = true;
      *p.span = append(value);
      return nullptr;
    }
    return "unknown pseudo-header field";
  }
  regular_seen_ = true;
  if (!validName(name)) return "invalid field name (uppercase or not a token)";
  if (connectionSpecific(name)) return "connection-specific field";
  if (name == "te") {
    if (value != "trailers") return "TE other than trailers";
    return nullptr;  // hop-by-hop: not forwarded
  }
  if (name == "content-length") {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
      return "invalid content-length";
    }
    if (has_content_length_ && n != content_length_) return "conflicting content-length";
    if (has_content_length_) return nullptr;  // the same value twice: keep one
    has_content_length_ = true;
    content_length_ = n;
  }
  http::HeaderSpan field;
  field.name = append(name);
  field.value = append(value);
  spans_.push_back(field);
  return nullptr;
}

const char* RequestHeadBuilder::finish(bool end_stream) {
  if (!has_method_ || !has_scheme_ || !has_path_) return "missing :method, :scheme or :path";
  std::string_view bytes = bytes_;
  std::string_view method = bytes.substr(method_.offset, method_.length);
  std::string_view path = bytes.substr(path_.offset, path_.length);
  if (path.empty()) return "empty :path";
  int m = methodFromName(method);
  if (m < 0) return "unknown method";
  if (m == HTTP_CONNECT) return "CONNECT is not supported";
  if (end_stream && has_content_length_ && content_length_ != 0) {
    return "content-length does not match the body";
  }
  // Host from :authority (RFC 9113 §8.3.1); a Host field that names another one is
  // malformed, one that names the same is dropped so that the upstream sees one Host.
  std::vector<http::HeaderSpan> fields;
  fields.reserve(spans_.size() + 1);
  size_t cookies = 0;
  for (const http::HeaderSpan& f : spans_) {
    if (bytes.substr(f.name.offset, f.name.length) == "cookie") ++cookies;
  }
  std::string_view authority = bytes.substr(authority_.offset, authority_.length);
  bool host_added = false;
  if (has_authority_ && !authority.empty()) {
    http::HeaderSpan host;
    host.name = {static_cast<uint32_t>(bytes_.size()), 4};
    bytes_.append("host");
    host.value = authority_;
    fields.push_back(host);
    host_added = true;
  }
  http::Span joined_cookie{};
  if (cookies > 1) {
    size_t start = bytes_.size();
    size_t total = 0;
    for (const http::HeaderSpan& f : spans_) total += f.value.length + 2;
    bytes_.reserve(start + total);  // the values are copied from bytes_ itself
    for (const http::HeaderSpan& f : spans_) {
      std::string_view b = bytes_;
      if (b.substr(f.name.offset, f.name.length) != "cookie") continue;
      if (bytes_.size() != start) bytes_.append("; ");
      bytes_.append(bytes_.data() + f.value.offset, f.value.length);
    }
    joined_cookie = {static_cast<uint32_t>(start), static_cast<uint32_t>(bytes_.size() - start)};
  }
  bool cookie_done = false;
  for (const http::HeaderSpan& f : spans_) {
    std::string_view b = bytes_;
    std::string_view name = b.substr(f.name.offset, f.name.length);
    if (name == "host" && host_added) {
      if (!http::equalsIgnoreCase(b.substr(f.value.offset, f.value.length),
                                  b.substr(authority_.offset, authority_.length))) {
        return "host differs from :authority";
      }
      continue;
    }
    if (name == "cookie" && cookies > 1) {
      if (cookie_done) continue;
      cookie_done = true;
      fields.push_back({f.name, joined_cookie});
      continue;
    }
    fields.push_back(f);
  }
  spans_ = std::move(fields);

  head_ = http::MessageHead{};
  head_.base = bytes_.data();
  head_.spans = spans_.data();
  head_.header_count = spans_.size();
  head_.url = std::string_view(bytes_).substr(path_.offset, path_.length);
  head_.method = m;
  // The exchange speaks HTTP/1.1 upstream: the head says 1.1 with keep-alive; the
  // access log asks the downstream for the protocol's name.
  head_.http_major = 1;
  head_.http_minor = 1;
  head_.keep_alive = true;
  head_.has_content_length = has_content_length_;
  head_.content_length = content_length_;
  // A body of unknown length goes upstream chunked (DATA frames delimit it here).
  head_.chunked = !end_stream && !has_content_length_;
  return nullptr;
}

void toResponseFields(const http::MessageHead& head, ResponseFields& out) {
  out.names_and_values.clear();
  out.fields.clear();
  int status = head.status;
  if (status < 100 || status > 999) status = 502;
  out.status[0] = static_cast<char>('0' + status / 100);
  out.status[1] = static_cast<char>('0' + status / 10 % 10);
  out.status[2] = static_cast<char>('0' + status % 10);
  http::ConnectionTokens tokens(head);
  for (size_t i = 0; i < head.header_count; ++i) {
    std::string_view name = head.name(i);
    if (http::isFixedHopByHop(name) && !http::equalsIgnoreCase(name, "trailer")) continue;
    if (tokens.contains(name) && !http::isProtectedFromConnection(name)) continue;
    ResponseFields::Field f;
    f.name_offset = static_cast<uint32_t>(out.names_and_values.size());
    f.name_length = static_cast<uint32_t>(name.size());
    for (char c : name) out.names_and_values.push_back(http::asciiLower(c));
    std::string_view value = head.value(i);
    f.value_offset = static_cast<uint32_t>(out.names_and_values.size());
    f.value_length = static_cast<uint32_t>(value.size());
    out.names_and_values.append(value);
    out.fields.push_back(f);
  }
}

void toRequestFields(const http::MessageHead& head, std::string_view scheme, RequestFields& out) {
  out.names_and_values.clear();
  out.fields.clear();
  auto add = [&out](std::string_view name, std::string_view value, bool lower) {
    ResponseFields::Field f;
    f.name_offset = static_cast<uint32_t>(out.names_and_values.size());
    f.name_length = static_cast<uint32_t>(name.size());
    if (lower) {
      for (char c : name) out.names_and_values.push_back(http::asciiLower(c));
    } else {
      out.names_and_values.append(name);
    }
    f.value_offset = static_cast<uint32_t>(out.names_and_values.size());
    f.value_length = static_cast<uint32_t>(value.size());
    out.names_and_values.append(value);
    out.fields.push_back(f);
  };
  std::string_view host;
  head.count("host", &host);
  add(":method", llhttp_method_name(static_cast<llhttp_method_t>(head.method)), false);
  add(":scheme", scheme, false);
  if (!host.empty()) add(":authority", http::trimOws(host), false);
  add(":path", head.url, false);
  http::ConnectionTokens tokens(head);
  bool te_trailers = false;
  bool grpc = false;
  for (size_t i = 0; i < head.header_count; ++i) {
    std::string_view name = head.name(i);
    if (http::equalsIgnoreCase(name, "host")) continue;
    if (http::equalsIgnoreCase(name, "content-type")) {
      grpc = http::startsWithIgnoreCase(http::trimOws(head.value(i)), "application/grpc");
    }
    if (http::equalsIgnoreCase(name, "te")) {
      std::string_view value = head.value(i);
      for (size_t at = 0; at < value.size();) {
        size_t comma = value.find(',', at);
        if (comma == std::string_view::npos) comma = value.size();
        std::string_view item = http::trimOws(value.substr(at, comma - at));
        if (http::equalsIgnoreCase(item.substr(0, item.find(';')), "trailers")) {
          if (!te_trailers) add("te", "trailers", false);
          te_trailers = true;
          break;
        }
        at = comma + 1;
      }
      continue;
    }
    if (http::isFixedHopByHop(name) && !http::equalsIgnoreCase(name, "trailer")) continue;
    if (tokens.contains(name) && !http::isProtectedFromConnection(name)) continue;
    if (head.chunked && http::equalsIgnoreCase(name, "content-length")) continue;
    add(name, head.value(i), true);
  }
  // gRPC servers require "te: trailers" (gRPC over HTTP/2); an HTTP/1 hop on the way
  // (the exchange's request head) drops TE as hop-by-hop, so it is restored here, as
  // Envoy and nginx's grpc_pass do.
  if (grpc && !te_trailers) add("te", "trailers", false);
}

}  // namespace gw::http2
