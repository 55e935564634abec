#include "gateway/filter/header_edits.h"

#include "gateway/http/header.h"
#include "gateway/http/parser.h"

namespace gw::filter {

using http::equalsIgnoreCase;

void HeaderEdits::supersede(std::string_view name) {
  for (Edit& e : edits_) {
    if (e.live && equalsIgnoreCase(e.name, name)) e.live = false;
  }
}

void HeaderEdits::set(std::string_view name, std::string_view value) {
  supersede(name);
  edits_.push_back({Op::Set, name, value, true});
}

void HeaderEdits::add(std::string_view name, std::string_view value) {
  edits_.push_back({Op::Add, name, value, true});
}

void HeaderEdits::remove(std::string_view name) {
  supersede(name);
  edits_.push_back({Op::Remove, name, {}, true});
}

bool HeaderEdits::dropsOriginal(std::string_view name) const {
  for (const Edit& e : edits_) {
    if (e.op != Op::Add && equalsIgnoreCase(e.name, name)) return true;
  }
  return false;
}

bool HeaderEdits::find(const http::MessageHead* head, std::string_view name,
                       std::string_view& out) const {
  if (head != nullptr && !dropsOriginal(name)) {
    for (size_t i = 0; i < head->header_count; ++i) {
      if (equalsIgnoreCase(head->name(i), name)) {
        out = head->value(i);
        return true;
      }
    }
  }
  for (const Edit& e : edits_) {
    if (e.live && e.op != Op::Remove && equalsIgnoreCase(e.name, name)) {
      out = e.value;
      return true;
    }
  }
  return false;
}

}  // namespace gw::filter
