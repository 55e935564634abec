"""Limits and timeouts: header bytes and count (431), body size (413, declared and
chunked), header-read timeout (408, slowloris), keep-alive idle timeout, per-listener
overrides, and max_connections per worker."""

import select
import time

import harness
from harness import (IO_TIMEOUT, SCALE, EchoUpstream, GatewayTestCase, RawClient,
                     build_request, config, read_response_or_close)


class HeaderAndBodyLimits(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))
        cls.gw = cls.start_gateway(config(
            {"echo": [cls.echo.address]},
            limits={"max_header_bytes": "2KiB", "max_headers": 20, "max_body": "64KiB",
                    "header_read_timeout": "1s"}))

    def assert_upstream_untouched(self, before):
        self.assertEqual(self.echo.request_count(), before,
                         "the upstream received the request: %r" % (self.echo.last(),))

    def test_within_limits_ok(self):
        headers = [("X-H%d" % i, "v" * 40) for i in range(10)]
        resp = self.client().request("POST", "/ok", headers=headers, body=b"x" * 65536)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["body_len"], 65536)

    def test_header_bytes_over_limit_431(self):
        before = self.echo.request_count()
        c = self.client()
        c.send(build_request("GET", "/big-header", headers=[("X-Big", "a" * 4000)]))
        resp, _ = read_response_or_close(c)
        self.assertIsNotNone(resp, "closed without a response")
        self.assertEqual(resp.status, 431)
        self.assert_upstream_untouched(before)

    def test_many_small_headers_over_byte_limit_431(self):
        before = self.echo.request_count()
        c = self.client()
        c.send(build_request("GET", "/many-bytes",
                             headers=[("X-H%d" % i, "b" * 150) for i in range(18)]))
        resp, _ = read_response_or_close(c)
        self.assertIsNotNone(resp)
        self.assertEqual(resp.status, 431)
        self.assert_upstream_untouched(before)

    def test_long_request_line_rejected(self):
        before = self.echo.request_count()
        c = self.client()
        c.send(build_request("GET", "/" + "u" * 5000))
        resp, _ = read_response_or_close(c)
        self.assertIsNotNone(resp)
        self.assertIn(resp.status, (414, 431))
        self.assert_upstream_untouched(before)

    def test_too_many_headers_431(self):
        before = self.echo.request_count()
        c = self.client()
        c.send(build_request("GET", "/many", headers=[("X-H%d" % i, "1") for i in range(30)]))
        resp, _ = read_response_or_close(c)
        self.assertIsNotNone(resp)
        self.assertEqual(resp.status, 431)
        self.assert_upstream_untouched(before)

    def test_declared_body_over_limit_413(self):
        before = self.echo.request_count()
        c = self.client()
        c.send(build_request("POST", "/big-cl", headers=[("Content-Length", "100000")]))
        resp, _ = read_response_or_close(c)
        self.assertIsNotNone(resp, "closed without a response")
        self.assertEqual(resp.status, 413)
        self.assert_upstream_untouched(before)

    def test_chunked_body_running_over_limit_413(self):
        c = self.client()
        body = b"".join(b"1000\r\n" + b"c" * 4096 + b"\r\n" for _ in range(25)) + b"0\r\n\r\n"
        c.send(build_request("POST", "/big-chunked",
                             headers=[("Transfer-Encoding", "chunked")]))
        try:
            c.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp, _ = read_response_or_close(c)
        self.assertIsNotNone(resp, "closed without a response")
        self.assertEqual(resp.status, 413)
        closed, _ = c.wait_closed()
        self.assertTrue(closed, "connection kept open after 413 in the middle of a body")
        # the upstream never saw a complete request with the oversized body
        for req in list(self.echo.requests):
            if req["target"] == "/big-chunked":
                self.assertLessEqual(req["body_len"], 65536)

    def test_header_read_timeout_408(self):
        c = self.client()
        c.send(b"GET /slow HTTP/1.1\r\nHost: test.local\r\nX-Partial: ")
        resp, closed_early = read_response_or_close(c)
        self.assertIsNotNone(resp, "connection closed without a 408")
        self.assertEqual(resp.status, 408)
        if not closed_early:
            closed, _ = c.wait_closed()
            self.assertTrue(closed, "connection not closed after 408")

    def test_slowloris_trickle_408(self):
        """One byte at a time, never finishing the head: the timeout counts from the
        first byte, so trickling does not keep the connection alive."""
        c = self.client()
        head = b"GET /trickle HTTP/1.1\r\nHost: test.local\r\n" + b"X-Slow: " + b"a" * 1000
        got = b""
        closed = False
        deadline = time.monotonic() + IO_TIMEOUT
        i = 0
        while time.monotonic() < deadline and i < len(head):
            try:
                c.send(head[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            i += 1
            readable, _, _ = select.select([c.sock], [], [], 0.05)  # pacing, and a check
            if readable:
                try:
                    data = c.sock.recv(65536)
                except ConnectionResetError:
                    closed = True
                    break
                if not data:
                    closed = True
                    break
                got += data
        if not closed:
            more_closed, extra = c.wait_closed()
            got += extra
            closed = more_closed
        self.assertTrue(closed, "trickling client was never disconnected")
        self.assertTrue(got.startswith(b"HTTP/1.1 408"), got[:100])
        self.assertLess(i, len(head), "the whole head was accepted byte by byte")

    def test_request_after_partial_wait_is_not_forwarded(self):
        before = self.echo.request_count()
        c = self.client()
        c.send(b"GET /late HTTP/1.1\r\nHost: test.local\r\n")
        resp, _ = read_response_or_close(c)
        self.assertIsNotNone(resp)
        self.assertEqual(resp.status, 408)
        try:
            c.send(b"\r\n")
        except OSError:
            pass
        self.assert_upstream_untouched(before)


class IdleTimeout(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))
        cls.gw = cls.start_gateway(config(
            {"echo": [cls.echo.address]},
            limits={"idle_timeout": "1s", "header_read_timeout": "3s"}))

    def test_keep_alive_idle_connection_closed(self):
        c = self.client()
        self.assertEqual(c.request("GET", "/one").status, 200)
        closed, extra = c.wait_closed(timeout=IO_TIMEOUT)
        self.assertTrue(closed, "idle keep-alive connection was not closed")
        self.assertEqual(extra, b"", "bytes sent on an idle connection: %r" % extra[:200])

    def test_connection_without_request_closed(self):
        c = self.client()
        closed, _ = c.wait_closed(timeout=IO_TIMEOUT)
        self.assertTrue(closed, "a connection that never sent a byte stays open")

    def test_active_connection_not_closed_between_quick_requests(self):
        c = self.client()
        for i in range(5):
            self.assertEqual(c.request("GET", "/r%d" % i).status, 200)


class ListenerOverrides(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))
        doc = config({"echo": [cls.echo.address]},
                     limits={"max_body": "1MiB"},
                     listeners=[{"name": "main", "listen": "127.0.0.1:0"},
                                {"name": "strict", "listen": "127.0.0.1:0",
                                 "limits": {"max_body": "1KiB"}}])
        cls.gw = cls.start_gateway(doc)

    def test_two_listeners_logged(self):
        self.assertIn("main", self.gw.listeners)
        self.assertIn("strict", self.gw.listeners)
        self.assertNotEqual(self.gw.listeners["main"], self.gw.listeners["strict"])

    def test_override_applies_only_to_its_listener(self):
        body = b"x" * 4096
        strict = self.client(self.gw.listeners["strict"])
        strict.send(build_request("POST", "/strict", body=body))
        resp, _ = read_response_or_close(strict)
        self.assertIsNotNone(resp)
        self.assertEqual(resp.status, 413)
        relaxed = self.client(self.gw.listeners["main"]).request("POST", "/main", body=body)
        self.assertEqual(relaxed.status, 200)
        self.assertEqual(relaxed.json()["body_len"], 4096)


class MaxConnections(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))
        cls.gw = cls.start_gateway(config(
            {"echo": [cls.echo.address]}, workers=1,
            limits={"max_connections": 2}))

    def test_third_connection_not_served(self):
        c1 = self.client()
        c2 = self.client()
        self.assertEqual(c1.request("GET", "/c1").status, 200)
        self.assertEqual(c2.request("GET", "/c2").status, 200)
        before = self.echo.request_count()
        served = False
        c3 = RawClient(self.gw.addr, timeout=2.0 * SCALE, connect=False)
        self.addCleanup(c3.close)
        try:
            c3.connect()
            c3.send(build_request("GET", "/c3"))
            resp, _ = read_response_or_close(c3)
            served = resp is not None and resp.status == 200
            if resp is not None:
                self.assertIn(resp.status, (503,), "third connection got %s" % resp.status)
        except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
            pass
        except harness.socket.timeout:
            pass  # never accepted: sits in the kernel backlog unserved
        self.assertFalse(served, "a third connection was served with max_connections = 2")
        self.assertEqual(self.echo.request_count(), before)
        # the first two still work
        self.assertEqual(c1.request("GET", "/c1-again").status, 200)
        self.assertEqual(c2.request("GET", "/c2-again").status, 200)
        # once one closes, a new connection is served again
        c1.close()
        c3.close()

        def new_connection_served():
            c = RawClient(self.gw.addr, timeout=2.0 * SCALE, connect=False)
            try:
                c.connect()
                c.send(build_request("GET", "/c4"))
                resp, _ = read_response_or_close(c)
                return resp is not None and resp.status == 200
            except OSError:
                return False
            finally:
                c.close()

        self.assertTrue(harness.wait_until(new_connection_served, timeout=IO_TIMEOUT,
                                           interval=0.1),
                        "no new connection served after one of the two closed")


if __name__ == "__main__":
    harness.main()
