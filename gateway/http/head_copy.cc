#include "gateway/http/head_copy.h"

#include <algorithm>

namespace gw::http {

void HeadCopy::assign(const MessageHead& head) {
  // Spans are offsets from head.base; the url and reason are views into the same bytes.
  auto offsetOf = [&](std::string_view view) {
    return view.empty() ? size_t{0} : static_cast<size_t>(view.data() - head.base);
  };
  size_t end =
      std::max(offsetOf(head.url) + head.url.size(), offsetOf(head.reason) + head.reason.size());
  for (size_t i = 0; i < head.header_count; ++i) {
    const HeaderSpan& s = head.spans[i];
    end = std::max<size_t>(end, s.name.offset + s.name.length);
    end = std::max<size_t>(end, s.value.offset + s.value.length);
  }
  bytes_.assign(head.base, end);
  spans_.assign(head.spans, head.spans + head.header_count);
  size_t url_offset = offsetOf(head.url);
  size_t reason_offset = offsetOf(head.reason);
  head_ = head;
  head_.base = bytes_.data();
  head_.spans = spans_.data();
  head_.url = std::string_view(bytes_.data() + url_offset, head.url.size());
  head_.reason = std::string_view(bytes_.data() + reason_offset, head.reason.size());
}

void HeadCopy::clear() {
  bytes_.clear();
  spans_.clear();
  head_ = MessageHead{};
}

}  // namespace gw::http
