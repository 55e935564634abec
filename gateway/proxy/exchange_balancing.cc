// The exchange's side of load balancing and resilience: choosing an endpoint (circuit
// breakers, health, the pool's policy and hash key), reporting try outcomes to passive
// outlier detection, and retries (policy, budget, backoff, another endpoint). Kept apart
// from exchange.cc, which calls in at the few points where a try starts or fails.
#include <uv.h>

#include <algorithm>

#include "gateway/core/log.h"
#include "gateway/http/header.h"
#include "gateway/proxy/downstream_session.h"
#include "gateway/proxy/exchange.h"

namespace gw::proxy {
namespace {

// RFC 9110 §9.2.2: repeating these has the same effect as sending them once.
bool idempotentMethod(int method) {
  switch (method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_OPTIONS:
    case HTTP_TRACE:
    case HTTP_PUT:
    case HTTP_DELETE:
      return true;
    default:
      return false;
  }
}

// The value of cookie `name` in a Cookie field ("a=1; b=2").
bool findCookie(std::string_view header, std::string_view name, std::string_view& out) {
  while (!header.empty()) {
    size_t end = header.find(';');
    std::string_view pair = http::trimOws(header.substr(0, end));
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      out = pair.substr(eq + 1);
      return true;
    }
    if (end == std::string_view::npos) break;
    header.remove_prefix(end + 1);
  }
  return false;
}

// The value of cookie `name` in any Cookie field of the request (HTTP/2 gateways may
// split cookies over several fields; RFC 9113 §8.2.3).
bool findCookie(const http::MessageHead& head, std::string_view name, std::string_view& out) {
  for (size_t i = 0; i < head.header_count; ++i) {
    if (http::equalsIgnoreCase(head.name(i), "cookie") && findCookie(head.value(i), name, out)) {
      return true;
    }
  }
  return false;
}

const char* failureName(int failure) {
  static const char* const kNames[] = {"connect_failure", "reset", "timeout", "status"};
  return kNames[failure];
}

}  // namespace

bool Exchange::chooseEndpoint(const http::MessageHead& head, std::string_view path) {
  idempotent_ = idempotentMethod(head.method);
  pool_ = service_ != nullptr ? ctx_.upstreams().choosePool(*service_, ctx_.random(), pool_slot_)
                              : nullptr;
  if (pool_ == nullptr || pool_->members().empty()) {
    sendLocalReply(503, "no endpoint available", false);
    return false;
  }
  if (!pool_->admitRequest()) {
    sendLocalReply(503, "circuit breaker open: too many requests", false);
    return false;
  }
  pick_ = upstream::PickRequest{};
  if (service_->lb == "consistent_hash") {
    const config::HashKey& key = pool_->settings().hash_key;
    std::string_view value;
    switch (key.source) {
      case config::HashKey::Source::ClientIp:
        value = peerIp();
        pick_.has_hash = true;
        break;
      case config::HashKey::Source::Path:
        value = path;
        pick_.has_hash = true;
        break;
      case config::HashKey::Source::Header:
        pick_.has_hash = head.count(key.name, &value) > 0;
        break;
      case config::HashKey::Source::Cookie:
        pick_.has_hash = findCookie(head, key.name, value);
        break;
    }
    if (pick_.has_hash) pick_.hash = upstream::hashKey(value);
  }
  sticky_endpoint_ = nullptr;
  const config::Sticky& sticky = pool_->settings().sticky;
  std::string_view sticky_id;
  if (sticky.enabled && findCookie(head, sticky.cookie, sticky_id)) {
    // An id no member has (forged, stale, another pool's) is simply not a preference.
    pick_.sticky = pool_->stickyMember(sticky_id);
    if (pick_.sticky >= 0) {
      sticky_endpoint_ = pool_->members()[static_cast<size_t>(pick_.sticky)].endpoint;
    }
  }
  int index = pool_->pick(pick_);
  pick_.sticky = -1;  // retries go elsewhere by the policy
  if (index < 0) {
    sendLocalReply(503, "no healthy endpoint", false);
    return false;
  }
  pool_->active_requests++;
  counted_request_ = true;
  useMember(index);
  return true;
}

void Exchange::useMember(int index) {
  if (counted_endpoint_) endpoint_->active_requests--;
  endpoint_ = pool_->members()[static_cast<size_t>(index)].endpoint;
  endpoint_->active_requests++;
  counted_endpoint_ = true;
  try_started_ms_ = uv_now(ctx_.loop().loop());
  if (index < 64) pick_.tried |= uint64_t{1} << index;
}

void Exchange::noteTryFailure() {
  if (pool_ != nullptr && endpoint_ != nullptr) pool_->reportFailure(*endpoint_);
}

uint64_t Exchange::tryTimeoutMs() const {
  uint64_t per_try = pool_ != nullptr ? pool_->settings().retry.per_try_timeout_ms : 0;
  return per_try != 0 ? per_try : service_->upstream_response_timeout_ms;
}

bool Exchange::retryAllowed(TryFailure failure, int status) {
  if (pool_ == nullptr || service_ == nullptr || endpoint_ == nullptr) return false;
  const config::Retry& r = pool_->settings().retry;
  if (retries_done_ >= r.attempts || upgrade_requested_) return false;
  switch (failure) {
    case TryFailure::ConnectFailure:
      if (!r.on_connect_failure) return false;
      break;
    case TryFailure::Reset:
    case TryFailure::Timeout:
      if (!r.on_reset) return false;
      break;
    case TryFailure::Status: {
      bool listed = false;
      for (uint32_t s : r.on_status) listed = listed || static_cast<int>(s) == status;
      if (!listed) return false;
      break;
    }
  }
  // An upstream that never accepted the connection cannot have acted on the request;
  // any other failure may have, so only idempotent methods (or an explicit opt-in).
  if (failure != TryFailure::ConnectFailure && !idempotent_ && !r.non_idempotent) return false;
  // Body bytes already went to (or arrived for) the failed try and are not kept.
  if (request_body_sent_ || body_received_ > 0) return false;
  if (!counted_retry_ && !pool_->admitRetry()) {
    log::warn("retry refused by the retry budget",
              {log::str("pool", pool_->name()), log::str("endpoint", endpoint_->key()),
               log::str("reason", failureName(static_cast<int>(failure)))});
    return false;
  }
  return true;
}

bool Exchange::retryAfter(TryFailure failure) { return retryAllowed(failure) && startRetry(); }

bool Exchange::startRetry() {
  retries_done_++;
  if (!counted_retry_) {
    pool_->active_retries++;
    counted_retry_ = true;
  }
  response_parser_.reset();
  response_bytes_ = 0;
  std::string previous = endpoint_->key();
  int index = pool_->pick(pick_);
  if (index < 0) return false;
  useMember(index);
  ctx_.stats().upstream_retries.add();
  if (ctx_.upstreams().stats() != nullptr) ctx_.upstreams().stats()->retries.add();
  const config::Retry& r = pool_->settings().retry;
  uint64_t cap = r.backoff_base_ms << std::min<uint32_t>(retries_done_ - 1, 20);
  cap = std::min(cap, r.backoff_max_ms);
  // Full jitter: tries of many clients spread out instead of arriving in waves.
  upstream::Rng rng(uv_hrtime() ^ reinterpret_cast<uintptr_t>(this));
  uint64_t delay = cap == 0 ? 0 : rng.below(cap + 1);
  log::info("retrying upstream request",
            {log::str("pool", pool_->name()), log::str("from", previous),
             log::str("to", endpoint_->key()), log::num("attempt", retries_done_),
             log::num("backoff_ms", static_cast<long long>(delay))});
  if (delay == 0) {
    startTry();
  } else {
    armTimer(TimerKind::Backoff, delay);
  }
  return true;
}

void Exchange::startTry() {
  try_started_ms_ = uv_now(ctx_.loop().loop());
  markUpstreamStart();
  conn_ = endpoint_->takeIdle(this);
  if (conn_ == nullptr) {
    connectUpstream();
    return;
  }
  connected_ = true;
  upstream_write_failed_ = false;
  conn_->transport().stage(head_out_.data(), head_out_.size());
  if (!conn_->transport().flush()) {
    onUpstreamWriteError(UV_EPIPE);
    return;
  }
  if (request_done_) armResponseTimer();
}

void Exchange::stickyCookie(DownstreamResponse& response) const {
  if (pool_ == nullptr || endpoint_ == nullptr || endpoint_ == sticky_endpoint_) return;
  const config::Sticky& sticky = pool_->settings().sticky;
  if (!sticky.enabled) return;
  for (const upstream::PoolRuntime::Member& m : pool_->members()) {
    if (m.endpoint == endpoint_) {
      response.cookie_name = sticky.cookie;
      response.cookie_value = m.sticky_id;
      response.cookie_attributes = pool_->stickyAttributes();
      return;
    }
  }
}

void Exchange::releaseBalancing() {
  if (counted_endpoint_ && endpoint_ != nullptr) endpoint_->active_requests--;
  if (pool_ != nullptr) {
    if (counted_request_) pool_->active_requests--;
    if (counted_retry_) pool_->active_retries--;
    if (counted_pending_) pool_->pending--;
  }
  pool_ = nullptr;
  sticky_endpoint_ = nullptr;
  pick_ = upstream::PickRequest{};
  retries_done_ = 0;
  try_started_ms_ = 0;
  counted_endpoint_ = counted_request_ = counted_retry_ = counted_pending_ = false;
  idempotent_ = retry_on_head_ = false;
  retry_status_ = 0;
}

}  // namespace gw::proxy
