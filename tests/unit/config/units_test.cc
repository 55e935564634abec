#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "gateway/config/loader.h"

using gw::config::parseDuration;
using gw::config::parseSize;

TEST_CASE("parseDuration accepts a whole number with ms, s, m or h") {
  struct Case {
    const char* text;
    uint64_t ms;
  };
  const Case cases[] = {
      {"0s", 0},         {"1ms", 1},      {"250ms", 250},
      {"5s", 5'000},     {"60s", 60'000}, {"2m", 120'000},
      {"1h", 3'600'000}, {"007s", 7'000}, {"18446744073709551615ms", UINT64_MAX},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    uint64_t out = 12345;
    REQUIRE(parseDuration(c.text, out));
    CHECK(out == c.ms);
  }
}

TEST_CASE("parseDuration rejects what is not a duration") {
  const char* cases[] = {
      "",                        // empty
      "5",                       // no unit
      "-5s",                     // negative
      "+5s",                     // sign
      "s",                       // no number
      "5 s",                     // space
      " 5s",                     // leading space
      "5s ",                     // trailing space
      "1.5s",                    // fraction
      "5sec",                    // unknown unit
      "5S",                      // units are lower-case
      "5d",                      // no days
      "1m30s",                   // one unit only
      "18446744073709551616ms",  // does not fit in 64 bits
      "18446744073709551615s",   // overflows when converted to ms
      "5124095576030432h",       // overflows in the multiplication
  };
  for (const char* text : cases) {
    INFO(text);
    uint64_t out = 42;
    CHECK_FALSE(parseDuration(text, out));
    CHECK(out == 42);  // untouched on failure
  }
}

TEST_CASE("parseSize accepts bytes, decimal and binary units") {
  struct Case {
    const char* text;
    uint64_t bytes;
  };
  const Case cases[] = {
      {"0B", 0},
      {"512B", 512},
      {"4KB", 4'000},
      {"3MB", 3'000'000},
      {"2GB", 2'000'000'000},
      {"1KiB", 1024},
      {"16KiB", 16 * 1024},
      {"10MiB", 10 * 1024 * 1024},
      {"1GiB", 1024ull * 1024 * 1024},
      {"1024GiB", 1024ull * 1024 * 1024 * 1024},
      {"18446744073709551615B", UINT64_MAX},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    uint64_t out = 12345;
    REQUIRE(parseSize(c.text, out));
    CHECK(out == c.bytes);
  }
}

TEST_CASE("parseSize rejects what is not a size") {
  const char* cases[] = {
      "",                       // empty
      "512",                    // a string needs a unit (a TOML integer is bytes)
      "-1KiB",                  // negative
      "KiB",                    // no number
      "1.5MiB",                 // fraction
      "16 KiB",                 // space
      "16kib",                  // units are case-sensitive
      "16K",                    // not a unit
      "16XB",                   // not a unit
      "1TiB",                   // not supported
      "18446744073709551616B",  // does not fit in 64 bits
      "17179869184GiB",         // overflows in the multiplication
  };
  for (const char* text : cases) {
    INFO(text);
    uint64_t out = 42;
    CHECK_FALSE(parseSize(text, out));
    CHECK(out == 42);
  }
}
