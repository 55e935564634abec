#include "filters/direct_response/direct_response.h"

#include "gateway/filter/fields.h"

namespace gw::filters::direct_response {
namespace {

constexpr int64_t kMaxBody = 64 * 1024;

struct Config {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
};

class DirectResponse final : public filter::Filter {
 public:
  explicit DirectResponse(const Config& config) : config_(config) {}
  filter::Status onRequestHeaders(filter::Context& ctx) override {
    ctx.reply.status = config_.status;
    ctx.reply.custom_body = true;
    ctx.reply.body = config_.body;
    ctx.reply.content_type = config_.content_type;
    return filter::Status::Respond;
  }

 private:
  const Config& config_;
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(Config config) : config_(std::move(config)) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<DirectResponse>(config_);
  }

 private:
  Config config_;
};

}  // namespace

std::vector<std::string_view> keys() { return {"status", "body", "content_type"}; }

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table) {
  Config config;
  int64_t status = 200;
  if (table.getInteger("status", 200, 599, status)) config.status = static_cast<int>(status);
  if (table.getString("body", config.body) && config.body.size() > static_cast<size_t>(kMaxBody)) {
    table.error(*table.find("body"), "\"body\" is longer than 64KiB");
  }
  if (table.getString("content_type", config.content_type) &&
      (config.content_type.empty() || !filter::isFieldValue(config.content_type))) {
    table.error(*table.find("content_type"), "\"content_type\" must be a valid header value");
  }
  if (table.errorCount() != 0) return nullptr;
  return std::make_shared<Factory>(std::move(config));
}

}  // namespace gw::filters::direct_response
