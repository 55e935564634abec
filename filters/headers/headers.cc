#include "filters/headers/headers.h"

#include "gateway/filter/fields.h"
#include "gateway/filter/value_template.h"

namespace gw::filters::headers {
namespace {

struct Edit {
  std::string name;
  filter::ValueTemplate value;
};

struct Side {
  std::vector<std::string> remove;
  std::vector<Edit> set;
  std::vector<Edit> add;

  bool empty() const { return remove.empty() && set.empty() && add.empty(); }
  void apply(filter::Context& ctx, filter::HeaderEdits& edits) const {
    for (const std::string& name : remove) edits.remove(name);
    for (const Edit& e : set) edits.set(e.name, e.value.render(ctx));
    for (const Edit& e : add) edits.add(e.name, e.value.render(ctx));
  }
};

struct Config {
  Side request;
  Side response;
};

class Headers final : public filter::Filter {
 public:
  explicit Headers(const Config& config) : config_(config) {}
  filter::Status onRequestHeaders(filter::Context& ctx) override {
    config_.request.apply(ctx, ctx.request_headers);
    return filter::Status::Continue;
  }
  void onResponseHeaders(filter::Context& ctx) override {
    config_.response.apply(ctx, ctx.response_headers);
  }

 private:
  const Config& config_;
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(Config config) : config_(std::move(config)) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<Headers>(config_);
  }

 private:
  Config config_;
};

bool checkName(filter::ConfigTable& table, const std::string& name, const toml::node& at) {
  if (!filter::isToken(name)) {
    table.error(at, filter::quote(name) + " is not a valid header name");
    return false;
  }
  if (filter::isReservedField(name)) {
    table.error(at, filter::quote(name) + " is managed by the proxy and cannot be edited");
    return false;
  }
  return true;
}

void readEdits(filter::ConfigTable& table, std::string_view key, std::vector<Edit>& out) {
  std::vector<filter::ConfigTable::Entry> entries;
  if (!table.getStringTable(key, entries)) return;
  for (const auto& entry : entries) {
    if (!checkName(table, entry.key, *entry.node)) continue;
    Edit edit;
    edit.name = entry.key;
    std::string error;
    if (!edit.value.parse(entry.value, error)) {
      table.error(*entry.node, filter::quote(entry.key) + ": " + error);
      continue;
    }
    // The variables' values are valid field bytes; the literal parts must be too.
    if (!filter::isFieldValue(entry.value)) {
      table.error(*entry.node, filter::quote(entry.key) +
                                   ": the value has control characters or surrounding spaces");
      continue;
    }
    out.push_back(std::move(edit));
  }
}

void readSide(filter::ConfigTable& table, std::string_view prefix, Side& out) {
  std::string p(prefix);
  std::vector<std::pair<std::string, const toml::node*>> names;
  if (table.getStringArray(p + "_remove", names)) {
    for (const auto& [name, node] : names) {
      if (checkName(table, name, *node)) out.remove.push_back(name);
    }
  }
  readEdits(table, p + "_set", out.set);
  readEdits(table, p + "_add", out.add);
}

}  // namespace

std::vector<std::string_view> keys() {
  return {"request_set",  "request_add",  "request_remove",
          "response_set", "response_add", "response_remove"};
}

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table) {
  Config config;
  readSide(table, "request", config.request);
  readSide(table, "response", config.response);
  if (table.errorCount() != 0) return nullptr;
  if (config.request.empty() && config.response.empty()) {
    table.errorHere(
        "nothing to do: give at least one of request_set, request_add, "
        "request_remove, response_set, response_add, response_remove");
    return nullptr;
  }
  return std::make_shared<Factory>(std::move(config));
}

}  // namespace gw::filters::headers
