#include "filters/redirect/redirect.h"

#include "gateway/filter/fields.h"
#include "gateway/filter/value_template.h"

namespace gw::filters::redirect {
namespace {

struct Config {
  int status = 302;
  filter::ValueTemplate location;
};

class Redirect final : public filter::Filter {
 public:
  explicit Redirect(const Config& config) : config_(config) {}
  filter::Status onRequestHeaders(filter::Context& ctx) override {
    ctx.response_headers.set("Location", config_.location.render(ctx));
    ctx.reply.status = config_.status;
    return filter::Status::Respond;
  }

 private:
  const Config& config_;
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(Config config) : config_(std::move(config)) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<Redirect>(config_);
  }

 private:
  Config config_;
};

}  // namespace

std::vector<std::string_view> keys() { return {"location", "status"}; }

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table) {
  Config config;
  std::string location;
  if (!table.getString("location", location)) {
    if (table.find("location") == nullptr) table.errorHere("\"location\" is required");
    return nullptr;
  }
  std::string error;
  if (location.empty() || !filter::isFieldValue(location) ||
      location.find(' ') != std::string::npos) {
    table.error(*table.find("location"),
                "\"location\" must be a URL or path without spaces or control characters");
    return nullptr;
  }
  if (!config.location.parse(location, error)) {
    table.error(*table.find("location"), "\"location\": " + error);
    return nullptr;
  }
  int64_t status = 302;
  if (table.getInteger("status", 300, 399, status)) {
    if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308) {
      table.error(*table.find("status"), "\"status\" must be 301, 302, 303, 307 or 308");
      return nullptr;
    }
  }
  if (table.errorCount() != 0) return nullptr;
  config.status = static_cast<int>(status);
  return std::make_shared<Factory>(std::move(config));
}

}  // namespace gw::filters::redirect
