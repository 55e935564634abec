#include "gateway/filter/fields.h"

#include "gateway/http/header.h"
#include "gateway/http/hop_by_hop.h"

namespace gw::filter {

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum) continue;
    if (std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

bool isFieldValue(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return s.empty() ||
         (s.front() != ' ' && s.front() != '\t' && s.back() != ' ' && s.back() != '\t');
}

bool isReservedField(std::string_view name) {
  return http::isFixedHopByHop(name) || http::equalsIgnoreCase(name, "content-length") ||
         http::equalsIgnoreCase(name, "host") || http::equalsIgnoreCase(name, "expect") ||
         http::equalsIgnoreCase(name, "x-forwarded-for");
}

}  // namespace gw::filter
