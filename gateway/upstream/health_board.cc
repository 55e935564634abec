#include "gateway/upstream/health_board.h"

namespace gw::upstream {
namespace {
std::string boardKey(const std::string& service, const std::string& endpoint) {
  return service + "\n" + endpoint;  // a newline appears in neither name
}
}  // namespace

HealthBoard& HealthBoard::process() {
  static HealthBoard board;
  return board;
}

std::shared_ptr<EndpointHealth> HealthBoard::entry(const std::string& service,
                                                   const std::string& endpoint) {
  std::lock_guard lock(mutex_);
  auto& slot = entries_[boardKey(service, endpoint)];
  if (slot == nullptr) slot = std::make_shared<EndpointHealth>();
  return slot;
}

std::shared_ptr<EndpointHealth> HealthBoard::find(const std::string& service,
                                                  const std::string& endpoint) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(boardKey(service, endpoint));
  return it == entries_.end() ? nullptr : it->second;
}

void HealthBoard::prune() {
  std::lock_guard lock(mutex_);
  std::erase_if(entries_, [](const auto& kv) { return kv.second.use_count() == 1; });
}

}  // namespace gw::upstream
