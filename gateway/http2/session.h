#pragma once
// One HTTP/2 server connection over a net::Transport (TCP or TLS), on nghttp2.
//
// The session owns the nghttp2_session and the per-stream state (the request head being
// decoded, the response body waiting for the flow-control window). It reads what the
// transport delivers, and writes everything nghttp2 has to send with one flush per read
// callback (or per loop iteration for writes the streams make on their own), never per
// frame. The request body's window is opened by hand (consume()), only as the stream's
// owner has passed the bytes on, so a slow upstream stops a fast client; the response
// body waits in the stream until the client's window takes it, and the owner is told
// (onStreamDrained) when it fell below the low-water mark.
//
// Loop-confined. Callbacks into the handlers run from onRead(), from the deferred send,
// from onTransportDrained() and from closeAllStreams(), never from the submit/append
// calls the handlers make, so a handler may call those from anywhere.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "gateway/core/loop_context.h"
#include "gateway/http2/counters.h"
#include "gateway/http2/fields.h"
#include "gateway/net/transport.h"

namespace gw::http2 {

struct Limits {
  uint32_t max_concurrent_streams = 100;
  uint32_t max_header_list_bytes = 16 * 1024;  // the listener's max_header_bytes
  uint32_t max_frame_size = 16 * 1024;         // what we accept (SETTINGS_MAX_FRAME_SIZE)
  uint32_t stream_window = 256 * 1024;         // request body a stream may have in flight
  uint32_t connection_window = 1024 * 1024;
  // Flood defences: more than `max` events within `window_ms` closes the connection
  // with GOAWAY ENHANCE_YOUR_CALM.
  uint64_t window_ms = 10'000;
  uint32_t max_resets = 200;           // client RST_STREAMs (rapid reset, CVE-2023-44487)
  uint32_t max_control_frames = 1000;  // SETTINGS and PING frames
  uint32_t max_empty_frames = 200;     // DATA without payload nor END_STREAM
  uint32_t max_continuations = 8;      // CONTINUATION frames in one header block
};

class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // Request body bytes, valid only during the call. The owner calls consume() once
  // they have been passed on.
  virtual void onData(const char* data, size_t length) = 0;
  virtual void onRequestEnd() = 0;
  // The request's trailer fields (a HEADERS block after the body), right before
  // onRequestEnd(); valid only during the call. The default drops them.
  virtual void onRequestTrailers(const http::MessageHead& trailers) { (void)trailers; }
  // The stream is gone (both sides ended, or it was reset). The last call: the session
  // forgets the handler when it returns.
  virtual void onStreamClose(uint32_t error_code) = 0;
  // The response body buffered for the stream fell below the low-water mark.
  virtual void onStreamDrained() = 0;
};

class SessionHandler {
 public:
  virtual ~SessionHandler() = default;
  // A valid request head arrived on a new stream. Returns the stream's handler (null:
  // the stream is refused). `head` is valid only during the call. When `end_stream`,
  // onRequestEnd() follows at once.
  virtual StreamHandler* onRequest(int32_t stream_id, const http::MessageHead& head,
                                   bool end_stream) = 0;
  // The connection has nothing more to do (GOAWAY exchanged, error, or drained):
  // close the transport.
  virtual void onSessionDone() = 0;
};

class Session {
 public:
  Session(LoopContext& loop, net::Transport& transport, SessionHandler& handler,
          const Limits& limits, Http2Counters& counters);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Sends our SETTINGS and processes `data` (bytes already read, the preface first).
  void start(const char* data, size_t length);
  void onRead(const char* data, size_t length);
  void onTransportDrained() { send(); }

  // --- the streams' side ---
  // The response head; `end_stream`: no body follows. False when the stream is gone.
  bool submitResponse(int32_t stream_id, const ResponseFields& fields, bool end_stream);
  void appendBody(int32_t stream_id, const char* data, size_t length);
  void endBody(int32_t stream_id);
  // Ends the body with a HEADERS frame of trailer fields (END_STREAM) after the DATA.
  void endBodyWithTrailers(int32_t stream_id, const ResponseFields& trailers);
  size_t bufferedBody(int32_t stream_id) const;
  void resetStream(int32_t stream_id, uint32_t error_code);
  // Opens the flow-control windows by `length` request body bytes.
  void consume(int32_t stream_id, size_t length);

  // Graceful drain: GOAWAY with the last stream id processed; open streams finish, then
  // onSessionDone().
  void shutdown();
  // The transport is closing: every stream is closed (onStreamClose), nothing more is
  // sent.
  void closeAllStreams();
  size_t openStreams() const { return streams_.size(); }
  // True when response bytes wait for the client and none went out since the previous
  // call: its windows stay shut or it does not read. Asked once per idle timeout.
  bool stalled();
  // A deferred send is scheduled: the owner must not free the session before it ran.
  bool sendScheduled() const { return send_scheduled_; }

 private:
  struct Stream;
  struct RateWindow {
    uint64_t start_ms = 0;
    uint32_t count = 0;
  };

  void send();
  void scheduleSend();
  static void onDeferredSend(void* self);
  Stream* find(int32_t stream_id) const;
  // Counts an event in `w`; true when the limit is passed (the connection was ended).
  bool overRate(RateWindow& w, uint32_t max, Counter& counter);
  void terminate(uint32_t error_code);
  void closeStream(Stream* s, uint32_t error_code);

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                      void* self);
  static int onBeginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* self);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int onDataChunk(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                         size_t length, void* self);
  static int onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* self);
  static ssize_t readBody(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void* self);

  LoopContext& loop_;
  net::Transport& transport_;
  SessionHandler& handler_;
  Limits limits_;
  Http2Counters& counters_;
  nghttp2_session* session_ = nullptr;
  std::unordered_set<Stream*> streams_;
  std::vector<int32_t> drained_;  // streams to tell onStreamDrained after the send
  RateWindow resets_, control_, empty_;
  uint32_t continuations_ = 0;
  uint64_t bytes_sent_ = 0;
  uint64_t sent_at_check_ = 0;
  bool send_scheduled_ = false;
  bool sending_ = false;
  bool terminated_ = false;  // GOAWAY for an error queued: input is ignored
  bool closed_ = false;      // the transport is closing
  bool shutting_down_ = false;
  bool done_reported_ = false;
};

}  // namespace gw::http2
