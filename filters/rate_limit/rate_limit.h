#pragma once
// rate_limit: token buckets for the whole process (shared by every worker without a
// lock, see bucket_table.h), keyed by the client address, a request header, or the
// route. Over the limit: 429 with Retry-After; every response carries
// RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset.
//
//   { type = "rate_limit", rate = "100/s", burst = 200, key = "client_ip", max_keys = 65536 }
//   key = "client_ip" | "route" | "header:X-Api-Key" (requests without the header share
//   one bucket)
//
// The buckets are runtime state, not config: a reload that keeps the filter in the same
// place with the same settings keeps its buckets.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/filter/registry.h"

namespace gw::filters::rate_limit {

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table);
std::vector<std::string_view> keys();

// "100/s", "30/m", "1000/h" -> microseconds per request and the count per unit.
bool parseRate(std::string_view text, uint64_t& interval_us, uint64_t& count);

}  // namespace gw::filters::rate_limit
