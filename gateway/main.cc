// gateway: flags, config, then the control thread takes over (gateway/loop/control.h).
//
//   gateway --config FILE            run with a config file
//   gateway --config FILE --check    validate only (like nginx -t)
//   gateway --listen ADDR:PORT --upstream HOST:PORT [--upstream ...] [--workers N]
//                                    sidecar quick mode, no file
//   gateway --version

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
               "usage: gateway --config FILE [--check]\n"
               "       gateway --check NEW_FILE [--diff RUNNING_FILE]\n"
               "       gateway --listen ADDR:PORT --upstream HOST:PORT [--upstream ...] "
               "[--workers N|auto] [--admin ADDR:PORT] [--check]\n"
               "       gateway --version\n"
               "Quick mode also reads GATEWAY_LISTEN, GATEWAY_UPSTREAM (comma-separated),\n"
               "GATEWAY_WORKERS and GATEWAY_ADMIN when the flags are absent. Without --admin,\n"
               "quick mode runs no admin listener.\n");
}

std::vector<std::string> splitCommas(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    if (!part.empty()) out.emplace_back(part);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
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
  gw::config::QuickConfig quick;
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
    } else if (arg == "--listen") {
      quick.listen = value("--listen");
    } else if (arg == "--upstream") {
      quick.upstreams.emplace_back(value("--upstream"));
    } else if (arg == "--workers") {
      quick.workers = value("--workers");
    } else if (arg == "--admin") {
      quick.admin = value("--admin");
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

  if (config_path.empty()) {
    if (quick.listen.empty()) {
      if (const char* env = std::getenv("GATEWAY_LISTEN")) quick.listen = env;
    }
    if (quick.upstreams.empty()) {
      if (const char* env = std::getenv("GATEWAY_UPSTREAM")) quick.upstreams = splitCommas(env);
    }
    if (quick.workers.empty()) {
      if (const char* env = std::getenv("GATEWAY_WORKERS")) quick.workers = env;
    }
    if (quick.admin.empty()) {
      if (const char* env = std::getenv("GATEWAY_ADMIN")) quick.admin = env;
    }
  }

  gw::config::LoadResult loaded;
  if (!config_path.empty()) {
    if (!quick.listen.empty() || !quick.upstreams.empty()) {
      std::fprintf(stderr, "gateway: use either --config or --listen/--upstream, not both\n");
      return 2;
    }
    loaded = gw::config::loadConfigFile(config_path);
  } else if (!quick.listen.empty() || !quick.upstreams.empty()) {
    if (quick.listen.empty() || quick.upstreams.empty()) {
      std::fprintf(stderr, "gateway: quick mode needs both --listen and --upstream\n");
      return 2;
    }
    loaded = gw::config::loadConfigString(gw::config::quickConfigToToml(quick), "<flags>");
  } else {
    usage(stderr);
    return 2;
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
    gw::config::LoadResult running = gw::config::loadConfigFile(diff_path);
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
  return gw::loop::runGateway(loaded.snapshot);
}
