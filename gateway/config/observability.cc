// [access_log], [metrics] and [tracing].
#include <cstring>

#include "gateway/config/sections.h"
#include "gateway/net/address.h"

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

void readTracing(TableReader& root, observe::TracingSettings& out) {
  const toml::table* table = root.getTable("tracing");
  if (table == nullptr) return;
  TableReader tracing(root.diag(), *table, "in [tracing]",
                      {"otlp_endpoint", "service_name", "max_queue", "batch_size", "flush_interval",
                       "export_timeout"});
  std::string endpoint;
  if (tracing.getString("otlp_endpoint", endpoint) && !endpoint.empty()) {
    std::optional<net::SocketAddress> address = net::parseSocketAddress(endpoint);
    if (!address) {
      tracing.diag().error(*tracing.find("otlp_endpoint"),
                           "\"otlp_endpoint\" must be an IP address and port like "
                           "\"127.0.0.1:4318\" (got " +
                               quoted(endpoint) + "); names are not resolved on a worker");
    } else {
      out.otlp_endpoint = endpoint;
      std::memcpy(&out.address, &address->storage, sizeof address->storage);
    }
  }
  if (tracing.getString("service_name", out.service_name) && out.service_name.empty()) {
    tracing.diag().error(*tracing.find("service_name"), "\"service_name\" must not be empty");
  }
  tracing.getUint32("max_queue", 1, 1u << 20, out.max_queue);
  tracing.getUint32("batch_size", 1, 1u << 16, out.batch_size);
  tracing.getDuration("flush_interval", 1, out.flush_interval_ms);
  tracing.getDuration("export_timeout", 1, out.export_timeout_ms);
  if (out.batch_size > out.max_queue && tracing.find("batch_size") != nullptr) {
    tracing.diag().error(*tracing.find("batch_size"), "\"batch_size\" (" +
                                                          std::to_string(out.batch_size) +
                                                          ") must not exceed \"max_queue\" (" +
                                                          std::to_string(out.max_queue) + ")");
  }
}

}  // namespace

void readObservability(TableReader& root, Snapshot& out) {
  readAccessLog(root, out.access_log);
  readMetrics(root, out.metrics);
  readTracing(root, out.tracing);
}

}  // namespace gw::config::detail
