#pragma once
// One worker's connection to a Redis server, over hiredis's async API on the worker's
// libuv loop (Debian's hiredis 0.14 and its libuv adapter).
//
// - Connects on first use; after a failure (refused, reset, or a call that timed out:
//   a server that stops answering) calls fail at once until a backoff has passed, then
//   it connects again. So a Redis outage costs each request nothing but the policy its
//   caller applies, not a timeout each.
// - Every call is bounded by its timeout. A caller that goes away cancels its call;
//   a late reply to a timed-out or cancelled call is dropped.
// - Lua scripts registered with ensureScript() are loaded on every new connection (and
//   again after a NOSCRIPT error), so callers can use EVALSHA.
// - Its poll handle does not keep the loop alive; close() frees the connection.
//
// Loop-confined. A WorkerResource (gateway/filter/worker_resources.h): one per worker
// and server address, shared by every filter on that worker that talks to it.

#include <hiredis/async.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/loop_context.h"
#include "gateway/core/timer.h"
#include "gateway/filter/worker_resources.h"

namespace gw::redis {

// What waits for a reply. The reply is valid only during onReply; null when the call
// failed (no connection, timeout, disconnect). The client is done with the waiter
// before onReply runs, so onReply may end the waiter's life.
class Waiter {
 public:
  virtual void onReply(const redisReply* reply) = 0;

 protected:
  ~Waiter() = default;
};

struct ClientOptions {
  std::string host;  // an IP address: nothing resolves names on a worker's loop
  uint16_t port = 6379;
  uint64_t timeout_ms = 50;
  size_t max_pending = 4096;      // calls in flight beyond this fail at once
  uint64_t min_backoff_ms = 100;  // after a failure, doubling up to max_backoff_ms
  uint64_t max_backoff_ms = 2000;
};

class Client final : public filter::WorkerResource {
 public:
  Client(LoopContext& loop, ClientOptions options);
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // The SHA-1 of a script, as EVALSHA names it.
  static std::string scriptSha(std::string_view script);
  // Loads the script on every connection from now on (cheap when already known).
  void ensureScript(const std::string& sha, std::string_view script);

  // Sends a command. Returns a call id for cancel(), or 0 when the call failed at once
  // (server down and backing off, too many calls in flight): the waiter is not called.
  uint64_t call(Waiter* waiter, int argc, const char** argv, const size_t* lengths);
  // The waiter goes away: it will not be called for this call.
  void cancel(uint64_t id);

  bool connected() const { return connected_; }
  void close() override;

 private:
  struct Pending;
  static void onConnect(const redisAsyncContext* ac, int status);
  static void onDisconnect(const redisAsyncContext* ac, int status);
  static void onReplyCb(redisAsyncContext* ac, void* reply, void* privdata);
  static void onTimeout(void* pending);
  bool connect();
  void loadScripts();
  // The connection failed: drop it and back off before the next one.
  void fail(const char* why);
  Pending* acquire();
  void release(Pending* p);

  LoopContext& loop_;
  ClientOptions options_;
  redisAsyncContext* ac_ = nullptr;
  bool connected_ = false;
  bool closed_ = false;
  bool down_logged_ = false;
  uint64_t retry_at_ms_ = 0;
  uint64_t backoff_ms_ = 0;
  uint64_t next_id_ = 1;
  size_t in_flight_ = 0;
  std::vector<std::pair<std::string, std::string>> scripts_;  // sha, text
  std::vector<std::unique_ptr<Pending>> all_;
  std::vector<Pending*> free_;
};

}  // namespace gw::redis
