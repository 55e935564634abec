// `filters`: the chain for all routes (top level) and each route's own chain. Each
// element is a table with a `type` naming a registered filter; the rest of the table is
// that filter's settings, validated by the filter's own parser.
#include "gateway/config/sections.h"
#include "gateway/filter/registry.h"

namespace gw::config::detail {
namespace {

class DiagnosticsSink final : public filter::ConfigErrors {
 public:
  explicit DiagnosticsSink(Diagnostics& diag) : diag_(diag) {}
  void error(const toml::source_region& where, std::string reason) override {
    diag_.error(where, std::move(reason));
  }

 private:
  Diagnostics& diag_;
};

std::string knownTypes(const filter::Registry& registry) {
  std::string out;
  for (std::string_view name : registry.names()) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out.empty() ? "none are registered" : "known: " + out;
}

// Reads one `filters` array into `out`; `where` names it in messages.
void readChain(Diagnostics& diag, const toml::node& node, const std::string& where,
               filter::ChainConfig& out) {
  const toml::array* array = node.as_array();
  if (array == nullptr) {
    diag.error(node, where +
                         ": \"filters\" must be an array of tables like "
                         "[{ type = \"request_id\" }]");
    return;
  }
  const filter::Registry& registry = filter::Registry::global();
  std::vector<std::string_view> type_names = registry.names();
  DiagnosticsSink sink(diag);
  size_t index = 0;
  for (const toml::node& element : *array) {
    size_t position = index++;
    const toml::table* table = element.as_table();
    if (table == nullptr) {
      diag.error(element, where + ": each filter must be a table like { type = \"cors\", ... }");
      continue;
    }
    const toml::node* type_node = table->get("type");
    if (type_node == nullptr) {
      diag.error(element, where + ": a filter needs a \"type\" (" + knownTypes(registry) + ")");
      continue;
    }
    const auto* type = type_node->as_string();
    if (type == nullptr) {
      diag.error(*type_node, where + ": \"type\" must be a string");
      continue;
    }
    const filter::FilterType* filter_type = registry.find(type->get());
    if (filter_type == nullptr) {
      std::string reason = where + ": unknown filter type " + quoted(type->get());
      if (auto close = closestMatch(type->get(), type_names)) {
        reason += " (did you mean " + quoted(*close) + "?)";
      } else {
        reason += " (" + knownTypes(registry) + ")";
      }
      diag.error(*type_node, std::move(reason));
      continue;
    }
    filter::ConfigTable reader(sink, *table, filter_type->name, filter_type->keys);
    reader.setScope(where + " #" + std::to_string(position));
    std::shared_ptr<const filter::FilterFactory> factory = filter_type->parse(reader);
    if (factory == nullptr || reader.errorCount() != 0) {
      if (reader.errorCount() == 0)
        diag.error(element, where + ": filter " + quoted(type->get()) + " is invalid");
      continue;
    }
    out.append(filter_type->name, std::move(factory));
  }
}

}  // namespace

void readFilterChains(TableReader& root, const std::vector<ParsedRoute>& routes, Snapshot& out) {
  Diagnostics& diag = root.diag();
  filter::ChainConfig all;
  if (const toml::node* node = root.find("filters")) {
    readChain(diag, *node, "top-level filters", all);
  }
  out.route_filters.clear();
  out.route_filters.reserve(routes.size());
  for (const ParsedRoute& parsed : routes) {
    filter::ChainConfig chain = all;  // shares the factories
    if (parsed.filters != nullptr) {
      readChain(diag, *parsed.filters, "route " + quoted(parsed.route.name), chain);
    }
    out.route_filters.push_back(std::move(chain));
  }
}

}  // namespace gw::config::detail
