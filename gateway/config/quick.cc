// Sidecar quick mode: the flags (--listen, --upstream, --workers) written as the
// TOML file they stand for. The loader then reads it like any file, so a bad flag
// gets the same error as the same mistake in a file ("<flags>:3:10: ...").
#include <cstdio>

#include "gateway/config/loader.h"

namespace gw::config {
namespace {

// A TOML basic string: "..." with quotes, backslashes and control characters escaped.
std::string tomlString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(u));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

// A count the loader can range-check as an integer; anything else stays a string,
// so the loader reports it as a bad value instead of a TOML syntax error.
bool isSmallNumber(std::string_view text) {
  if (text.empty() || text.size() > 9) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::string quickConfigToToml(const QuickConfig& quick) {
  std::string out = "# Built from command-line flags (sidecar quick mode).\n";
  if (!quick.workers.empty()) {
    out += "workers = ";
    out += isSmallNumber(quick.workers) ? quick.workers : tomlString(quick.workers);
    out += "\n";
  }
  // No admin listener unless asked for: several sidecars on one host must not collide.
  out += "\n[admin]\nlisten = " + tomlString(quick.admin) + "\n";
  out += "\n[[listeners]]\nname = \"sidecar\"\nlisten = " + tomlString(quick.listen) + "\n";
  out += "\n[[routes]]\nname = \"default\"\nservice = \"upstream\"\n";
  out += "\n[services.upstream.pools.main]\nendpoints = [";
  for (size_t i = 0; i < quick.upstreams.size(); ++i) {
    if (i != 0) out += ", ";
    out += tomlString(quick.upstreams[i]);
  }
  out += "]\n";
  return out;
}

}  // namespace gw::config
