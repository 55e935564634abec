// libFuzzer target: the upstream response codec (gw::http::Parser, HTTP_RESPONSE),
// including answers to HEAD (the sink skips the body) and 1xx interim responses. See
// http_codec_fuzz.h for the input layout and the invariants.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/http_codec_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return gw::fuzz::fuzzCodec(HTTP_RESPONSE, data, size);
}
