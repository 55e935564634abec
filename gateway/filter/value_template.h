#pragma once
// A configured string with variables, e.g. "${client_ip} via ${route}", parsed once at
// config load and rendered per request into the request's arena.
//
// Variables: ${client_ip}, ${request_id}, ${route}, ${host}, ${path} (path and query as
// the client sent them), ${method}. "$$" is a literal "$".

#include <string>
#include <string_view>
#include <vector>

#include "gateway/filter/filter.h"

namespace gw::filter {

class ValueTemplate {
 public:
  enum class Var { Literal, ClientIp, RequestId, Route, Host, Path, Method };

  // False with `error` set when the text has an unknown or unterminated variable.
  bool parse(std::string_view text, std::string& error);
  // The value for this request; a view into the template itself when it is constant.
  std::string_view render(Context& ctx) const;
  bool constant() const {
    return parts_.size() <= 1 && (parts_.empty() || parts_[0].var == Var::Literal);
  }
  // Every variable's values are safe field-value bytes except the ones the client
  // controls (path, host); callers that need a field value check these.
  bool uses(Var var) const;

 private:
  struct Part {
    Var var;
    std::string text;  // for Literal
  };
  std::vector<Part> parts_;
};

}  // namespace gw::filter
