#include "gateway/filter/value_template.h"

#include <cstring>

namespace gw::filter {
namespace {

std::string_view valueOf(ValueTemplate::Var var, const Context& ctx) {
  using Var = ValueTemplate::Var;
  switch (var) {
    case Var::ClientIp:
      return ctx.request.client_ip;
    case Var::RequestId:
      return ctx.request_id;
    case Var::Route:
      return ctx.request.route;
    case Var::Host:
      return ctx.request.host;
    case Var::Path:
      return ctx.request.path_and_query;
    case Var::Method:
      return ctx.request.method;
    case Var::Literal:
      break;
  }
  return {};
}

}  // namespace

bool ValueTemplate::parse(std::string_view text, std::string& error) {
  parts_.clear();
  std::string literal;
  auto flush = [&] {
    if (!literal.empty()) parts_.push_back({Var::Literal, std::move(literal)});
    literal.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') {
      literal += text[i];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '$') {
      literal += '$';
      ++i;
      continue;
    }
    if (i + 1 >= text.size() || text[i + 1] != '{') {
      error = "a \"$\" must start a variable like ${client_ip} (write \"$$\" for a dollar sign)";
      return false;
    }
    size_t close = text.find('}', i);
    if (close == std::string_view::npos) {
      error = "unterminated variable (missing \"}\")";
      return false;
    }
    std::string_view name = text.substr(i + 2, close - i - 2);
    static const std::pair<std::string_view, Var> kVars[] = {
        {"client_ip", Var::ClientIp}, {"request_id", Var::RequestId},
        {"route", Var::Route},        {"host", Var::Host},
        {"path", Var::Path},          {"method", Var::Method}};
    bool found = false;
    for (const auto& [n, v] : kVars) {
      if (n == name) {
        flush();
        parts_.push_back({v, {}});
        found = true;
      }
    }
    if (!found) {
      error = "unknown variable ${" + std::string(name) +
              "} (known: client_ip, request_id, route, host, path, method)";
      return false;
    }
    i = close;
  }
  flush();
  return true;
}

bool ValueTemplate::uses(Var var) const {
  for (const Part& p : parts_) {
    if (p.var == var) return true;
  }
  return false;
}

std::string_view ValueTemplate::render(Context& ctx) const {
  if (parts_.empty()) return {};
  if (parts_.size() == 1 && parts_[0].var == Var::Literal) return parts_[0].text;
  size_t total = 0;
  for (const Part& p : parts_) {
    total += p.var == Var::Literal ? p.text.size() : valueOf(p.var, ctx).size();
  }
  if (total == 0) return {};
  char* out = static_cast<char*>(ctx.arena().allocate(total, 1));
  size_t at = 0;
  for (const Part& p : parts_) {
    std::string_view v = p.var == Var::Literal ? std::string_view(p.text) : valueOf(p.var, ctx);
    if (!v.empty()) std::memcpy(out + at, v.data(), v.size());
    at += v.size();
  }
  return {out, total};
}

}  // namespace gw::filter
