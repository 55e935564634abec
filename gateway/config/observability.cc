// [access_log] and [metrics].
#include "gateway/config/sections.h"

namespace gw::config::detail {
namespace {

constexpr uint64_t kMinAccessLogBuffer = 4 * 1024;
constexpr uint64_t kMaxAccessLogBuffer = 1024ull * 1024 * 1024;

void readAccessLog(TableReader& root, observe::AccessLogSettings& out) {
  const toml::table* table = root.getTable("access_log");
  if (table == nullptr) return;
  TableReader log(root.diag(), *table, "in [access_log]",
                  {"enabled", "path", "format", "fields", "buffer_size"});
  out.enabled = true;  // the table is there: logging is on unless it says otherwise
  log.getBool("enabled", out.enabled);
  if (log.getString("path", out.path) && out.path.empty()) {
    log.diag().error(*log.find("path"),
                     "\"path\" must be \"stdout\", \"stderr\" or a file name (got \"\")");
  }
  std::string format;
  if (log.getString("format", format)) {
    if (format == "json") {
      out.format = observe::AccessLogFormat::Json;
    } else if (format == "common") {
      out.format = observe::AccessLogFormat::Common;
    } else if (format == "combined") {
      out.format = observe::AccessLogFormat::Combined;
    } else {
      log.diag().error(
          *log.find("format"),
          "\"format\" must be one of json, common, combined (got " + quoted(format) + ")");
    }
  }
  std::vector<std::pair<std::string, const toml::node*>> fields;
  if (log.getStringArray("fields", fields)) {
    if (out.format != observe::AccessLogFormat::Json) {
      log.diag().error(*log.find("fields"), "\"fields\" applies to format = \"json\" only (the " +
                                                format + " format has a fixed shape)");
    }
    std::vector<std::string_view> names;
    for (observe::AccessLogField f : observe::allAccessLogFields()) {
      names.push_back(observe::accessLogFieldName(f));
    }
    out.fields.clear();
    for (const auto& [name, node] : fields) {
      std::optional<observe::AccessLogField> field = observe::accessLogFieldByName(name);
      if (!field) {
        std::string reason = "\"fields\": unknown field " + quoted(name);
        if (auto suggestion = closestMatch(name, names)) {
          reason += " (did you mean " + quoted(*suggestion) + "?)";
        } else {
          reason +=
              " (fields: " + joined(std::vector<std::string>(names.begin(), names.end())) + ")";
        }
        log.diag().error(*node, std::move(reason));
        continue;
      }
      bool duplicate = false;
      for (observe::AccessLogField f : out.fields) duplicate = duplicate || f == *field;
      if (duplicate) {
        log.diag().error(*node, "\"fields\": " + quoted(name) + " is listed twice");
        continue;
      }
      out.fields.push_back(*field);
    }
    if (fields.empty()) {
      log.diag().error(*log.find("fields"), "\"fields\" must name at least one field");
    }
  }
  log.getSize("buffer_size", kMinAccessLogBuffer, kMaxAccessLogBuffer, out.buffer_bytes);
}

void readMetrics(TableReader& root, Metrics& out) {
  const toml::table* table = root.getTable("metrics");
  if (table == nullptr) return;
  TableReader metrics(root.diag(), *table, "in [metrics]", {"enabled"});
  metrics.getBool("enabled", out.enabled);
}

}  // namespace

void readObservability(TableReader& root, Snapshot& out) {
  readAccessLog(root, out.access_log);
  readMetrics(root, out.metrics);
}

}  // namespace gw::config::detail
