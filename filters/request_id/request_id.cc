#include "filters/request_id/request_id.h"

#include <random>

#include "gateway/filter/fields.h"

namespace gw::filters::request_id {
namespace {

constexpr size_t kMaxIdLength = 128;

class Factory;

class RequestId final : public filter::Filter {
 public:
  explicit RequestId(const std::string& header) : header_(header) {}

  filter::Status onRequestHeaders(filter::Context& ctx) override {
    std::string_view incoming;
    if (!ctx.request_headers.find(ctx.request.head, header_, incoming) || !isValidId(incoming)) {
      char* id = static_cast<char*>(ctx.arena().allocate(36, 1));
      generateId(id);
      incoming = std::string_view(id, 36);
      ctx.request_headers.set(header_, incoming);
    } else {
      incoming = ctx.arena().copy(incoming);  // the head's bytes do not outlive this phase
    }
    ctx.request_id = incoming;
    return filter::Status::Continue;
  }

  void onResponseHeaders(filter::Context& ctx) override {
    ctx.response_headers.set(header_, ctx.request_id);
  }

 private:
  const std::string& header_;
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(std::string header) : header_(std::move(header)) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<RequestId>(header_);
  }

 private:
  std::string header_;
};

}  // namespace

bool isValidId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("._:+/=-").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

void generateId(char out[36]) {
  // One generator per worker thread: no lock, no shared state.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & ~0xF000ull) | 0x4000ull;                         // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned char bytes[16];
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<unsigned char>(hi >> (56 - 8 * i));
    bytes[8 + i] = static_cast<unsigned char>(lo >> (56 - 8 * i));
  }
  size_t at = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[at++] = '-';
    out[at++] = kHex[bytes[i] >> 4];
    out[at++] = kHex[bytes[i] & 15];
  }
}

std::vector<std::string_view> keys() { return {"header"}; }

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table) {
  std::string header = "X-Request-Id";
  if (table.getString("header", header)) {
    if (!filter::isToken(header) || filter::isReservedField(header)) {
      table.error(*table.find("header"),
                  "\"header\" must be a header name the proxy does not own (got " +
                      filter::quote(header) + ")");
      return nullptr;
    }
  }
  return std::make_shared<Factory>(std::move(header));
}

}  // namespace gw::filters::request_id
