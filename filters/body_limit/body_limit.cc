#include "filters/body_limit/body_limit.h"

namespace gw::filters::body_limit {
namespace {

class BodyLimit final : public filter::Filter {
 public:
  explicit BodyLimit(uint64_t max) : max_(max) {}
  filter::Status onRequestHeaders(filter::Context& ctx) override {
    if (ctx.request.content_length > max_) return tooLarge(ctx);
    return filter::Status::Continue;
  }
  filter::Status onRequestBody(filter::Context& ctx, std::string_view chunk, bool) override {
    seen_ += chunk.size();
    return seen_ > max_ ? tooLarge(ctx) : filter::Status::Continue;
  }

 private:
  static filter::Status tooLarge(filter::Context& ctx) {
    ctx.reply.status = 413;
    ctx.reply.message = "request body too large";
    return filter::Status::Respond;
  }
  uint64_t max_;
  uint64_t seen_ = 0;  // per request: lives in the request's arena
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(uint64_t max) : max_(max) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<BodyLimit>(max_);
  }
  bool wantsRequestBody() const override { return true; }

 private:
  uint64_t max_;
};

}  // namespace

std::vector<std::string_view> keys() { return {"max"}; }

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table) {
  uint64_t max = 0;
  if (!table.getSize("max", 0, UINT64_MAX, max)) {
    if (table.find("max") == nullptr) table.errorHere("\"max\" is required (e.g. \"1MiB\")");
    return nullptr;
  }
  return std::make_shared<Factory>(max);
}

}  // namespace gw::filters::body_limit
