#include "gateway/proxy/grpc.h"

#include "gateway/http/header.h"

namespace gw::proxy::grpc {

bool isGrpcContentType(std::string_view content_type) {
  content_type = http::trimOws(content_type);
  constexpr std::string_view kType = "application/grpc";
  if (content_type.size() < kType.size() ||
      !http::equalsIgnoreCase(content_type.substr(0, kType.size()), kType)) {
    return false;
  }
  if (content_type.size() == kType.size()) return true;
  char next = content_type[kType.size()];
  return next == '+' || next == ';';
}

std::optional<uint64_t> parseTimeout(std::string_view value) {
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  uint64_t n = 0;
  for (char c : value.substr(0, value.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  switch (value.back()) {
    case 'H':
      return n * 3'600'000;
    case 'M':
      return n * 60'000;
    case 'S':
      return n * 1000;
    case 'm':
      return n;
    case 'u':
      return (n + 999) / 1000;
    case 'n':
      return (n + 999'999) / 1'000'000;
    default:
      return std::nullopt;
  }
}

int statusFor(int http_status) {
  switch (http_status) {
    case 400:
      return kInternal;
    case 401:
      return kUnauthenticated;
    case 403:
      return kPermissionDenied;
    case 404:
      return kUnimplemented;
    case 413:
    case 429:
      return kResourceExhausted;
    case 502:
    case 503:
      return kUnavailable;
    case 504:
      return kDeadlineExceeded;
    default:
      // The gRPC HTTP-to-status table: other errors are UNKNOWN (5xx: UNAVAILABLE is
      // only for the statuses above, which say the upstream could not be reached).
      return http_status >= 200 && http_status < 300 ? kOk : kUnknown;
  }
}

void appendPercentEncoded(std::string& out, std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : message) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
}

}  // namespace gw::proxy::grpc
