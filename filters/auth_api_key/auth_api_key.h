#pragma once
// auth_api_key: the request must carry one of the configured API keys, in a header
// (default X-Api-Key) or, when `query` is set, a query parameter. Keys are compared as
// SHA-256 digests in constant time, against every key (no early exit). Upstream gets the
// key's name in `name_header` (default X-Api-Key-Name; a client's own value is
// replaced), never the key: the key header (and query parameter) is removed.
// Missing or unknown key: 401 with WWW-Authenticate.
//
//   { type = "auth_api_key", keys = { alice = "k-..." }, key_file = "keys.txt",
//     header = "X-Api-Key", query = "api_key", name_header = "X-Api-Key-Name" }
//
// key_file: one "NAME KEY" per line, "#" comments; a relative path is relative to the
// config file; read at every config load (so a reload picks up changes).

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/filter/registry.h"

namespace gw::filters::auth_api_key {

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table);
std::vector<std::string_view> keys();

struct KeySet {
  struct Entry {
    std::string name;
    std::array<unsigned char, 32> digest;
  };
  std::vector<Entry> entries;
  void add(std::string name, std::string_view key);
  // The name of the matching key, or null. Time depends on the key count only.
  const std::string* match(std::string_view presented) const;
};

// The value of query parameter `name` in "/p?a=1&b=2" (raw, not percent-decoded), and
// the target without it.
bool takeQueryParam(std::string_view target, std::string_view name, std::string_view& value,
                    std::string& without);

}  // namespace gw::filters::auth_api_key
