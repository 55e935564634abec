#include "gateway/redis/client.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstring>

#include "gateway/core/log.h"

namespace gw::redis {

struct Client::Pending {
  explicit Pending(Client* c) : client(c), timer(this, &Client::onTimeout) {}
  Client* client;
  Waiter* waiter = nullptr;  // null once answered, timed out or cancelled
  uint64_t id = 0;
  Timer timer;
};

namespace {

std::string sha1Hex(std::string_view text) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

// hiredis's event hooks on a uv_poll_t. Ours rather than hiredis 0.14's libuv adapter:
// that one drops poll errors (libuv reports a refused connect or a reset as a status,
// with no events), so a dead server was only noticed at the call's timeout.
struct Poller {
  uv_poll_t handle;
  redisAsyncContext* ac = nullptr;  // null once hiredis let go (cleanup)
  int events = 0;
};

void onPoll(uv_poll_t* handle, int status, int events) {
  auto* p = static_cast<Poller*>(handle->data);
  // On an error, let hiredis read and write to find out which (it then disconnects).
  int ready = status < 0 ? (p->events | UV_READABLE) : events;
  if (p->ac != nullptr && (ready & UV_READABLE)) redisAsyncHandleRead(p->ac);
  if (p->ac != nullptr && (ready & UV_WRITABLE)) redisAsyncHandleWrite(p->ac);
}

void setEvents(Poller* p, int events) {
  p->events = events;
  if (events != 0) {
    uv_poll_start(&p->handle, events, &onPoll);
  } else {
    uv_poll_stop(&p->handle);
  }
}

void addRead(void* data) {
  auto* p = static_cast<Poller*>(data);
  setEvents(p, p->events | UV_READABLE);
}
void delRead(void* data) {
  auto* p = static_cast<Poller*>(data);
  setEvents(p, p->events & ~UV_READABLE);
}
void addWrite(void* data) {
  auto* p = static_cast<Poller*>(data);
  setEvents(p, p->events | UV_WRITABLE);
}
void delWrite(void* data) {
  auto* p = static_cast<Poller*>(data);
  setEvents(p, p->events & ~UV_WRITABLE);
}
void cleanup(void* data) {
  auto* p = static_cast<Poller*>(data);
  p->ac = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&p->handle),
           [](uv_handle_t* h) { delete static_cast<Poller*>(h->data); });
}

bool attach(redisAsyncContext* ac, uv_loop_t* loop) {
  auto* p = new Poller;
  if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
    delete p;
    return false;
  }
  // The connection must never be what keeps a stopping worker's loop running.
  uv_unref(reinterpret_cast<uv_handle_t*>(&p->handle));
  p->handle.data = p;
  p->ac = ac;
  ac->ev.data = p;
  ac->ev.addRead = &addRead;
  ac->ev.delRead = &delRead;
  ac->ev.addWrite = &addWrite;
  ac->ev.delWrite = &delWrite;
  ac->ev.cleanup = &cleanup;
  return true;
}

bool isNoScript(const redisReply* reply) {
  return reply != nullptr && reply->type == REDIS_REPLY_ERROR && reply->str != nullptr &&
         std::strncmp(reply->str, "NOSCRIPT", 8) == 0;
}

}  // namespace

Client::Client(LoopContext& loop, ClientOptions options)
    : loop_(loop), options_(std::move(options)) {}

Client::~Client() {
  // close() ran first (the worker closes its resources before the loop's last run).
  if (ac_ != nullptr) redisAsyncFree(ac_);
}

std::string Client::scriptSha(std::string_view script) { return sha1Hex(script); }

void Client::ensureScript(const std::string& sha, std::string_view script) {
  for (const auto& s : scripts_) {
    if (s.first == sha) return;
  }
  scripts_.emplace_back(sha, std::string(script));
  if (ac_ != nullptr) loadScripts();
}

bool Client::connect() {
  redisAsyncContext* ac = redisAsyncConnect(options_.host.c_str(), options_.port);
  if (ac == nullptr) return false;
  if (ac->err != 0) {
    redisAsyncFree(ac);
    return false;
  }
  if (!attach(ac, loop_.loop())) {
    redisAsyncFree(ac);
    return false;
  }
  ac->data = this;
  redisAsyncSetConnectCallback(ac, &Client::onConnect);
  redisAsyncSetDisconnectCallback(ac, &Client::onDisconnect);
  ac_ = ac;
  loadScripts();  // queued; sent once connected, before any call made after this
  return true;
}

void Client::loadScripts() {
  for (const auto& s : scripts_) {
    const char* argv[] = {"SCRIPT", "LOAD", s.second.data()};
    size_t lengths[] = {6, 4, s.second.size()};
    redisAsyncCommandArgv(ac_, nullptr, nullptr, 3, argv, lengths);
  }
}

void Client::onConnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Client*>(ac->data);
  if (self == nullptr) return;
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback, failing the queued calls.
    self->ac_ = nullptr;
    self->connected_ = false;
    self->fail(ac->errstr);
    return;
  }
  self->connected_ = true;
  if (self->down_logged_) {
    log::info("redis: connected again",
              {log::str("server", self->options_.host), log::num("port", self->options_.port)});
  }
  self->down_logged_ = false;
  self->backoff_ms_ = 0;
}

void Client::onDisconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Client*>(ac->data);
  if (self == nullptr) return;
  // hiredis frees the context after this callback.
  self->ac_ = nullptr;
  self->connected_ = false;
  if (status != REDIS_OK && !self->closed_) self->fail(ac->errstr);
}

void Client::fail(const char* why) {
  backoff_ms_ = backoff_ms_ == 0 ? options_.min_backoff_ms
                                 : std::min(backoff_ms_ * 2, options_.max_backoff_ms);
  retry_at_ms_ = uv_now(loop_.loop()) + backoff_ms_;
  if (!down_logged_) {
    log::warn("redis: unavailable; calls fail until it answers again",
              {log::str("server", options_.host), log::num("port", options_.port),
               log::str("reason", why != nullptr ? why : "")});
    down_logged_ = true;
  }
}

uint64_t Client::call(Waiter* waiter, int argc, const char** argv, const size_t* lengths) {
  if (closed_ || in_flight_ >= options_.max_pending) return 0;
  if (ac_ == nullptr) {
    if (uv_now(loop_.loop()) < retry_at_ms_) return 0;
    if (!connect()) {
      fail("cannot create a connection");
      return 0;
    }
  }
  Pending* p = acquire();
  if (redisAsyncCommandArgv(ac_, &Client::onReplyCb, p, argc, argv, lengths) != REDIS_OK) {
    release(p);
    return 0;
  }
  p->waiter = waiter;
  p->id = next_id_++;
  ++in_flight_;
  loop_.timers().arm(p->timer, options_.timeout_ms);
  return p->id;
}

void Client::cancel(uint64_t id) {
  for (auto& p : all_) {
    if (p->id == id && p->waiter != nullptr) {
      p->waiter = nullptr;
      loop_.timers().disarm(p->timer);
      return;
    }
  }
}

void Client::onReplyCb(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* p = static_cast<Pending*>(privdata);
  Client* self = p->client;
  (void)ac;
  auto* r = static_cast<redisReply*>(reply);
  Waiter* waiter = p->waiter;
  self->release(p);
  --self->in_flight_;
  if (isNoScript(r) && self->ac_ != nullptr && !self->closed_) self->loadScripts();
  // Last: the waiter may end the request, and with it the filter that waits.
  if (waiter != nullptr) waiter->onReply(r);
}

void Client::onTimeout(void* pending) {
  auto* p = static_cast<Pending*>(pending);
  Client* self = p->client;
  Waiter* waiter = p->waiter;
  p->waiter = nullptr;  // the Pending stays until hiredis answers or frees it
  // Replies come in order, so the server has not answered anything for the timeout:
  // drop the connection (failing what else waits) rather than queue more behind it.
  if (self->ac_ != nullptr) {
    redisAsyncContext* ac = self->ac_;
    self->ac_ = nullptr;
    self->connected_ = false;
    self->fail("timeout");
    ac->data = nullptr;  // no connect/disconnect callbacks for a context we dropped
    redisAsyncFree(ac);  // calls every pending callback with a null reply
  }
  if (waiter != nullptr) waiter->onReply(nullptr);
}

Client::Pending* Client::acquire() {
  if (free_.empty()) {
    all_.push_back(std::make_unique<Pending>(this));
    return all_.back().get();
  }
  Pending* p = free_.back();
  free_.pop_back();
  return p;
}

void Client::release(Pending* p) {
  loop_.timers().disarm(p->timer);
  p->waiter = nullptr;
  p->id = 0;
  free_.push_back(p);
}

void Client::close() {
  closed_ = true;
  if (ac_ != nullptr) {
    redisAsyncContext* ac = ac_;
    ac_ = nullptr;
    ac->data = nullptr;
    redisAsyncFree(ac);  // its poll handle closes on the loop's last run
  }
}

}  // namespace gw::redis
