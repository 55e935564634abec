#pragma once
// Blue/green flips made through the admin API, persisted in a state file beside the
// config ("<config>.state") so that a restart does not silently undo them.
//
// Each override remembers which pool the config file named when the flip was made. If
// the file later names a different pool for that service, the file wins and the
// override is dropped: an operator's edit is never overruled by an older API call.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gateway/config/snapshot.h"

namespace gw::config {

class ActiveOverrides {
 public:
  struct Override {
    std::string active;       // the pool chosen through the API
    std::string file_active;  // what the config file said at the time
  };

  // The state file for a config file; "" for quick mode (nothing to persist).
  static std::string pathFor(const std::string& config_source);

  // Reads the state file (a missing file means no overrides). Returns "" or an error.
  std::string load(const std::string& path);
  // Writes the state file atomically (temp file + rename), or removes it when empty.
  std::string save(const std::string& path) const;

  // `from_file` with the overrides that still hold applied. Overrides whose service or
  // pool is gone, or whose service's `active` changed in the file, are dropped (and
  // reported in `dropped`, for the log).
  std::shared_ptr<const Snapshot> apply(const std::shared_ptr<const Snapshot>& from_file,
                                        std::vector<std::string>& dropped);

  // Records a flip of `service` to `pool`; flipping back to the file's pool clears it.
  void set(const std::string& service, const std::string& pool, const std::string& file_active);

  const std::map<std::string, Override>& all() const { return overrides_; }

 private:
  std::map<std::string, Override> overrides_;
};

}  // namespace gw::config
