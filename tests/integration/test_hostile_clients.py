"""Hostile clients at scale (issue 8): slowloris and connection floods.

Slowloris: 2,000 connections each trickle one header byte about every second while a
normal client keeps being served; every slow connection is cut at the header-read
timeout (2 s here), not before it and not never. Connection flood: with
max_connections = 50, 150 connections beyond the limit are closed quickly while the
50 established ones keep being served.

The many sockets are driven from one thread with non-blocking sockets and
`selectors`; every wait is bounded."""

import os
import resource
import selectors
import socket
import threading
import time

import harness
from harness import (IO_TIMEOUT, SCALE, EchoUpstream, GatewayTestCase, RawClient, config,
                     read_response_or_close)

SLOW_CLIENTS = 2000
HEADER_READ_TIMEOUT = 2.0
SLOW_HEAD = (b"GET /slow HTTP/1.1\r\nHost: test.local\r\nX-Slow: " + b"s" * 200)


def raise_nofile(wanted):
    """Raises this process's soft RLIMIT_NOFILE (inherited by the gateway it starts)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def connect_many(addr, n, sel, batch=200, connected=None, on_connect=None):
    """n non-blocking connects, `batch` in flight at a time (so the listen backlog
    never overflows). Returns the connected sockets; registers none. `connected`
    (a dict), if given, gets each socket's connect completion time; `on_connect`, if
    given, is called with each socket as its connect completes."""
    done = []
    pending = 0
    started = 0
    deadline = time.monotonic() + IO_TIMEOUT * 3
    while len(done) < n:
        while started < n and pending < batch:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.connect_ex(addr)
            sel.register(s, selectors.EVENT_WRITE, "connecting")
            started += 1
            pending += 1
        if time.monotonic() > deadline:
            raise AssertionError("only %d of %d connects completed" % (len(done), n))
        for key, _ in sel.select(timeout=1.0):
            if key.data != "connecting":
                continue
            s = key.fileobj
            sel.unregister(s)
            pending -= 1
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                s.close()
                raise AssertionError("connect failed: %s" % os.strerror(err))
            done.append(s)
            if connected is not None:
                connected[s] = time.monotonic()
            if on_connect is not None:
                on_connect(s)
    return done


class NormalClient(threading.Thread):
    """Keeps sending requests (alternately on a kept-alive connection and on a new
    one) until stopped; records every outcome."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.addr = addr
        self.stop_event = threading.Event()
        self.ok = 0
        self.failures = []
        self.worst = 0.0

    def run(self):
        keep = None
        i = 0
        while not self.stop_event.is_set():
            i += 1
            start = time.monotonic()
            try:
                if i % 2 == 0:
                    c = RawClient(self.addr)
                    resp = c.request("GET", "/normal-new-%d" % i)
                    c.close()
                else:
                    if keep is None:
                        keep = RawClient(self.addr)
                    resp = keep.request("GET", "/normal-keep-%d" % i)
                if resp.status == 200:
                    self.ok += 1
                else:
                    self.failures.append("request %d: status %d" % (i, resp.status))
            except Exception as e:  # recorded and reported by the test
                self.failures.append("request %d: %r" % (i, e))
                if keep is not None:
                    keep.close()
                keep = None
            self.worst = max(self.worst, time.monotonic() - start)
            self.stop_event.wait(0.05)
        if keep is not None:
            keep.close()


class Slowloris(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        have = raise_nofile(SLOW_CLIENTS * 2 + 512)
        if have < SLOW_CLIENTS + 256:
            raise AssertionError("RLIMIT_NOFILE is %d, need %d" % (have, SLOW_CLIENTS + 256))
        cls.echo = cls.own(EchoUpstream("echo"))
        cls.gw = cls.start_gateway(config(
            {"echo": [cls.echo.address]}, workers=1,
            limits={"max_connections": SLOW_CLIENTS + 500},
            listener_limits={"header_read_timeout": "%ds" % HEADER_READ_TIMEOUT,
                             "idle_timeout": "30s"}))

    def test_slow_clients_cut_at_header_timeout_normal_client_served(self):
        baseline_fds = open_fds(self.gw.pid)
        normal = NormalClient(self.gw.addr)
        sel = selectors.DefaultSelector()
        socks = []
        self.addCleanup(sel.close)
        self.addCleanup(lambda: [s.close() for s in socks])
        # Per slow socket: bytes sent, time of the first byte, next send time, bytes
        # received, time it was cut.
        sent = {}
        first = {}
        next_send = {}
        got = {}
        cut = {}

        # The first byte goes out as each connect completes: the header-read timer runs
        # from the accept, and opening 2,000 connections can take longer than the timeout
        # on a slow (sanitizer) build, so a first byte sent only after the last connect
        # could come too late for the earliest sockets.
        def send_first(s):
            now = time.monotonic()
            sent[s] = 0
            got[s] = b""
            try:
                sent[s] = s.send(SLOW_HEAD[:1])
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass
            if sent[s]:
                first[s] = now
            next_send[s] = now + 1.0

        connected = {}
        socks += connect_many(self.gw.addr, SLOW_CLIENTS, sel, connected=connected,
                              on_connect=send_first)
        normal.start()
        self.addCleanup(normal.stop_event.set)
        now = time.monotonic()
        for s in socks:
            sel.register(s, selectors.EVENT_READ, "slow")

        deadline = now + HEADER_READ_TIMEOUT + 1.0 + 15.0 * SCALE
        while len(cut) < len(socks) and time.monotonic() < deadline:
            now = time.monotonic()
            for s in socks:
                if s in cut or next_send[s] > now or sent[s] >= len(SLOW_HEAD):
                    continue
                try:
                    s.send(SLOW_HEAD[sent[s]:sent[s] + 1])
                except (BrokenPipeError, ConnectionResetError):
                    cut[s] = now
                    sel.unregister(s)
                    continue
                except BlockingIOError:
                    pass
                else:
                    if sent[s] == 0:
                        first[s] = now
                    sent[s] += 1
                next_send[s] = now + 1.0
            for key, _ in sel.select(timeout=0.05):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except (ConnectionResetError, BlockingIOError) as e:
                    data = b"" if isinstance(e, ConnectionResetError) else None
                if data is None:
                    continue
                if data:
                    got[s] += data
                    continue
                cut[s] = time.monotonic()
                sel.unregister(s)
        normal.stop_event.set()
        normal.join(IO_TIMEOUT)

        never = [s for s in socks if s not in cut]
        self.assertEqual(len(never), 0, "%d of %d slow clients were never cut"
                         % (len(never), len(socks)))
        self.assertEqual(len(first), len(socks), "some slow clients never sent a byte")
        # On a new connection the header-read timer runs from the accept (the first
        # bytes here went out up to 1 s after the connect), so: cut at the timeout
        # counted from the connect, not well before it (the bound leaves room for a
        # coarse timer), and not long after the first byte (a generous bound).
        lived = sorted(cut[s] - connected[s] for s in socks)
        since_first = sorted(cut[s] - first[s] for s in socks)
        self.assertGreaterEqual(lived[0], HEADER_READ_TIMEOUT * 0.5,
                                "a slow client was cut %.2fs after its connect" % lived[0])
        self.assertLessEqual(since_first[-1], HEADER_READ_TIMEOUT + 10.0 * SCALE,
                             "a slow client was cut only %.2fs after its first byte"
                             % since_first[-1])
        most_bytes = max(sent.values())
        self.assertGreaterEqual(most_bytes, 2, "the slow clients did not trickle")
        answered = sum(1 for s in socks if got[s])
        with_408 = sum(1 for s in socks if got[s].startswith(b"HTTP/1.1 408"))
        self.assertEqual(with_408, answered,
                         "a slow client got something other than a 408: %r"
                         % next((got[s][:100] for s in socks
                                 if got[s] and not got[s].startswith(b"HTTP/1.1 408")), b""))
        print("\nslowloris: %d slow clients cut %.2f..%.2fs after connect (median %.2fs), "
              "at most %d bytes sent each, %d saw the 408; normal client: %d requests ok, "
              "worst %.3fs" % (len(lived), lived[0], lived[-1], lived[len(lived) // 2],
                               most_bytes, with_408, normal.ok, normal.worst))

        # The normal client was served the whole time.
        self.assertEqual(normal.failures, [], "normal client failures: %r" % normal.failures[:5])
        self.assertGreater(normal.ok, 10, "the normal client hardly got served")
        self.assertLess(normal.worst, 5.0 * SCALE, "a normal request took %.2fs" % normal.worst)
        # Nothing of the slow clients reached the upstream.
        self.assertFalse(any(r["target"] == "/slow" for r in list(self.echo.requests)))
        # And the gateway released their sockets.
        for s in socks:
            s.close()
        self.assertTrue(harness.wait_until(lambda: open_fds(self.gw.pid) <= baseline_fds + 4,
                                           timeout=IO_TIMEOUT),
                        "gateway holds %d fds, %d before the test"
                        % (open_fds(self.gw.pid), baseline_fds))


class ConnectionFlood(GatewayTestCase):
    LIMIT = 50
    EXTRA = 150

    @classmethod
    def setUpClass(cls):
        raise_nofile(4096)
        cls.echo = cls.own(EchoUpstream("echo"))
        cls.gw = cls.start_gateway(config(
            {"echo": [cls.echo.address]}, workers=1,
            limits={"max_connections": cls.LIMIT, "idle_timeout": "60s",
                    "header_read_timeout": "30s"}))

    def test_extra_connections_closed_established_served(self):
        established = []
        for i in range(self.LIMIT):
            c = self.client()
            self.assertEqual(c.request("GET", "/est-%d" % i).status, 200,
                             "established connection %d" % i)
            established.append(c)
        before = self.echo.request_count()

        # The flood: EXTRA more connections, each sending a request at once.
        sel = selectors.DefaultSelector()
        self.addCleanup(sel.close)
        flood = connect_many(self.gw.addr, self.EXTRA, sel)
        self.addCleanup(lambda: [s.close() for s in flood])
        start = time.monotonic()
        for s in flood:
            try:
                s.send(harness.build_request("GET", "/flood"))
            except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                pass
            sel.register(s, selectors.EVENT_READ)
        closed_at = {}
        got = {}
        deadline = start + 5.0 * SCALE
        while len(closed_at) < len(flood) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.1):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except ConnectionResetError:
                    data = b""
                except BlockingIOError:
                    continue
                if data:
                    got[s] = got.get(s, b"") + data
                    continue
                closed_at[s] = time.monotonic() - start
                sel.unregister(s)
        open_ones = len(flood) - len(closed_at)
        self.assertEqual(open_ones, 0, "%d of %d connections beyond max_connections were "
                         "not closed within %.1fs" % (open_ones, len(flood), 5.0 * SCALE))
        served = [g for g in got.values() if g.startswith(b"HTTP/1.1 200")]
        self.assertEqual(served, [], "%d flood connections were served" % len(served))
        self.assertEqual(self.echo.request_count(), before, "a flood request reached upstream")
        print("\nflood: %d extra connections closed within %.3fs (max); responses: %r"
              % (len(flood), max(closed_at.values()),
                 sorted(set(g[:12] for g in got.values()))))

        # The established connections are still served.
        for i, c in enumerate(established):
            resp = c.request("GET", "/est-again-%d" % i)
            self.assertEqual(resp.status, 200, "established connection %d after the flood" % i)

        # Closing established ones makes room again.
        for c in established[:5]:
            c.close()

        def new_connection_served():
            c = RawClient(self.gw.addr, timeout=2.0 * SCALE, connect=False)
            try:
                c.connect()
                c.send(harness.build_request("GET", "/after-flood"))
                resp, _ = read_response_or_close(c)
                return resp is not None and resp.status == 200
            except OSError:
                return False
            finally:
                c.close()

        self.assertTrue(harness.wait_until(new_connection_served, timeout=IO_TIMEOUT,
                                           interval=0.1),
                        "no new connection served after some established ones closed")


if __name__ == "__main__":
    harness.main()
