#pragma once
// rate_limit with `redis = "ADDR:PORT"`: the same limit shared by every gateway
// instance that points at one Redis server. Each request makes one round trip: a Lua
// script (EVALSHA) that keeps a sliding-window counter per key, on the server's clock,
// so instances agree without synchronised clocks. The request's filter chain pauses
// for the answer (gateway/filter/filter.h, Status::Pause).
//
//   { type = "rate_limit", rate = "100/s", key = "client_ip",
//     redis = "127.0.0.1:6379", redis_timeout = "50ms", failure_mode = "open",
//     redis_prefix = "gw:rl:" }
//
// `rate` is `count/unit`: at most `count` requests in any window of one unit (the
// sliding-window approximation: the previous window's count weighted by how much of it
// still overlaps). When Redis does not answer within `redis_timeout`, refuses, or is
// down, `failure_mode` decides: "open" lets the request through (the default: the
// limit is a guard, not a dependency), "closed" answers 503 with Retry-After.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/filter/registry.h"

namespace gw::filters::rate_limit {

enum class KeyKind { ClientIp, Route, Header };

// What a request is counted under: its client address, its route, or a header's value
// (empty when the header is absent: such requests share one counter).
inline std::string_view limitKey(const filter::Context& ctx, KeyKind kind,
                                 std::string_view header) {
  switch (kind) {
    case KeyKind::ClientIp:
      return ctx.request.client_ip;
    case KeyKind::Route:
      return ctx.request.route;
    case KeyKind::Header: {
      std::string_view value;
      ctx.request_headers.find(ctx.request.head, header, value);
      return value;
    }
  }
  return {};
}

struct RedisLimitConfig {
  KeyKind kind = KeyKind::ClientIp;
  std::string header;
  std::string host;  // IP literal
  uint16_t port = 6379;
  uint64_t timeout_ms = 50;
  bool fail_open = true;
  uint64_t limit = 0;      // requests per window
  uint64_t window_ms = 0;  // the rate's unit
  std::string prefix;      // Redis key prefix, ends with ':'
};

std::shared_ptr<const filter::FilterFactory> makeRedisLimit(RedisLimitConfig config);

// The Lua script (for tests that run it against a real server).
std::string_view redisLimitScript();

}  // namespace gw::filters::rate_limit
