#pragma once
// Transport: the byte stream a codec talks to. Plain TCP implements it today; TLS
// (OpenSSL over memory BIOs) will implement the same interface, so the HTTP code never
// knows which one it has.
//
// Contract:
// - Loop-confined: every method is called, and every handler callback runs, on the
//   transport's loop thread.
// - Reads are delivered into the loop's shared read slab: `onRead` data is valid only
//   for the duration of the call.
// - Writes are staged and then flushed: `stage()` records a pointer (no copy), so the
//   memory must stay valid until the next `flush()`; `stageCopy()` copies. `flush()`
//   first tries a direct write (one writev for everything staged) and copies whatever
//   the kernel did not take into a queued write. So one message = one system call in
//   the common case, and nothing the caller passed is referenced after flush().
// - `close()` is idempotent. After the handle is closed, `onClosed()` runs exactly once;
//   only then may the owner free the transport's memory.

#include <uv.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace gw::net {

class TransportHandler {
 public:
  virtual ~TransportHandler() = default;
  // Bytes arrived. Valid only during this call.
  virtual void onRead(const char* data, size_t length) = 0;
  // The peer finished sending (status == UV_EOF) or the connection failed (< 0).
  virtual void onReadEnd(int status) = 0;
  // Queued output fell to the low-water mark after having passed the high-water mark.
  virtual void onDrained() {}
  // A write failed (the connection is unusable; close it).
  virtual void onWriteError(int status) { (void)status; }
  // The handle is closed: the owner may free the transport now.
  virtual void onClosed() = 0;
};

class Transport {
 public:
  static constexpr size_t kHighWater = 256 * 1024;
  static constexpr size_t kLowWater = 64 * 1024;

  virtual ~Transport() = default;
  void setHandler(TransportHandler* handler) { handler_ = handler; }
  TransportHandler* handler() const { return handler_; }

  virtual void startReading() = 0;
  virtual void stopReading() = 0;
  virtual void stage(const char* data, size_t length) = 0;
  virtual void stageCopy(const char* data, size_t length) = 0;
  void stageCopy(std::string_view text) { stageCopy(text.data(), text.size()); }
  // True when stage() copies too, so that staged bytes may wait past the caller's
  // callback for a later flush (TLS, which keeps plaintext until it encrypts).
  virtual bool stageCopies() const { return false; }
  // Sends everything staged. Returns false when the connection is broken.
  virtual bool flush() = 0;
  // Drops everything staged since the last flush, so that a response that fails before
  // any of it was sent can be replaced by an error. False when that cannot be done
  // (an HTTP/2 stream turns bytes into frames as they are staged).
  virtual bool discardStaged() { return false; }
  // Bytes accepted by flush() but not yet taken by the kernel.
  virtual size_t queuedBytes() const = 0;
  bool overHighWater() const { return queuedBytes() > kHighWater; }
  // Sends what is staged and closes when the kernel took all of it (TLS: with
  // close_notify in the same write); true when closed. False when output still waits
  // in user space: the stream stays open, so shut it down or linger instead.
  virtual bool flushAndClose() {
    bool ok = flush();
    if (ok && queuedBytes() != 0) return false;
    close();
    return true;
  }
  // Half-close after queued output is sent (FIN).
  virtual void shutdownWrite() = 0;
  virtual void close() = 0;
  // Closes with a TCP reset instead of FIN (over TLS: without close_notify), dropping
  // unsent output: a peer that reads a body until the close can tell it was cut short.
  virtual void closeReset() { close(); }
  virtual bool closing() const = 0;

 protected:
  TransportHandler* handler_ = nullptr;
};

}  // namespace gw::net
