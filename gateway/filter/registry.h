#pragma once
// Filter types by name. main() fills the process-wide registry once, before any config
// is loaded and before any thread starts (filters/builtin.cc holds the one list), and it
// is only read afterwards, so lookups need no lock.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/filter/config_table.h"
#include "gateway/filter/filter.h"

namespace gw::filter {

// Builds a factory from the filter's TOML table, reporting every problem through the
// table. Returns null when the table had errors.
using ParseFn = std::shared_ptr<const FilterFactory> (*)(ConfigTable& table);

struct FilterType {
  std::string name;
  ParseFn parse = nullptr;
  std::vector<std::string_view> keys;  // the table's keys besides "type"
};

class Registry {
 public:
  // Returns false (and changes nothing) when the name is taken.
  bool add(std::string name, ParseFn parse, std::vector<std::string_view> keys);
  const FilterType* find(std::string_view name) const;
  std::vector<std::string_view> names() const;

  // The registry the config loader uses.
  static Registry& global();

 private:
  std::vector<FilterType> types_;
};

}  // namespace gw::filter
