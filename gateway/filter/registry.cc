#include "gateway/filter/registry.h"

namespace gw::filter {

bool Registry::add(std::string name, ParseFn parse, std::vector<std::string_view> keys) {
  if (find(name) != nullptr) return false;
  types_.push_back(FilterType{std::move(name), parse, std::move(keys)});
  return true;
}

const FilterType* Registry::find(std::string_view name) const {
  for (const FilterType& type : types_) {
    if (type.name == name) return &type;
  }
  return nullptr;
}

std::vector<std::string_view> Registry::names() const {
  std::vector<std::string_view> out;
  for (const FilterType& type : types_) out.emplace_back(type.name);
  return out;
}

Registry& Registry::global() {
  static Registry registry;
  return registry;
}

}  // namespace gw::filter
