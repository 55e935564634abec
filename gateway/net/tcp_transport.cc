#include "gateway/net/tcp_transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace gw::net {
namespace {

// A queued write owns a copy of the bytes the kernel did not take at once.
struct WriteReq {
  uv_write_t req;
  TcpTransport* transport;
  size_t length;
  char data[1];
};

constexpr size_t kMaxIov = 64;

}  // namespace

struct TcpTransport::ConnectState {
  uv_connect_t req;
  TcpTransport* transport;
  void* owner;
  ConnectCallback done;
};

TcpTransport::TcpTransport(LoopContext& ctx) {
  uv_tcp_init(ctx.loop(), &tcp_);
  tcp_.data = this;
}

TcpTransport::~TcpTransport() { releaseBatch(); }

int TcpTransport::accept(uv_stream_t* server) {
  // No TCP_NODELAY call here: Linux copies it from the listening socket, where
  // bindReusePort (and the admin listener) set it once.
  return uv_accept(server, stream());
}

int TcpTransport::connect(const SocketAddress& address, void* owner, ConnectCallback done) {
  auto* state = new ConnectState{};
  state->transport = this;
  state->owner = owner;
  state->done = done;
  state->req.data = state;
  int rc = uv_tcp_connect(&state->req, &tcp_, address.get(), &TcpTransport::onConnectCb);
  if (rc != 0) {
    delete state;
    return rc;
  }
  return 0;
}

void TcpTransport::onConnectCb(uv_connect_t* req, int status) {
  auto* state = static_cast<ConnectState*>(req->data);
  TcpTransport* self = state->transport;
  void* owner = state->owner;
  ConnectCallback done = state->done;
  delete state;
  // A transport closed while connecting gets UV_ECANCELED here; its owner is gone.
  if (self->closing_) return;
  if (status == 0) uv_tcp_nodelay(&self->tcp_, 1);
  done(owner, status);
}

// Reads per readiness: a socket that still has bytes after this many full slabs yields
// to the others of the batch and continues next turn.
constexpr int kReadsPerTurn = 4;

void TcpTransport::onReadable(void* p, uint32_t events) {
  auto* self = static_cast<TcpTransport*>(p);
  self->read_posted_ = false;
  if (self->closing_) return;
  if (!self->reading_) {
    self->read_ready_ = true;  // read when startReading() comes
    return;
  }
  // The peer's FIN (or an error) is in: it may sit behind the last bytes, where a short
  // read does not show it and no new edge will announce it.
  bool until_empty = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
  char* slab = self->ctx().readSlab();
  int fd = -1;
  uv_fileno(reinterpret_cast<uv_handle_t*>(&self->tcp_), &fd);
  for (int i = 0; i < kReadsPerTurn; ++i) {
    ssize_t n = ::read(fd, slab, LoopContext::kReadSlabSize);
    if (n > 0) {
      // A short read emptied the socket: the next bytes bring a new edge.
      self->read_ready_ = until_empty || static_cast<size_t>(n) == LoopContext::kReadSlabSize;
      self->handler_->onRead(slab, static_cast<size_t>(n));
      if (self->closing_ || !self->read_ready_ || !self->reading_) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      self->read_ready_ = false;
      return;
    }
    // EOF or an error stays readable, as level-triggered polling would report it again
    // to a reader that starts over.
    int status = n == 0 ? UV_EOF : -errno;
    self->read_ready_ = true;
    self->stopReading();
    self->handler_->onReadEnd(status);
    return;
  }
  self->postRead();
}

void TcpTransport::onWatchFailed(void* p) {
  auto* self = static_cast<TcpTransport*>(p);
  if (!self->closing_) self->handler_->onReadEnd(UV_ENOMEM);
}

void TcpTransport::postRead() {
  if (read_posted_) return;
  read_posted_ = true;
  ctx().readPoller().post(this);
}

void TcpTransport::startReading() {
  if (reading_ || closing_) return;
  if (!watched_) {
    int fd = -1;
    int rc = uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd);
    if (rc == 0) rc = ctx().readPoller().watch(fd, this, &TcpTransport::onReadable);
    if (rc != 0) {
      // Out of epoll watches or memory: the connection cannot read. Its owner hears so
      // as a failed read, once this call has returned.
      ctx().defer(&TcpTransport::onWatchFailed, this);
      return;
    }
    watched_ = true;
  }
  reading_ = true;
  ctx().readPoller().retain();
  if (read_ready_) postRead();
}

void TcpTransport::stopReading() {
  if (!reading_) return;
  reading_ = false;
  ctx().readPoller().release();
}

void TcpTransport::stage(const char* data, size_t length) {
  if (length == 0) return;
  if (batch_ == nullptr) batch_ = ctx().takeWriteBatch();
  batch_->entries.push_back({data, length, 0, false});
}

void TcpTransport::stageCopy(const char* data, size_t length) {
  if (length == 0) return;
  if (batch_ == nullptr) batch_ = ctx().takeWriteBatch();
  std::vector<WriteBatch::Entry>& entries = batch_->entries;
  std::string& copies = batch_->copies;
  // Coalesce with the previous copied entry when adjacent in the copies.
  if (!entries.empty() && entries.back().copied &&
      entries.back().copy_offset + entries.back().length == copies.size()) {
    entries.back().length += length;
  } else {
    entries.push_back({nullptr, length, copies.size(), true});
  }
  copies.append(data, length);
}

bool TcpTransport::flush() {
  if (batch_ == nullptr) return !write_failed_;
  if (closing_ || write_failed_) {
    releaseBatch();
    return false;
  }
  const std::vector<WriteBatch::Entry>& staged = batch_->entries;
  const std::string& copies = batch_->copies;
  uv_buf_t bufs[kMaxIov];
  size_t done_entries = 0;
  while (done_entries < staged.size()) {
    size_t n = 0;
    size_t batch_total = 0;
    for (size_t i = done_entries; i < staged.size() && n < kMaxIov; ++i, ++n) {
      const WriteBatch::Entry& s = staged[i];
      const char* p = s.copied ? copies.data() + s.copy_offset : s.data;
      bufs[n] = uv_buf_init(const_cast<char*>(p), static_cast<unsigned>(s.length));
      batch_total += s.length;
    }
    size_t written = 0;
    if (tcp_.write_queue_size == 0) {
      int rc = uv_try_write(stream(), bufs, static_cast<unsigned>(n));
      if (rc >= 0) {
        written = static_cast<size_t>(rc);
      } else if (rc != UV_EAGAIN) {
        write_failed_ = true;
        releaseBatch();
        return false;
      }
    }
    if (written < batch_total) {
      size_t left = batch_total - written;
      auto* w = static_cast<WriteReq*>(std::malloc(sizeof(WriteReq) + left));
      if (w == nullptr) std::abort();  // out of memory: nothing sane to do
      w->transport = this;
      w->length = left;
      w->req.data = w;
      // Copy the unwritten tail of the iovecs.
      size_t skip = written;
      size_t at = 0;
      for (size_t i = 0; i < n; ++i) {
        size_t len = bufs[i].len;
        if (skip >= len) {
          skip -= len;
          continue;
        }
        std::memcpy(w->data + at, bufs[i].base + skip, len - skip);
        at += len - skip;
        skip = 0;
      }
      uv_buf_t b = uv_buf_init(w->data, static_cast<unsigned>(left));
      int rc = uv_write(&w->req, stream(), &b, 1, &TcpTransport::onWriteCb);
      if (rc != 0) {
        std::free(w);
        write_failed_ = true;
        releaseBatch();
        return false;
      }
    }
    done_entries += n;
  }
  releaseBatch();
  if (tcp_.write_queue_size > kHighWater) above_high_water_ = true;
  return true;
}

void TcpTransport::onWriteCb(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  TcpTransport* self = w->transport;
  std::free(w);
  if (self->closing_) return;
  if (status < 0) {
    self->write_failed_ = true;
    self->handler_->onWriteError(status);
    return;
  }
  if (self->above_high_water_ && self->tcp_.write_queue_size <= kLowWater) {
    self->above_high_water_ = false;
    self->handler_->onDrained();
  }
}

void TcpTransport::shutdownWrite() {
  if (closing_) return;
  auto* req = new uv_shutdown_t;
  req->data = this;
  if (uv_shutdown(req, stream(), &TcpTransport::onShutdownCb) != 0) {
    delete req;
    if (close_after_shutdown_) close();
  }
}

void TcpTransport::shutdownThenClose() {
  close_after_shutdown_ = true;
  shutdownWrite();
}

void TcpTransport::onShutdownCb(uv_shutdown_t* req, int) {
  auto* self = static_cast<TcpTransport*>(req->data);
  delete req;
  if (self->close_after_shutdown_) self->close();
}

void TcpTransport::close() {
  if (closing_) return;
  beginClose();
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &TcpTransport::onCloseCb);
}

void TcpTransport::closeReset() {
  if (closing_) return;
  beginClose();
  // libuv refuses a reset while a shutdown is pending (the FIN is on its way anyway).
  if (uv_tcp_close_reset(&tcp_, &TcpTransport::onCloseCb) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &TcpTransport::onCloseCb);
  }
}

void TcpTransport::beginClose() {
  closing_ = true;
  stopReading();
  // The kernel drops the socket from the ReadPoller when libuv closes it; a posted read
  // must not outlive the transport. Asked whatever read_posted_ says: an edge that came
  // after the post cleared the flag while the post still waits.
  ctx().readPoller().unpost(this);
  releaseBatch();
}

void TcpTransport::onCloseCb(uv_handle_t* handle) {
  auto* self = static_cast<TcpTransport*>(handle->data);
  self->handler_->onClosed();
}

SocketAddress TcpTransport::peerAddress() const {
  SocketAddress out;
  int len = sizeof(out.storage);
  // On failure the storage stays zeroed: family 0, length() 0.
  (void)uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&out.storage), &len);
  return out;
}

int bindReusePort(uv_tcp_t* server, const SocketAddress& address) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      // Accepted sockets inherit it, which saves a setsockopt per connection.
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    int err = -errno;
    ::close(fd);
    return err;
  }
  if (address.family() == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, address.get(), address.length()) != 0) {
    int err = -errno;
    ::close(fd);
    return err;
  }
  int rc = uv_tcp_open(server, fd);
  if (rc != 0) ::close(fd);
  return rc;  // the caller closes `server` on failure (uv_tcp_init succeeded)
}

SocketAddress boundAddress(const uv_tcp_t* server) {
  SocketAddress out;
  int len = sizeof(out.storage);
  // On failure the storage stays zeroed: family 0, length() 0.
  (void)uv_tcp_getsockname(server, reinterpret_cast<sockaddr*>(&out.storage), &len);
  return out;
}

}  // namespace gw::net
