#include "gateway/core/log.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <ctime>

namespace gw::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::Info)};

const char* levelName(Level level) {
  switch (level) {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warn:
      return "warn";
    case Level::Error:
      return "error";
  }
  return "info";
}
}  // namespace

void setLevel(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

bool enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

bool parseLevel(std::string_view text, Level& out) {
  if (text == "debug")
    out = Level::Debug;
  else if (text == "info")
    out = Level::Info;
  else if (text == "warn")
    out = Level::Warn;
  else if (text == "error")
    out = Level::Error;
  else
    return false;
  return true;
}

char* putJsonEscaped(char* p, std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  for (char ch : text) {
    auto u = static_cast<unsigned char>(ch);
    if (u >= 0x20 && u != '"' && u != '\\') {
      *p++ = ch;
    } else if (u == '"' || u == '\\') {
      p[0] = '\\';
      p[1] = ch;
      p += 2;
    } else {
      const char escape[6] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 15]};
      std::memcpy(p, escape, 6);
      p += 6;
    }
  }
  return p;
}

void appendJsonEscaped(std::string& out, std::string_view text) {
  size_t at = out.size();
  out.resize(at + 6 * text.size());  // the most an escape can take
  out.resize(static_cast<size_t>(putJsonEscaped(out.data() + at, text) - out.data()));
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc;
  gmtime_r(&ts.tv_sec, &utc);
  char when[40];
  size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1'000'000);

  std::string line;
  line.reserve(128);
  line += "{\"ts\":\"";
  line += when;
  line += "\",\"level\":\"";
  line += levelName(level);
  line += "\",\"msg\":\"";
  appendJsonEscaped(line, message);
  line += '"';
  for (const Field& f : fields) {
    line += ",\"";
    appendJsonEscaped(line, f.key);
    line += "\":";
    if (f.raw) {
      line += f.value;
    } else {
      line += '"';
      appendJsonEscaped(line, f.value);
      line += '"';
    }
  }
  line += "}\n";
  // One write per line: atomic for lines under PIPE_BUF on pipes, and never interleaved.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t w = ::write(2, p, left);
    if (w <= 0) break;
    p += w;
    left -= static_cast<size_t>(w);
  }
}

}  // namespace gw::log
