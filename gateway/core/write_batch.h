#pragma once
// Output staged for one writev: pointers to the caller's bytes, and copies kept here.
// Pooled per loop (LoopContext::takeWriteBatch), so a connection holds one only
// between staging and flushing its output, never while it is idle.

#include <cstddef>
#include <string>
#include <vector>

namespace gw {

struct WriteBatch {
  struct Entry {
    const char* data;  // the caller's bytes (when !copied)
    size_t length;
    size_t copy_offset;  // where the bytes are in `copies` (when copied; it may grow)
    bool copied;
  };
  std::vector<Entry> entries;
  std::string copies;

  bool empty() const { return entries.empty(); }
  void clear() {
    entries.clear();
    copies.clear();
  }
};

}  // namespace gw
