#pragma once
// A MessageHead that outlives the parser callback it came from: the head's bytes and
// field spans copied into storage of its own. For a request whose handling pauses
// (a filter waiting on Redis) while the parser's bytes move on. Keeps its capacity
// between uses.

#include <string>
#include <vector>

#include "gateway/http/parser.h"

namespace gw::http {

class HeadCopy {
 public:
  // Copies `head`; head() then views this copy.
  void assign(const MessageHead& head);
  const MessageHead& head() const { return head_; }
  void clear();

 private:
  std::string bytes_;
  std::vector<HeaderSpan> spans_;
  MessageHead head_;
};

}  // namespace gw::http
