#include "filters/rate_limit/redis_limit.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "filters/rate_limit/bucket_table.h"
#include "gateway/core/log.h"
#include "gateway/redis/client.h"

namespace gw::filters::rate_limit {
namespace {

// KEYS[1]: the counter's key without its window number. ARGV: limit, window (ms).
// Returns {allowed (0/1), remaining, ms until the window ends, ms until a request
// would be allowed (0 when allowed)}.
constexpr std::string_view kScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local index = math.floor(now / window)
local elapsed = now - index * window
local key = KEYS[1] .. ':' .. index
local prev = tonumber(redis.call('GET', KEYS[1] .. ':' .. (index - 1)) or '0')
local cur = tonumber(redis.call('GET', key) or '0')
local weighted = prev * (window - elapsed) / window
if weighted + cur + 1 > limit then
  local wait
  if cur + 1 <= limit then
    -- the previous window's share has to shrink to limit - cur - 1
    wait = math.ceil(window * (1 - (limit - cur - 1) / prev)) - elapsed
  else
    -- into the next window, until this one's share has shrunk to limit - 1
    wait = (window - elapsed) + math.ceil(window * (1 - (limit - 1) / cur))
  end
  if wait < 1 then wait = 1 end
  return {0, 0, window - elapsed, wait}
end
cur = redis.call('INCR', key)
if cur == 1 then redis.call('PEXPIRE', key, window * 2) end
local remaining = math.floor(limit - weighted - cur)
if remaining < 0 then remaining = 0 end
return {1, remaining, window - elapsed, 0}
)lua";

std::string_view number(filter::Arena& arena, uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;
  return arena.copy(std::string_view(buf, static_cast<size_t>(end - buf)));
}

uint64_t ceilSeconds(uint64_t ms) { return (ms + 999) / 1000; }

struct Shared {
  RedisLimitConfig config;
  std::string limit_text;
  std::string window_text;
  std::string resource_key;  // per worker: one client per Redis address
  std::string sha;           // the script's, for EVALSHA
};

class RedisLimit final : public filter::Filter, public redis::Waiter {
 public:
  explicit RedisLimit(const Shared& shared) : shared_(shared) {}

  filter::Status onRequestHeaders(filter::Context& ctx) override {
    const RedisLimitConfig& config = shared_.config;
    std::string_view key = limitKey(ctx, config.kind, config.header);
    if (ctx.worker == nullptr) return failed(ctx);
    client_ = ctx.worker->get<redis::Client>(shared_.resource_key, [&] {
      redis::ClientOptions options;
      options.host = config.host;
      options.port = config.port;
      options.timeout_ms = config.timeout_ms;
      auto client = std::make_unique<redis::Client>(ctx.worker->loop(), std::move(options));
      // Once per worker and address, not per request: every limiter on this client
      // runs the same script.
      client->ensureScript(shared_.sha, kScript);
      return client;
    });
    if (client_ == nullptr) return failed(ctx);
    // The key: the prefix and a hash of the value, so any header value makes a short,
    // safe Redis key.
    char key_buf[128];
    size_t prefix = std::min(shared_.config.prefix.size(), sizeof key_buf - 20);
    std::memcpy(key_buf, shared_.config.prefix.data(), prefix);
    auto [end, ec] =
        std::to_chars(key_buf + prefix, key_buf + sizeof key_buf, BucketTable::hash(key), 16);
    (void)ec;
    const char* argv[] = {"EVALSHA", shared_.sha.data(),        "1",
                          key_buf,   shared_.limit_text.data(), shared_.window_text.data()};
    size_t lengths[] = {7,
                        shared_.sha.size(),
                        1,
                        static_cast<size_t>(end - key_buf),
                        shared_.limit_text.size(),
                        shared_.window_text.size()};
    call_ = client_->call(this, 6, argv, lengths);
    if (call_ == 0) return failed(ctx);
    ctx_ = &ctx;
    return filter::Status::Pause;
  }

  void onReply(const redisReply* reply) override {
    call_ = 0;
    filter::Context& ctx = *ctx_;
    filter::Status status;
    if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 4 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER) {
      decided_ = true;
      remaining_ = static_cast<uint64_t>(std::max<long long>(0, reply->element[1]->integer));
      reset_ms_ = static_cast<uint64_t>(std::max<long long>(0, reply->element[2]->integer));
      wait_ms_ = reply->element[3]->integer;
      status = reply->element[0]->integer == 1 ? filter::Status::Continue : limited(ctx);
    } else {
      if (reply != nullptr && reply->type == REDIS_REPLY_ERROR) {
        log::warn("rate_limit: redis answered with an error",
                  {log::str("error", std::string(reply->str, reply->len))});
      }
      status = failed(ctx);
    }
    ctx.resume(status);  // last: it may end the request and this filter
  }

  void onResponseHeaders(filter::Context& ctx) override {
    if (decided_) addHeaders(ctx);
  }

  void onDestroy(filter::Context&) override {
    if (call_ != 0) client_->cancel(call_);
    call_ = 0;
  }

 private:
  filter::Status limited(filter::Context& ctx) {
    uint64_t wait_ms = static_cast<uint64_t>(std::max<long long>(1, lastWait()));
    ctx.response_headers.set("Retry-After", number(ctx.arena(), ceilSeconds(wait_ms)));
    addHeaders(ctx);  // a filter that answers does not see its own reply's head
    ctx.reply.status = 429;
    ctx.reply.message = "rate limit exceeded";
    return filter::Status::Respond;
  }

  // Redis could not decide: the configured failure mode.
  filter::Status failed(filter::Context& ctx) {
    if (shared_.config.fail_open) return filter::Status::Continue;
    ctx.response_headers.set("Retry-After", "1");
    ctx.reply.status = 503;
    ctx.reply.message = "rate limit service unavailable";
    return filter::Status::Respond;
  }

  long long lastWait() const { return wait_ms_; }

  void addHeaders(filter::Context& ctx) {
    ctx.response_headers.set("RateLimit-Limit", shared_.limit_text);
    ctx.response_headers.set("RateLimit-Remaining", number(ctx.arena(), remaining_));
    ctx.response_headers.set("RateLimit-Reset", number(ctx.arena(), ceilSeconds(reset_ms_)));
  }

  const Shared& shared_;
  redis::Client* client_ = nullptr;
  filter::Context* ctx_ = nullptr;
  uint64_t call_ = 0;
  bool decided_ = false;
  uint64_t remaining_ = 0;
  uint64_t reset_ms_ = 0;
  long long wait_ms_ = 0;
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(Shared shared) : shared_(std::move(shared)) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<RedisLimit>(shared_);
  }

 private:
  Shared shared_;
};

}  // namespace

std::string_view redisLimitScript() { return kScript; }

std::shared_ptr<const filter::FilterFactory> makeRedisLimit(RedisLimitConfig config) {
  Shared shared;
  shared.limit_text = std::to_string(config.limit);
  shared.window_text = std::to_string(config.window_ms);
  shared.resource_key = "redis:" + config.host + ":" + std::to_string(config.port) + ":" +
                        std::to_string(config.timeout_ms);
  shared.sha = redis::Client::scriptSha(kScript);
  shared.config = std::move(config);
  return std::make_shared<Factory>(std::move(shared));
}

}  // namespace gw::filters::rate_limit
