#pragma once
// Structured logs: one JSON object per line on stderr, written with a single write(2)
// so lines from different threads never interleave. Not for the request path's hot
// loop (access logs are a separate, buffered facility).

#include <initializer_list>
#include <string>
#include <string_view>

namespace gw::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void setLevel(Level level);
bool parseLevel(std::string_view text, Level& out);
bool enabled(Level level);

struct Field {
  std::string_view key;
  std::string value;
  bool raw = false;  // true: value is already JSON (a number or boolean)
};
inline Field num(std::string_view key, long long v) { return {key, std::to_string(v), true}; }
inline Field str(std::string_view key, std::string v) { return {key, std::move(v), false}; }

void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Debug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Error, m, f);
}

// Appends `text` to `out` as the inside of a JSON string (escapes quotes, controls).
void appendJsonEscaped(std::string& out, std::string_view text);
// The same into space the caller reserved (at most 6 bytes per input byte); returns the
// end of what was written. For writers that format straight into a buffer.
char* putJsonEscaped(char* out, std::string_view text);

}  // namespace gw::log
