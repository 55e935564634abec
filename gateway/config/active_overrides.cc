#include "gateway/config/active_overrides.h"

#include <toml++/toml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace gw::config {
namespace {

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string ActiveOverrides::pathFor(const std::string& config_source) {
  if (config_source.empty() || config_source == "<flags>") return "";
  return config_source + ".state";
}

std::string ActiveOverrides::load(const std::string& path) {
  overrides_.clear();
  if (path.empty()) return "";
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return errno == ENOENT ? "" : path + ": " + std::strerror(errno);
  std::fclose(f);
  toml::parse_result parsed = toml::parse_file(path);
  if (!parsed) {
    return path + ":" + std::to_string(parsed.error().source().begin.line) + ": " +
           std::string(parsed.error().description());
  }
  const toml::table* services = parsed.table()["services"].as_table();
  if (services == nullptr) return "";
  for (const auto& [name, node] : *services) {
    const toml::table* t = node.as_table();
    if (t == nullptr) continue;
    auto active = (*t)["active"].value<std::string>();
    auto file_active = (*t)["file_active"].value<std::string>();
    if (active && file_active) {
      overrides_[std::string(name.str())] = Override{*active, *file_active};
    }
  }
  return "";
}

std::string ActiveOverrides::save(const std::string& path) const {
  if (path.empty()) return "";
  if (overrides_.empty()) {
    if (std::remove(path.c_str()) != 0 && errno != ENOENT) {
      return path + ": " + std::strerror(errno);
    }
    return "";
  }
  std::string text =
      "# Written by the gateway: blue/green flips made through the admin API.\n"
      "# An override holds while the config file still names `file_active` for the\n"
      "# service; edit `active` in the config file and the file wins.\n";
  for (const auto& [service, o] : overrides_) {
    text += "\n[services." + quoted(service) + "]\nactive = " + quoted(o.active) +
            "\nfile_active = " + quoted(o.file_active) + "\n";
  }
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return tmp + ": " + std::strerror(errno);
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return path + ": " + std::strerror(errno);
  }
  return "";
}

std::shared_ptr<const Snapshot> ActiveOverrides::apply(
    const std::shared_ptr<const Snapshot>& from_file, std::vector<std::string>& dropped) {
  if (overrides_.empty()) return from_file;
  auto next = std::make_shared<Snapshot>(*from_file);
  for (auto it = overrides_.begin(); it != overrides_.end();) {
    auto service = next->services.find(it->first);
    bool holds = service != next->services.end() &&
                 service->second.pools.count(it->second.active) > 0 &&
                 service->second.active == it->second.file_active;
    if (holds) {
      service->second.active = it->second.active;
      ++it;
    } else {
      dropped.push_back(it->first);
      it = overrides_.erase(it);
    }
  }
  return next;
}

void ActiveOverrides::set(const std::string& service, const std::string& pool,
                          const std::string& file_active) {
  if (pool == file_active) {
    overrides_.erase(service);
  } else {
    overrides_[service] = Override{pool, file_active};
  }
}

}  // namespace gw::config
