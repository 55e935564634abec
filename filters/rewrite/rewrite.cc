#include "filters/rewrite/rewrite.h"

#include <re2/re2.h>

#include <cstring>

#include "gateway/filter/fields.h"

namespace gw::filters::rewrite {
namespace {

class Rewrite final : public filter::Filter {
 public:
  explicit Rewrite(const Rule& rule) : rule_(rule) {}
  filter::Status onRequestHeaders(filter::Context& ctx) override {
    ctx.upstream_target = apply(rule_, ctx.upstream_target, ctx.arena());
    return filter::Status::Continue;
  }

 private:
  const Rule& rule_;
};

class Factory final : public filter::FilterFactory {
 public:
  explicit Factory(Rule rule) : rule_(std::move(rule)) {}
  filter::Filter* create(filter::Context& ctx) const override {
    return ctx.arena().make<Rewrite>(rule_);
  }

 private:
  Rule rule_;
};

// Path characters a replacement may contain (RFC 3986 pchar and "/", plus "\" for
// group references): nothing that could end the request line or smuggle a header.
bool isPathText(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '?' || c == '#') return false;
  }
  return true;
}

std::string_view join(filter::Arena& arena, std::string_view a, std::string_view b,
                      std::string_view c) {
  size_t total = a.size() + b.size() + c.size();
  char* out = static_cast<char*>(arena.allocate(total, 1));
  size_t at = 0;
  for (std::string_view part : {a, b, c}) {
    if (!part.empty()) std::memcpy(out + at, part.data(), part.size());
    at += part.size();
  }
  return {out, total};
}

}  // namespace

std::string_view apply(const Rule& rule, std::string_view target, filter::Arena& arena) {
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q);
  std::string_view lead;
  if (rule.regex == nullptr) {
    if (path.substr(0, rule.prefix.size()) != rule.prefix) return target;
    std::string_view rest = path.substr(rule.prefix.size());
    if ((rule.replacement.empty() || rule.replacement.front() != '/') &&
        (rest.empty() || rest.front() != '/'))
      lead = "/";
    std::string_view head = join(arena, lead, rule.replacement, rest);
    return join(arena, head, query, {});
  }
  std::string rewritten(path);  // RE2's Replace works on std::string
  if (!RE2::Replace(&rewritten, *rule.regex, rule.replacement)) return target;
  if (rewritten.empty() || rewritten.front() != '/') lead = "/";
  return join(arena, lead, rewritten, query);
}

std::vector<std::string_view> keys() { return {"prefix", "regex", "replacement"}; }

std::shared_ptr<const filter::FilterFactory> parse(filter::ConfigTable& table) {
  Rule rule;
  bool has_prefix = table.getString("prefix", rule.prefix);
  std::string pattern;
  bool has_regex = table.getString("regex", pattern);
  bool has_replacement = table.getString("replacement", rule.replacement);
  if (table.errorCount() != 0) return nullptr;
  if (has_prefix == has_regex) {
    table.errorHere("give exactly one of \"prefix\" and \"regex\"");
    return nullptr;
  }
  if (!has_replacement) {
    table.errorHere("\"replacement\" is required");
    return nullptr;
  }
  if (!isPathText(rule.replacement)) {
    table.error(*table.find("replacement"),
                "\"replacement\" may contain only path characters (no spaces, controls, "
                "\"?\" or \"#\")");
    return nullptr;
  }
  if (has_prefix) {
    if (rule.prefix.empty() || rule.prefix.front() != '/') {
      table.error(*table.find("prefix"), "\"prefix\" must start with \"/\"");
      return nullptr;
    }
  } else {
    RE2::Options options;
    options.set_log_errors(false);
    auto regex = std::make_shared<const RE2>(pattern, options);
    if (!regex->ok()) {
      table.error(*table.find("regex"),
                  "\"regex\" is not a valid RE2 expression: " + regex->error());
      return nullptr;
    }
    std::string error;
    if (!regex->CheckRewriteString(rule.replacement, &error)) {
      table.error(*table.find("replacement"), "\"replacement\": " + error);
      return nullptr;
    }
    rule.regex = std::move(regex);
  }
  return std::make_shared<Factory>(std::move(rule));
}

}  // namespace gw::filters::rewrite
