#pragma once
// HTTP/2 counters of one worker (one writer, read by the control thread; see
// gateway/core/counter.h).

#include "gateway/core/counter.h"

namespace gw::http2 {

struct Http2Counters {
  Counter connections;            // connections that spoke HTTP/2 (ALPN h2 or prior knowledge)
  Counter streams;                // request streams opened
  Counter refused_streams;        // over max concurrent streams (RST_STREAM REFUSED_STREAM)
  Counter malformed_requests;     // invalid header blocks (RST_STREAM PROTOCOL_ERROR)
  Counter header_list_too_large;  // decoded header list over max_header_bytes (HPACK bombs)
  Counter client_resets;          // RST_STREAM received from clients
  Counter rapid_reset;            // connections closed for too many resets (CVE-2023-44487)
  Counter continuation_flood;     // connections closed for too many CONTINUATION frames
  Counter control_flood;          // connections closed for SETTINGS/PING floods
  Counter empty_frame_flood;      // connections closed for empty DATA/HEADERS floods
  Counter protocol_errors;        // connections ended by nghttp2 for a protocol violation
  Counter goaway_sent;            // GOAWAY frames we sent (drain, limits, errors)
};

}  // namespace gw::http2
