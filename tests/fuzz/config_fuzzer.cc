// libFuzzer target: the config loader. Arbitrary TOML text goes through
// gw::config::loadConfigString, the function loadConfigFile (what the gateway's --config
// uses) calls with the file's bytes. It must never crash: it returns a snapshot or
// errors, never both and never neither. The filter registry is the gateway's own
// (filters/builtin.cc), so every filter's config parser is reached.
//
// Hostnames: the loader resolves endpoint hosts with getaddrinfo. A fuzzer would send
// thousands of DNS queries for made-up names, so this binary interposes getaddrinfo and
// only resolves numeric addresses and "localhost" (no network, deterministic).
#include <dlfcn.h>
#include <netdb.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "filters/builtin.h"
#include "gateway/config/loader.h"
#include "gateway/filter/registry.h"

extern "C" int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                           struct addrinfo** res) {
  using Real = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
  static Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "getaddrinfo"));
  if (real == nullptr) return EAI_FAIL;
  struct addrinfo numeric {};
  if (hints != nullptr) numeric = *hints;
  numeric.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
  if (node != nullptr && std::strcmp(node, "localhost") == 0) node = "127.0.0.1";
  return real(node, service, &numeric, res);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool registered = [] {
    gw::filters::registerBuiltins(gw::filter::Registry::global());
    return true;
  }();
  (void)registered;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // Relative includes resolve next to this name: a directory that does not exist.
  gw::config::LoadResult result =
      gw::config::loadConfigString(text, "/nonexistent-fuzz-dir/gateway.toml");
  if (result.ok() == !result.errors.empty()) {
    std::fprintf(stderr, "loader returned %s\n",
                 result.ok() ? "a snapshot and errors" : "neither a snapshot nor errors");
    std::abort();
  }
  for (const auto& error : result.errors) {
    if (error.reason.empty()) std::abort();
    (void)error.toString();
  }
  // The unit parsers see the first line too (they read values such as "10MiB", "5s").
  std::string_view first = text.substr(0, text.find('\n'));
  uint64_t out = 0;
  (void)gw::config::parseDuration(first, out);
  (void)gw::config::parseSize(first, out);
  return 0;
}
