#include "gateway/proxy/messages.h"

#include <charconv>

#include "gateway/core/log.h"
#include "gateway/http/hop_by_hop.h"
#include "gateway/http/wire.h"
#include "gateway/proxy/grpc.h"

namespace gw::proxy {
namespace {

using http::appendField;
using http::equalsIgnoreCase;

void appendNumber(std::string& out, uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;
  out.append(buf, end);
}

// The live set/add edits of a filter chain, after the original fields.
void appendEdits(std::string& out, const filter::HeaderEdits* edits) {
  if (edits == nullptr) return;
  for (const filter::HeaderEdits::Edit& e : edits->edits()) {
    if (e.live && e.op != filter::HeaderEdits::Op::Remove) appendField(out, e.name, e.value);
  }
}

bool droppedByEdits(const filter::HeaderEdits* edits, std::string_view name) {
  return edits != nullptr && !edits->empty() && edits->dropsOriginal(name);
}

// Connection: close, or keep-alive for an HTTP/1.0 client whose connection is kept.
void appendConnection(std::string& out, bool close, bool keep_alive_header) {
  if (close) {
    out.append("Connection: close\r\n");
  } else if (keep_alive_header) {
    out.append("Connection: keep-alive\r\n");
  }
}

}  // namespace

bool parseRequestTarget(std::string_view url, bool is_options, RequestTarget& out) {
  out = RequestTarget{};
  if (url.empty()) return false;
  // A fragment never reaches a server (RFC 9112 §3.2, HAProxy refuses one), and a
  // backslash is no URI character: a backend that reads it as "/" would see another
  // path than the one routed ("/public\..\admin").
  if (url.find_first_of("#\\") != std::string_view::npos) return false;
  if (url.front() == '/') {
    out.path_and_query = url;
  } else if (url == "*") {
    if (!is_options) return false;
    out.path_and_query = url;
    out.path = url;
    return true;
  } else {
    // absolute-form: scheme "://" authority [ path-abempty ] [ "?" query ]
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return false;
    std::string_view scheme = url.substr(0, scheme_end);
    if (!equalsIgnoreCase(scheme, "http") && !equalsIgnoreCase(scheme, "https")) return false;
    std::string_view rest = url.substr(scheme_end + 3);
    size_t path_start = rest.find_first_of("/?");
    out.scheme = scheme;
    out.authority = rest.substr(0, path_start);
    // No userinfo (RFC 9110 §4.2.4) and no empty host.
    if (out.authority.empty() || out.authority.find('@') != std::string_view::npos) return false;
    if (path_start == std::string_view::npos) {
      out.path_and_query = "/";
    } else if (rest[path_start] == '?') {
      return false;  // "http://h?q" has no path; refuse rather than guess
    } else {
      out.path_and_query = rest.substr(path_start);
    }
  }
  size_t q = out.path_and_query.find('?');
  out.path = out.path_and_query.substr(0, q);
  return true;
}

bool sameAuthority(std::string_view scheme, std::string_view target_authority,
                   std::string_view host) {
  std::string_view default_port = equalsIgnoreCase(scheme, "https") ? ":443" : ":80";
  auto strip = [&](std::string_view a) {
    return http::endsWithIgnoreCase(a, default_port) ? a.substr(0, a.size() - default_port.size())
                                                     : a;
  };
  return equalsIgnoreCase(strip(target_authority), strip(host));
}

bool validHost(std::string_view host) {
  // Shape: an IP literal "[...]" or a reg-name / IPv4, then an optional ":" port of
  // digits only (empty is allowed, RFC 3986 §3.2.3).
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    if (!rest.empty()) port = rest.substr(1);
    if (host.substr(1, close - 1).find_first_of("[]") != std::string_view::npos) return false;
    host = host.substr(0, close + 1);
  } else {
    if (host.find_first_of("[]") != std::string_view::npos) return false;
    size_t colon = host.find(':');
    if (colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
    }
  }
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!ok) {
      switch (c) {
        case '-':
        case '.':
        case '_':
        case '~':
        case '!':
        case '$':
        case '&':
        case '\'':
        case '(':
        case ')':
        case '*':
        case '+':
        case ',':
        case ';':
        case '=':
        case ':':
        case '%':
        case '[':
        case ']':
          ok = true;
          break;
        default:
          break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

namespace {

bool isClientCertField(const UpstreamRequest& r, std::string_view name) {
  return (!r.cert_subject_header.empty() && equalsIgnoreCase(name, r.cert_subject_header)) ||
         (!r.cert_fingerprint_header.empty() && equalsIgnoreCase(name, r.cert_fingerprint_header));
}

void appendClientCertFields(const UpstreamRequest& r, std::string& out) {
  if (!r.cert_subject_header.empty() && !r.cert_subject.empty()) {
    appendField(out, r.cert_subject_header, r.cert_subject);
  }
  if (!r.cert_fingerprint_header.empty() && !r.cert_fingerprint.empty()) {
    appendField(out, r.cert_fingerprint_header, r.cert_fingerprint);
  }
}

}  // namespace

void writeUpstreamRequestHead(const UpstreamRequest& r, std::string& out) {
  const http::MessageHead& head = *r.head;
  const config::Forwarding& fwd = *r.forwarding;
  http::ConnectionTokens connection(head);

  out.append(r.method);
  out.push_back(' ');
  out.append(r.target);
  out.append(" HTTP/1.1\r\n", 11);

  bool have_xfp = false;
  bool have_xfh = false;
  std::string_view original_host;
  for (size_t i = 0; i < head.header_count; ++i) {
    std::string_view name = head.name(i);
    std::string_view value = head.value(i);
    if (http::isFixedHopByHop(name)) {
      if (r.upgrade && equalsIgnoreCase(name, "upgrade")) appendField(out, name, value);
      continue;
    }
    if (connection.contains(name) && !http::isProtectedFromConnection(name)) continue;
    // We answered 100-continue ourselves (or refused the expectation).
    if (equalsIgnoreCase(name, "expect")) continue;
    if (isClientCertField(r, name)) continue;
    if (droppedByEdits(r.edits, name)) continue;
    if (equalsIgnoreCase(name, "host")) {
      original_host = value;
      appendField(out, name, r.authority.empty() ? value : r.authority);
      continue;
    }
    if (name.size() > 12 && (name[0] == 'x' || name[0] == 'X') &&
        http::startsWithIgnoreCase(name, "x-forwarded-")) {
      std::string_view suffix = name.substr(12);
      if (equalsIgnoreCase(suffix, "for") && fwd.x_forwarded_for) continue;  // rebuilt below
      if (equalsIgnoreCase(suffix, "proto") && fwd.x_forwarded_proto) {
        if (!r.trusted_peer) continue;
        have_xfp = true;
      } else if (equalsIgnoreCase(suffix, "host") && fwd.x_forwarded_host) {
        if (!r.trusted_peer) continue;
        have_xfh = true;
      }
    }
    appendField(out, name, value);
  }
  appendEdits(out, r.edits);
  if (!r.authority.empty()) {
    if (original_host.empty()) appendField(out, "Host", r.authority);
    original_host = r.authority;
  } else if (original_host.empty() && !r.default_host.empty()) {
    // HTTP/1.1 requires Host upstream even when an HTTP/1.0 client sent none.
    appendField(out, "Host", r.default_host);
  }
  if (r.chunked_body) out.append("Transfer-Encoding: chunked\r\n");
  if (r.upgrade) out.append("Connection: upgrade\r\n");
  if (fwd.x_forwarded_for) {
    // One field: a trusted peer's values in their order, then the client's address.
    out.append("X-Forwarded-For: ");
    if (r.trusted_peer) {
      for (size_t i = 0; i < head.header_count; ++i) {
        if (!equalsIgnoreCase(head.name(i), "x-forwarded-for")) continue;
        std::string_view value = http::trimOws(head.value(i));
        if (value.empty()) continue;
        out.append(value);
        out.append(", ", 2);
      }
    }
    out.append(r.client_ip);
    out.append("\r\n", 2);
  }
  if (fwd.x_forwarded_proto && !have_xfp) appendField(out, "X-Forwarded-Proto", r.proto);
  if (fwd.x_forwarded_host && !have_xfh && !original_host.empty()) {
    appendField(out, "X-Forwarded-Host", original_host);
  }
  if (fwd.via) {
    out.append(head.http_minor == 0 ? "Via: 1.0 gateway\r\n" : "Via: 1.1 gateway\r\n");
  }
  appendClientCertFields(r, out);
  out.append("\r\n", 2);
}

void writeDownstreamResponseHead(const DownstreamResponse& r, std::string& out) {
  const http::MessageHead& head = *r.head;
  http::ConnectionTokens connection(head);
  out.append("HTTP/1.1 ", 9);
  appendNumber(out, static_cast<uint64_t>(head.status));
  out.push_back(' ');
  out.append(head.reason.empty() ? reasonPhrase(head.status) : head.reason);
  out.append("\r\n", 2);
  for (size_t i = 0; i < head.header_count; ++i) {
    std::string_view name = head.name(i);
    if (http::isFixedHopByHop(name)) {
      if (r.upgrade && equalsIgnoreCase(name, "upgrade")) appendField(out, name, head.value(i));
      continue;
    }
    if (connection.contains(name) && !http::isProtectedFromConnection(name)) continue;
    if (r.chunked_body && equalsIgnoreCase(name, "content-length")) continue;
    if (droppedByEdits(r.edits, name)) continue;
    appendField(out, name, head.value(i));
  }
  appendEdits(out, r.edits);
  if (!r.cookie_name.empty()) {
    out.append("Set-Cookie: ", 12);
    out.append(r.cookie_name);
    out.push_back('=');
    out.append(r.cookie_value);
    out.append(r.cookie_attributes);
    out.append("\r\n", 2);
  }
  if (r.chunked_body) out.append("Transfer-Encoding: chunked\r\n");
  if (r.upgrade) {
    out.append("Connection: upgrade\r\n");
  } else {
    appendConnection(out, r.close, r.keep_alive_header);
  }
  if (r.via) out.append(head.http_minor == 0 ? "Via: 1.0 gateway\r\n" : "Via: 1.1 gateway\r\n");
  out.append("\r\n", 2);
}

void writeLocalReply(int status, std::string_view message, bool close, bool head_request,
                     std::string& out) {
  writeLocalReply(status, message, close, head_request, LocalReplyExtras{}, out);
}

namespace {

void writeGrpcReply(int status, std::string_view message, bool close,
                    const LocalReplyExtras& extras, std::string& out) {
  out.append("HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\n");
  appendEdits(out, extras.headers);
  bool in_head = extras.grpc == GrpcReply::InHead;
  out.append(in_head ? "content-length: 0\r\n" : "transfer-encoding: chunked\r\n");
  if (close) out.append("connection: close\r\n");
  if (!in_head) out.append("\r\n0\r\n");
  out.append("grpc-status: ");
  appendNumber(out, static_cast<uint64_t>(grpc::statusFor(status)));
  out.append("\r\ngrpc-message: ");
  grpc::appendPercentEncoded(out, message);
  out.append("\r\n\r\n");
}

}  // namespace

void writeLocalReply(int status, std::string_view message, bool close, bool head_request,
                     const LocalReplyExtras& extras, std::string& out) {
  if (extras.grpc != GrpcReply::None) {
    writeGrpcReply(status, message, close, extras, out);
    return;
  }
  std::string body;
  if (extras.custom_body) {
    body.assign(extras.body);
  } else {
    body = "{\"error\":\"";
    log::appendJsonEscaped(body, message);
    body += "\",\"status\":";
    appendNumber(body, static_cast<uint64_t>(status));
    if (!extras.request_id.empty()) {
      body += ",\"request_id\":\"";
      log::appendJsonEscaped(body, extras.request_id);
      body += '"';
    }
    body += "}\n";
  }
  out.append("HTTP/1.1 ");
  appendNumber(out, static_cast<uint64_t>(status));
  out.push_back(' ');
  out.append(reasonPhrase(status));
  out.append("\r\n");
  if (!extras.custom_body) {
    out.append("Content-Type: application/json\r\n");
  } else if (!extras.content_type.empty()) {
    appendField(out, "Content-Type", extras.content_type);
  }
  // 1xx, 204 and 304 have no body and no Content-Length (RFC 9110 §8.6).
  bool bodiless = status < 200 || status == 204 || status == 304;
  if (!bodiless) {
    out.append("Content-Length: ");
    appendNumber(out, body.size());
    out.append("\r\n");
  }
  if (status == 503) out.append("Retry-After: 1\r\n");
  appendEdits(out, extras.headers);
  appendConnection(out, close, extras.keep_alive_header);
  out.append("\r\n");
  if (!head_request && !bodiless) out.append(body);
}

void writeRedirectReply(int status, std::string_view location, bool close, bool keep_alive_header,
                        std::string& out) {
  out.append("HTTP/1.1 ");
  appendNumber(out, static_cast<uint64_t>(status));
  out.push_back(' ');
  out.append(reasonPhrase(status));
  out.append("\r\nLocation: ");
  out.append(location);
  out.append("\r\nContent-Length: 0\r\n");
  appendConnection(out, close, keep_alive_header);
  out.append("\r\n");
}

void httpsLocation(std::string_view host, uint16_t port, std::string_view path_and_query,
                   std::string& out) {
  // Strip the port: after the last ':' unless that is inside an IPv6 literal.
  size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos) {
    host = host.substr(0, colon);
  }
  out.append("https://");
  out.append(host);
  if (port != 443) {
    out.push_back(':');
    appendNumber(out, port);
  }
  out.append(path_and_query == "*" ? std::string_view("/") : path_and_query);
}

bool forwardableTrailer(std::string_view name) {
  static constexpr std::string_view kDropped[] = {"content-length",
                                                  "content-encoding",
                                                  "content-type",
                                                  "content-range",
                                                  "host",
                                                  "authorization",
                                                  "proxy-authorization",
                                                  "set-cookie",
                                                  "cookie",
                                                  "expect",
                                                  "max-forwards",
                                                  "te",
                                                  "trailer",
                                                  "transfer-encoding",
                                                  "connection",
                                                  "keep-alive",
                                                  "proxy-connection",
                                                  "upgrade",
                                                  "cache-control",
                                                  "age",
                                                  "expires",
                                                  "date",
                                                  "location",
                                                  "retry-after",
                                                  "vary",
                                                  "warning",
                                                  "www-authenticate",
                                                  "proxy-authenticate",
                                                  "range",
                                                  "if-match",
                                                  "if-none-match",
                                                  "if-modified-since",
                                                  "if-unmodified-since",
                                                  "if-range"};
  for (std::string_view d : kDropped) {
    if (equalsIgnoreCase(name, d)) return false;
  }
  return true;
}

bool writeTrailerSection(const http::MessageHead& trailers, std::string& out) {
  size_t start = out.size();
  out.append("0\r\n", 3);
  bool any = false;
  for (size_t i = 0; i < trailers.header_count; ++i) {
    std::string_view name = trailers.name(i);
    if (!forwardableTrailer(name)) continue;
    appendField(out, name, trailers.value(i));
    any = true;
  }
  if (!any) {
    out.resize(start);
    return false;
  }
  out.append("\r\n", 2);
  return true;
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 410:
      return "Gone";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 505:
      return "HTTP Version Not Supported";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

}  // namespace gw::proxy
