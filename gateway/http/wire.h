#pragma once
// Writing HTTP/1 message bytes: field lines and chunk-size lines. Shared by the proxy's
// heads and bodies and the upstream HTTP/2 stream, which hands responses back as
// HTTP/1 bytes.

#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>

namespace gw::http {

// Appends "name: value\r\n".
inline void appendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ", 2);
  out.append(value);
  out.append("\r\n", 2);
}

// Room chunkHeader() needs: 16 hex digits and CRLF.
constexpr size_t kChunkHeaderMax = 18;

// Writes "<hex>\r\n" for a chunk of `length` bytes into `out` (kChunkHeaderMax bytes of
// room); returns its length.
inline size_t chunkHeader(char* out, size_t length) {
  auto [end, ec] = std::to_chars(out, out + 16, length, 16);
  (void)ec;
  end[0] = '\r';
  end[1] = '\n';
  return static_cast<size_t>(end + 2 - out);
}

}  // namespace gw::http
