#define CATCH_CONFIG_MAIN
#include "gateway/core/read_poller.h"

#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <vector>

namespace gw {
namespace {

// Readers are eventfds: readable once written, empty again once read. One descriptor
// each, so a test can watch more than a batch of them.
struct Bench;

struct Reader {
  Bench* bench;
  int id;
  int fd;
  bool drain = true;  // read the eventfd when told it is readable
  bool post_again = false;
  std::vector<uint32_t> events;  // the bits each call got
};

struct Bench {
  uv_loop_t loop;
  std::unique_ptr<ReadPoller> poller;
  int turn = 0;
  struct Heard {
    int turn;
    int id;
  };
  std::vector<Heard> heard;
  std::vector<std::unique_ptr<Reader>> readers;

  Bench() {
    uv_loop_init(&loop);
    poller = std::make_unique<ReadPoller>(&loop);
    // As a reading connection does: without a reader the loop has nothing to run for.
    poller->retain();
  }
  ~Bench() {
    if (poller->reading() != 0) poller->release();
    poller->close();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    for (auto& r : readers) ::close(r->fd);
  }

  Reader& make() {
    auto r = std::make_unique<Reader>();
    r->bench = this;
    r->id = static_cast<int>(readers.size());
    r->fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    REQUIRE(r->fd >= 0);
    readers.push_back(std::move(r));
    return *readers.back();
  }
  void watch(Reader& r) { REQUIRE(poller->watch(r.fd, &r, &Bench::onReady) == 0); }
  Reader& add() {
    Reader& r = make();
    watch(r);
    return r;
  }

  static void signal(Reader& r) {
    uint64_t one = 1;
    REQUIRE(::write(r.fd, &one, sizeof one) == sizeof one);
  }

  // One loop turn (poll timeout 0); returns the ids heard in it, in order.
  std::vector<int> runTurn() {
    ++turn;
    size_t before = heard.size();
    uv_run(&loop, UV_RUN_NOWAIT);
    std::vector<int> ids;
    for (size_t i = before; i < heard.size(); ++i) {
      CHECK(heard[i].turn == turn);
      ids.push_back(heard[i].id);
    }
    return ids;
  }

  static void onReady(void* p, uint32_t events) {
    auto* r = static_cast<Reader*>(p);
    r->events.push_back(events);
    r->bench->heard.push_back({r->bench->turn, r->id});
    if (r->drain && events != ReadPoller::kPostedEvents) {  // a post brings no new bytes
      uint64_t value = 0;
      CHECK(::read(r->fd, &value, sizeof value) == static_cast<ssize_t>(sizeof value));
    }
    if (r->post_again) {
      r->post_again = false;
      r->bench->poller->post(r);
    }
  }
};

void raiseFdLimit(rlim_t want) {
  rlimit lim{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &lim) == 0);
  if (lim.rlim_cur >= want) return;
  lim.rlim_cur = lim.rlim_max < want ? lim.rlim_max : want;
  REQUIRE(setrlimit(RLIMIT_NOFILE, &lim) == 0);
  REQUIRE(lim.rlim_cur >= want);
}

TEST_CASE("a descriptor readable when watched is reported in the next turn") {
  Bench b;
  Reader& early = b.make();
  Bench::signal(early);  // bytes before the watch: no edge will come after it
  b.watch(early);
  Reader& late = b.add();
  Bench::signal(late);
  CHECK(b.runTurn() == std::vector<int>{0, 1});
  CHECK(b.runTurn().empty());
}

TEST_CASE("readiness is reported once per arrival, not again while bytes wait unread") {
  Bench b;
  Reader& r = b.add();
  r.drain = false;
  Bench::signal(r);
  CHECK(b.runTurn() == std::vector<int>{0});
  // Level-triggered polling would report the unread bytes every turn.
  CHECK(b.runTurn().empty());
  CHECK(b.runTurn().empty());
  Bench::signal(r);  // new bytes: a new edge
  CHECK(b.runTurn() == std::vector<int>{0});
}

TEST_CASE("sockets are served in the order their bytes arrived, whoever was served last turn") {
  Bench b;
  Reader& a = b.add();
  Reader& c = b.add();
  Reader& d = b.add();
  Bench::signal(a);
  CHECK(b.runTurn() == std::vector<int>{0});
  // a was served last turn; c and d became ready before a did again. Level-triggered,
  // epoll would put a (queued again right after it was reported) first.
  Bench::signal(d);
  Bench::signal(c);
  Bench::signal(a);
  CHECK(b.runTurn() == std::vector<int>{2, 1, 0});
}

TEST_CASE("at most a batch of sockets per turn; the rest come next turn, oldest first") {
  constexpr int kExtra = 8;
  raiseFdLimit(ReadPoller::kBatch + kExtra + 64);
  Bench b;
  for (int i = 0; i < ReadPoller::kBatch + kExtra; ++i) b.add();
  for (auto& r : b.readers) Bench::signal(*r);
  std::vector<int> first = b.runTurn();
  REQUIRE(first.size() == static_cast<size_t>(ReadPoller::kBatch));
  for (int i = 0; i < ReadPoller::kBatch; ++i) CHECK(first[i] == i);
  std::vector<int> second = b.runTurn();
  REQUIRE(second.size() == static_cast<size_t>(kExtra));
  for (int i = 0; i < kExtra; ++i) CHECK(second[i] == ReadPoller::kBatch + i);
  CHECK(b.runTurn().empty());
}

TEST_CASE("a posted reader is called in a later turn; a withdrawn post is not") {
  Bench b;
  Reader& a = b.add();
  Reader& c = b.add();
  a.post_again = true;  // a posts itself while it is served
  Bench::signal(a);
  CHECK(b.runTurn() == std::vector<int>{0});
  CHECK(b.poller->posted() == 1);
  CHECK(b.runTurn() == std::vector<int>{0});  // no new bytes: the post called it
  CHECK(b.poller->posted() == 0);
  REQUIRE(a.events.size() == 2);
  CHECK((a.events[0] & EPOLLIN) != 0);
  CHECK(a.events[1] == ReadPoller::kPostedEvents);
  CHECK(b.runTurn().empty());

  b.poller->post(&a);
  b.poller->post(&c);
  b.poller->unpost(&a);
  CHECK(b.runTurn() == std::vector<int>{1});
  CHECK(b.runTurn().empty());
}

TEST_CASE("an end that arrives with the last bytes is flagged in the same report") {
  Bench b;
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0);
  Reader& r = b.make();
  ::close(r.fd);
  r.fd = pair[0];
  r.drain = false;
  b.watch(r);
  // Bytes alone: a short read empties the socket, nothing more to look for.
  REQUIRE(::write(pair[1], "abc", 3) == 3);
  CHECK(b.runTurn() == std::vector<int>{0});
  REQUIRE(r.events.size() == 1);
  CHECK((r.events.back() & EPOLLIN) != 0);
  CHECK((r.events.back() & EPOLLRDHUP) == 0);
  char buf[8];
  REQUIRE(::read(pair[0], buf, sizeof buf) == 3);
  // Bytes and the FIN together: one report, which says the end is in, so the reader
  // reads past the short read to the 0.
  REQUIRE(::write(pair[1], "def", 3) == 3);
  REQUIRE(::shutdown(pair[1], SHUT_WR) == 0);
  CHECK(b.runTurn() == std::vector<int>{0});
  REQUIRE(r.events.size() == 2);
  CHECK((r.events.back() & EPOLLRDHUP) != 0);
  CHECK(b.runTurn().empty());
  ::close(pair[1]);
}

TEST_CASE("the poller keeps its loop alive exactly while a socket is reading") {
  Bench b;
  b.add();
  b.poller->release();                  // the Bench's own reader
  CHECK_FALSE(uv_loop_alive(&b.loop));  // watched but not reading: a finished loop may end
  b.poller->retain();
  b.poller->retain();
  CHECK(uv_loop_alive(&b.loop));
  b.poller->release();
  CHECK(uv_loop_alive(&b.loop));
  b.poller->release();
  CHECK_FALSE(uv_loop_alive(&b.loop));
}

}  // namespace
}  // namespace gw
