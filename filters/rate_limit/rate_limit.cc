#include "filters/rate_limit/rate_limit.h"

#include <charconv>
#include <chrono>
#include <map>
#include <mutex>

#include "filters/rate_limit/bucket_table.h"
#include "filters/rate_limit/redis_limit.h"
#include "gateway/filter/fields.h"
#include "gateway/net/address.h"

namespace gw::filters::rate_limit {
namespace {

struct Config {
  KeyKind kind = KeyKind::ClientIp;
  std::string header;
  std::string limit_text;  // RateLimit-Limit value (the burst)
  std::shared_ptr<BucketTable> table;
};

uint64_t nowUs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::string_view number(filter::Arena& arena, uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;
  return arena.copy(std::string_view(buf, static_cast<size_t>(end - buf)));
}

uint64_t ceilSeconds(uint64_t us) { return (us + 999'999) / 1'000'000; }

class RateLimit final : public filter::Filter {
 public:
  explicit RateLimit(const Config& config) : config_(config) {}

  filter::Status onRequestHeaders(filter::Context& ctx) override {
    std::string_view key = limitKey(ctx, config_.kind, config_.header);
    decision_ = config_.table->take(BucketTable::hash(key), nowUs());
    if (decision_.allowed) return filter::Status::Continue;
    uint64_t retry = ceilSeconds(decision_.retry_after_us);
    ctx.response_headers.set("Retry-After", number(ctx.arena(), retry < 1 ? 1 : retry));
    addHeaders(ctx);
    ctx.reply.status = 429;
    ctx.reply.message = "rate limit exceeded";
    return filter::Status::Respond;
  }

  void onResponseHeaders(filter::Context& ctx) override { addHeaders(ctx); }

 private:
  void addHeaders(filter::Context& ctx) {
    ctx.response_headers.set("RateLimit-Limit", config_.limit_text);
    ctx.response_headers.set("RateLimit-Remaining", number(ctx.arena(), decision_.remaining));
    ctx.response_headers.set("RateLimit-Reset",
                             number(ctx.arena(), ceilSeconds(decision_.reset_us)));
  }

  const Config& config_;
  BucketTable::Decision decision_;
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(Config config) : config_(std::move(config)) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<RateLimit>(config_);
  }

 private:
  Config config_;
};

// Tables by identity (scope + settings), so a reload that keeps a filter keeps its
// buckets. Touched only at config load (control thread, or main before it); the lock
// never meets the request path.
std::shared_ptr<BucketTable> tableFor(const std::string& identity, size_t capacity,
                                      uint64_t interval_us, uint64_t burst) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<BucketTable>> tables;
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = tables.begin(); it != tables.end();) {
    it = it->second.expired() ? tables.erase(it) : std::next(it);
  }
  std::weak_ptr<BucketTable>& slot = tables[identity];
  if (auto table = slot.lock()) return table;
  auto table = std::make_shared<BucketTable>(capacity, interval_us, burst);
  slot = table;
  return table;
}

}  // namespace

bool parseRate(std::string_view text, uint64_t& interval_us, uint64_t& count) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + slash, n);
  if (ec != std::errc() || end != text.data() + slash || n == 0 || n > 1'000'000) return false;
  std::string_view unit = text.substr(slash + 1);
  uint64_t per_us = unit == "s"   ? 1'000'000ull
                    : unit == "m" ? 60'000'000ull
                    : unit == "h" ? 3'600'000'000ull
                                  : 0;
  if (per_us == 0) return false;
  interval_us = per_us / n;
  if (interval_us == 0) return false;
  count = n;
  return true;
}

std::vector<std::string_view> keys() {
  return {"rate",  "burst",         "key",          "max_keys",
          "redis", "redis_timeout", "failure_mode", "redis_prefix"};
}

namespace {

// The global form (`redis = ...`), after `rate` and `key` were read.
std::shared_ptr<const filter::FilterFactory> parseRedis(filter::ConfigTable& table,
                                                        RedisLimitConfig config,
                                                        std::string_view rate, uint64_t count) {
  std::string address;
  table.getString("redis", address);
  auto host_port = net::splitHostPort(address);
  if (!host_port || !net::parseIpPort(host_port->host, host_port->port)) {
    table.error(*table.find("redis"),
                "\"redis\" must be an IP address and port like \"127.0.0.1:6379\" (got " +
                    filter::quote(address) + "); names are not resolved on a worker");
  } else {
    config.host = host_port->host;
    config.port = host_port->port;
  }
  for (std::string_view local_only : {"burst", "max_keys"}) {
    if (const toml::node* n = table.find(local_only)) {
      table.error(*n, "\"" + std::string(local_only) +
                          "\" applies to the local rate limit only; with \"redis\" the limit is "
                          "\"rate\" per sliding window of its unit");
    }
  }
  table.getDuration("redis_timeout", 1, 10'000, config.timeout_ms);
  std::string mode = "open";
  if (table.getString("failure_mode", mode) && mode != "open" && mode != "closed") {
    table.error(*table.find("failure_mode"),
                "\"failure_mode\" must be \"open\" (let requests through when Redis cannot "
                "answer) or \"closed\" (answer 503) (got " +
                    filter::quote(mode) + ")");
  }
  config.fail_open = mode == "open";
  config.prefix = "gw:rl:" + table.scope() + ":";
  if (table.getString("redis_prefix", config.prefix) && config.prefix.size() > 100) {
    table.error(*table.find("redis_prefix"), "\"redis_prefix\" is longer than 100 bytes");
  }
  if (table.errorCount() != 0) return nullptr;
  config.limit = count;
  // The rate's unit (parseRate accepted it): s, m or h.
  config.window_ms = rate.back() == 's' ? 1'000 : rate.back() == 'm' ? 60'000 : 3'600'000;
  return makeRedisLimit(std::move(config));
}

}  // namespace

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table) {
  Config config;
  std::string rate;
  uint64_t interval_us = 0;
  uint64_t count = 0;
  if (!table.getString("rate", rate)) {
    if (table.find("rate") == nullptr) table.errorHere("\"rate\" is required, e.g. \"100/s\"");
    return nullptr;
  }
  if (!parseRate(rate, interval_us, count)) {
    table.error(*table.find("rate"),
                "\"rate\" must be a count per unit like \"100/s\", \"30/m\" or \"1000/h\" "
                "(1 to 1000000)");
    return nullptr;
  }
  std::string key = "client_ip";
  if (table.getString("key", key)) {
    if (key == "client_ip") {
      config.kind = KeyKind::ClientIp;
    } else if (key == "route") {
      config.kind = KeyKind::Route;
    } else if (key.rfind("header:", 0) == 0 && filter::isToken(key.substr(7))) {
      config.kind = KeyKind::Header;
      config.header = key.substr(7);
    } else {
      table.error(*table.find("key"),
                  "\"key\" must be \"client_ip\", \"route\" or \"header:NAME\" (got " +
                      filter::quote(key) + ")");
    }
  }
  if (table.find("redis") != nullptr) {
    RedisLimitConfig redis;
    redis.kind = config.kind;
    redis.header = config.header;
    return parseRedis(table, std::move(redis), rate, count);
  }
  int64_t burst = static_cast<int64_t>(count);
  table.getInteger("burst", 1, 1'000'000, burst);
  int64_t max_keys = 65536;
  table.getInteger("max_keys", 1, 16 * 1024 * 1024, max_keys);
  if (table.errorCount() != 0) return nullptr;
  std::string identity = table.scope() + "|" + key + "|" + std::to_string(interval_us) + "|" +
                         std::to_string(burst) + "|" + std::to_string(max_keys);
  config.table =
      tableFor(identity, static_cast<size_t>(max_keys), interval_us, static_cast<uint64_t>(burst));
  config.limit_text = std::to_string(burst);
  return std::make_shared<Factory>(std::move(config));
}

}  // namespace gw::filters::rate_limit
