#pragma once
// The control thread (the process's main thread): starts the workers, owns signals and
// the admin listener, and coordinates graceful shutdown. Later: config reloads and
// active health checks. It never touches a worker's request path.

#include <memory>

#include "gateway/config/snapshot.h"

namespace gw::loop {

// Runs the gateway until SIGTERM/SIGINT and a graceful drain. Returns the exit code.
int runGateway(std::shared_ptr<const config::Snapshot> snapshot);

}  // namespace gw::loop
