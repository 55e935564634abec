// libFuzzer target: the downstream request codec (gw::http::Parser, HTTP_REQUEST), the
// stream split into reads at points taken from the input. See http_codec_fuzz.h.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/http_codec_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return gw::fuzz::fuzzCodec(HTTP_REQUEST, data, size);
}
