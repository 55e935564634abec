// gateway: flags, config, then the control thread takes over (gateway/loop/control.h).
//
//   gateway --config FILE            run with a config file
//   gateway --config FILE --check    validate only (like nginx -t)
//   gateway --listen ADDR:PORT --upstream HOST:PORT [--upstream ...] [--workers N]
//                                    sidecar quick mode, no file
//   gateway --version
//
// The quick-mode flags and GATEWAY_* environment variables (config/loader.h, Overrides)
// also apply on top of a config file; flags win over variables.

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "filters/builtin.h"
#include "gateway/config/describe.h"
#include "gateway/config/loader.h"
#include "gateway/core/log.h"
#include "gateway/loop/control.h"

namespace {

constexpr const char* kVersion = "0.1.0";

void usage(FILE* out) {
  std::fprintf(out,
               "usage: gateway --config FILE [--check] [OVERRIDES]\n"
               "       gateway --check NEW_FILE [--diff RUNNING_FILE]\n"
               "       gateway --listen ADDR:PORT --upstream HOST:PORT [--upstream ...] "
               "[OVERRIDES] [--check]\n"
               "       gateway --version\n"
               "OVERRIDES (on top of the file, or quick mode without one):\n");
  for (const gw::config::OverrideKey& k : gw::config::overrideKeys()) {
    std::fprintf(out, "  %-18s %s\n", k.flag.empty() ? "" : std::string(k.flag).c_str(),
                 std::string(k.env).c_str());
  }
  std::fprintf(out,
               "GATEWAY_CONFIG names the config file when --config is absent. Flags win over\n"
               "variables. Without a file and without --admin, there is no admin listener.\n");
}

// The GATEWAY_* variables of the process.
std::map<std::string, std::string> gatewayEnvironment() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry = *e;
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos || entry.substr(0, 8) != "GATEWAY_") continue;
    out.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any config is loaded and before any thread starts: the registry is read-only
  // from here on.
  gw::filters::registerBuiltins(gw::filter::Registry::global());
  std::string config_path;
  std::string diff_path;  // --check NEW --diff RUNNING: what a reload would change
  bool check = false;
  gw::config::Overrides flags;
  auto addFlag = [&](std::string_view flag, const char* value) {
    for (const gw::config::OverrideKey& k : gw::config::overrideKeys()) {
      if (k.flag != flag) continue;
      for (gw::config::Override& o : flags) {
        if (o.key == k.key && k.key == "upstream") {  // --upstream repeats
          o.value += ",";
          o.value += value;
          return;
        }
      }
      flags.push_back(gw::config::Override{std::string(k.key), value, std::string(flag)});
      return;
    }
  };
  auto isOverrideFlag = [](std::string_view arg) {
    for (const gw::config::OverrideKey& k : gw::config::overrideKeys()) {
      if (!k.flag.empty() && k.flag == arg) return true;
    }
    return false;
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "gateway: %s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--config" || arg == "-c") {
      config_path = value("--config");
    } else if (arg == "--check" || arg == "-t") {
      check = true;
      // `--check FILE` is `--config FILE --check`.
      if (i + 1 < argc && argv[i + 1][0] != '-' && config_path.empty()) config_path = argv[++i];
    } else if (arg == "--diff") {
      diff_path = value("--diff");
    } else if (isOverrideFlag(arg)) {
      addFlag(arg, value(argv[i]));
    } else if (arg == "--version" || arg == "-v") {
      std::printf("gateway %s\n", kVersion);
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "gateway: unknown argument \"%s\"\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }

  std::map<std::string, std::string> env = gatewayEnvironment();
  if (config_path.empty()) {
    auto it = env.find("GATEWAY_CONFIG");
    if (it != env.end() && !it->second.empty()) config_path = it->second;
  }
  gw::config::Overrides overrides = gw::config::withEnvironment(flags, env);

  gw::config::LoadResult loaded;
  if (!config_path.empty()) {
    loaded = gw::config::loadConfigFile(config_path, overrides);
  } else {
    bool listen = false, upstream = false;
    for (const gw::config::Override& o : overrides) {
      listen = listen || o.key == "listen";
      upstream = upstream || o.key == "upstream";
    }
    if (!listen && !upstream) {
      usage(stderr);
      return 2;
    }
    if (!listen || !upstream) {
      std::fprintf(stderr,
                   "gateway: without a config file, both --listen (GATEWAY_LISTEN) and "
                   "--upstream (GATEWAY_UPSTREAM) are needed\n");
      return 2;
    }
    loaded = gw::config::loadQuickConfig(overrides);
  }

  if (!loaded.ok()) {
    for (const auto& error : loaded.errors) std::fprintf(stderr, "%s\n", error.toString().c_str());
    std::fprintf(stderr, "gateway: configuration %s is invalid (%zu error%s)\n",
                 config_path.empty() ? "<flags>" : config_path.c_str(), loaded.errors.size(),
                 loaded.errors.size() == 1 ? "" : "s");
    return 1;
  }
  if (!diff_path.empty()) {
    if (!check) {
      std::fprintf(stderr, "gateway: --diff needs --check\n");
      return 2;
    }
    gw::config::LoadResult running = gw::config::loadConfigFile(diff_path, overrides);
    if (!running.ok()) {
      for (const auto& error : running.errors) {
        std::fprintf(stderr, "%s\n", error.toString().c_str());
      }
      std::fprintf(stderr, "gateway: the running configuration %s is invalid\n", diff_path.c_str());
      return 1;
    }
    gw::config::ConfigDiff diff = gw::config::diffSnapshots(*running.snapshot, *loaded.snapshot);
    std::printf("gateway: configuration %s is ok; changes against %s:\n%s",
                loaded.snapshot->source.c_str(), diff_path.c_str(),
                gw::config::diffToText(diff).c_str());
    return 0;
  }
  if (check) {
    std::printf("gateway: configuration %s is ok\n", loaded.snapshot->source.c_str());
    return 0;
  }

  gw::log::Level level;
  if (gw::log::parseLevel(loaded.snapshot->log.level, level)) gw::log::setLevel(level);
  std::signal(SIGPIPE, SIG_IGN);
  return gw::loop::runGateway(loaded.snapshot, std::move(overrides));
}
