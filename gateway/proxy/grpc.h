#pragma once
// gRPC over the proxy (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
// recognising a gRPC request, the grpc-timeout header, and the "trailers-only" form of
// the proxy's own replies. Pure functions: no I/O, no state.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gw::proxy::grpc {

// gRPC status codes used by the proxy's local replies.
enum Status : int {
  kOk = 0,
  kDeadlineExceeded = 4,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kUnauthenticated = 16,
  kUnknown = 2,
};

// application/grpc, application/grpc+proto, application/grpc;charset=... (the type is
// compared case-insensitively; "application/grpc-web" is not gRPC).
bool isGrpcContentType(std::string_view content_type);

// The grpc-timeout value in milliseconds (rounded up, so 1n is 1 ms): 1 to 8 ASCII digits
// then one unit of H, M, S, m, u, n. Anything else is malformed: nullopt, and the caller
// ignores the header, as gRPC's own servers and Envoy do.
std::optional<uint64_t> parseTimeout(std::string_view value);

// The gRPC status a local reply with this HTTP status becomes.
int statusFor(int http_status);

// Appends `message` percent-encoded for grpc-message: bytes outside 0x20-0x7e and '%'
// become %XX (upper-case hex).
void appendPercentEncoded(std::string& out, std::string_view message);

}  // namespace gw::proxy::grpc
