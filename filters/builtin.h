#pragma once
// Registers every built-in filter type. main() calls this once before loading config.

#include "gateway/filter/registry.h"

namespace gw::filters {

void registerBuiltins(filter::Registry& registry);

}  // namespace gw::filters
