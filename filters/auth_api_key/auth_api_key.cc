#include "filters/auth_api_key/auth_api_key.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>

#include "gateway/filter/fields.h"
#include "gateway/filter/unauthorized.h"

namespace gw::filters::auth_api_key {
namespace {

constexpr size_t kMaxKeyLength = 4096;

struct Config {
  KeySet keys;
  std::string header = "X-Api-Key";
  std::string query;
  std::string name_header = "X-Api-Key-Name";
};

class AuthApiKey final : public filter::Filter {
 public:
  explicit AuthApiKey(const Config& config) : config_(config) {}

  filter::Status onRequestHeaders(filter::Context& ctx) override {
    std::string_view key;
    bool from_query = false;
    if (!ctx.request_headers.find(ctx.request.head, config_.header, key) &&
        !config_.query.empty()) {
      std::string without;
      from_query = takeQueryParam(ctx.upstream_target, config_.query, key, without);
      if (from_query) ctx.upstream_target = ctx.arena().copy(without);
    }
    if (key.empty()) return refuse(ctx, "missing API key");
    const std::string* name = key.size() <= kMaxKeyLength ? config_.keys.match(key) : nullptr;
    if (name == nullptr) return refuse(ctx, "invalid API key");
    ctx.request_headers.remove(config_.header);
    ctx.request_headers.set(config_.name_header, *name);
    return filter::Status::Continue;
  }

 private:
  filter::Status refuse(filter::Context& ctx, std::string_view message) {
    return filter::unauthorized(ctx, "ApiKey realm=\"gateway\"", message);
  }
  const Config& config_;
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(Config config) : config_(std::move(config)) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<AuthApiKey>(config_);
  }

 private:
  Config config_;
};

bool validName(std::string_view name) {
  return !name.empty() && filter::isFieldValue(name) && name.size() <= 256;
}

void readKeyFile(filter::ConfigTable& table, KeySet& out) {
  std::string path;
  if (!table.getString("key_file", path)) return;
  const toml::node& at = *table.find("key_file");
  std::ifstream in(table.resolvePath(path));
  if (!in) {
    table.error(at, "cannot read key_file " + filter::quote(table.resolvePath(path)));
    return;
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string_view l = line;
    while (!l.empty() && (l.back() == '\r' || l.back() == ' ' || l.back() == '\t'))
      l.remove_suffix(1);
    while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
    if (l.empty() || l.front() == '#') continue;
    size_t space = l.find_first_of(" \t");
    std::string_view name = l.substr(0, space);
    std::string_view key =
        space == std::string_view::npos ? std::string_view() : l.substr(space + 1);
    while (!key.empty() && (key.front() == ' ' || key.front() == '\t')) key.remove_prefix(1);
    if (!validName(name) || key.empty() || key.size() > kMaxKeyLength) {
      table.error(at, "key_file line " + std::to_string(number) + ": want \"NAME KEY\"");
      continue;
    }
    out.add(std::string(name), key);
  }
}

}  // namespace

void KeySet::add(std::string name, std::string_view key) {
  Entry e;
  e.name = std::move(name);
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), e.digest.data());
  entries.push_back(std::move(e));
}

const std::string* KeySet::match(std::string_view presented) const {
  unsigned char digest[32];
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), digest);
  const std::string* found = nullptr;
  for (const Entry& e : entries) {
    // Every entry is compared, whatever matched before.
    bool equal = CRYPTO_memcmp(digest, e.digest.data(), sizeof digest) == 0;
    if (equal && found == nullptr) found = &e.name;
  }
  return found;
}

bool takeQueryParam(std::string_view target, std::string_view name, std::string_view& value,
                    std::string& without) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return false;
  std::string_view query = target.substr(q + 1);
  bool found = false;
  std::string kept;
  while (true) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (!found && key == name) {
      value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      found = true;
    } else if (!pair.empty()) {
      if (!kept.empty()) kept += '&';
      kept.append(pair);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  if (!found) return false;
  without.assign(target.substr(0, q));
  if (!kept.empty()) {
    without += '?';
    without += kept;
  }
  return true;
}

std::vector<std::string_view> keys() {
  return {"keys", "key_file", "header", "query", "name_header"};
}

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table) {
  Config config;
  std::vector<filter::ConfigTable::Entry> entries;
  if (table.getStringTable("keys", entries)) {
    for (const auto& e : entries) {
      if (!validName(e.key) || e.value.empty() || e.value.size() > kMaxKeyLength) {
        table.error(*e.node, "each key needs a name and a non-empty key of at most 4096 bytes");
        continue;
      }
      config.keys.add(e.key, e.value);
    }
  }
  readKeyFile(table, config.keys);
  auto headerKey = [&](std::string_view key, std::string& out) {
    if (table.getString(key, out) && (!filter::isToken(out) || filter::isReservedField(out))) {
      table.error(*table.find(key), filter::quote(key) + " must be a header name");
    }
  };
  headerKey("header", config.header);
  headerKey("name_header", config.name_header);
  if (table.getString("query", config.query) && !filter::isToken(config.query)) {
    table.error(*table.find("query"), "\"query\" must be a parameter name");
  }
  if (table.errorCount() != 0) return nullptr;
  if (config.keys.entries.empty()) {
    table.errorHere("no keys: give \"keys\" or \"key_file\"");
    return nullptr;
  }
  return std::make_shared<Factory>(std::move(config));
}

}  // namespace gw::filters::auth_api_key
