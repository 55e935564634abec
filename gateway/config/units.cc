// Durations and sizes as people write them: a whole number and a unit, no spaces.
#include <cstdint>
#include <limits>
#include <string_view>

#include "gateway/config/loader.h"

namespace gw::config {
namespace {

struct Unit {
  std::string_view name;
  uint64_t factor;
};

// Splits "250ms" into 250 and "ms"; false when there is no number, a sign, or the
// number does not fit in 64 bits.
bool splitNumber(std::string_view text, uint64_t& number, std::string_view& unit) {
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) return false;
    value = value * 10 + digit;
    ++i;
  }
  if (i == 0) return false;
  number = value;
  unit = text.substr(i);
  return true;
}

template <size_t N>
bool parseWithUnits(std::string_view text, const Unit (&units)[N], uint64_t& out) {
  uint64_t number = 0;
  std::string_view unit;
  if (!splitNumber(text, number, unit)) return false;
  for (const Unit& u : units) {
    if (u.name != unit) continue;
    if (number > std::numeric_limits<uint64_t>::max() / u.factor) return false;
    out = number * u.factor;
    return true;
  }
  return false;
}

}  // namespace

bool parseDuration(std::string_view text, uint64_t& out_ms) {
  static const Unit kUnits[] = {{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}};
  return parseWithUnits(text, kUnits, out_ms);
}

bool parseSize(std::string_view text, uint64_t& out_bytes) {
  static const Unit kUnits[] = {
      {"B", 1},         {"KB", 1000},     {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
      {"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}};
  return parseWithUnits(text, kUnits, out_bytes);
}

}  // namespace gw::config
