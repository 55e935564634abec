"""Upstream failures: refused (502), garbage (502), no answer (504), and an upstream
that dies in the middle of a body (the client must see an incomplete response)."""

import socket
import struct
import threading

import harness
from harness import (IO_TIMEOUT, EchoUpstream, GatewayTestCase, RawUpstream, config,
                     read_response_or_close)

CL_TOTAL = 100000
PARTIAL = 1000


def _await_then(server, conn, name, action):
    server.event(name + "-ready").set()
    server.event(name + "-go").wait(IO_TIMEOUT * 3)
    action()


def midbody_cl(server, conn, r, index):
    harness.read_request(r)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Mid: cl\r\n\r\n" % CL_TOTAL +
                 b"p" * PARTIAL)
    _await_then(server, conn, "cl", lambda: conn.close())


def midbody_chunked(server, conn, r, index):
    harness.read_request(r)
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Mid: chunked\r\n\r\n" +
                 b"%x\r\n" % PARTIAL + b"q" * PARTIAL + b"\r\n")
    _await_then(server, conn, "chunked", lambda: conn.close())


def midbody_reset(server, conn, r, index):
    harness.read_request(r)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Mid: reset\r\n\r\n" % CL_TOTAL +
                 b"r" * PARTIAL)

    def reset():
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    _await_then(server, conn, "reset", reset)


def garbage(server, conn, r, index):
    harness.read_request(r)
    conn.sendall(b"THIS IS NOT HTTP AT ALL\r\n\r\n")
    conn.shutdown(socket.SHUT_WR)
    try:
        conn.recv(1)
    except OSError:
        pass


def bad_status_line(server, conn, r, index):
    harness.read_request(r)
    conn.sendall(b"HTTP/1.1 2000 Weird\r\nContent-Length: 0\r\n\r\n")
    try:
        conn.recv(1)
    except OSError:
        pass


def closes_without_answer(server, conn, r, index):
    harness.read_request(r)
    conn.close()


def never_answers(server, conn, r, index):
    harness.read_request(r)
    server.event("never-got-request").set()
    # read until the gateway gives up and closes
    while conn.recv(65536):
        pass
    server.event("never-closed").set()


def smuggling_response(server, conn, r, index):
    harness.read_request(r)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\n\r\n")
    try:
        conn.recv(1)
    except OSError:
        pass


def bad_response_header(server, conn, r, index):
    harness.read_request(r)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Bad : space\r\nContent-Length: 2\r\n\r\nok")
    try:
        conn.recv(1)
    except OSError:
        pass


def huge_response_head(server, conn, r, index):
    harness.read_request(r)
    try:
        conn.sendall(b"HTTP/1.1 200 OK\r\n" +
                     b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 1000) for i in range(1024)) +
                     b"Content-Length: 2\r\n\r\nok")
        conn.recv(1)
    except OSError:
        pass


def close_delimited(server, conn, r, index):
    harness.read_request(r)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Framing: close\r\n\r\n")
    for piece in harness.pattern_chunks(300000):
        conn.sendall(piece)
    conn.close()


def early_hints(server, conn, r, index):
    while harness.read_request(r) is not None:
        conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")


class Failures(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.refused_port = harness.free_port()
        ups = {
            "cl": RawUpstream(midbody_cl, "midbody-cl"),
            "chunked": RawUpstream(midbody_chunked, "midbody-chunked"),
            "reset": RawUpstream(midbody_reset, "midbody-reset"),
            "garbage": RawUpstream(garbage, "garbage"),
            "badstatus": RawUpstream(bad_status_line, "bad-status"),
            "hangup": RawUpstream(closes_without_answer, "hangup"),
            "never": RawUpstream(never_answers, "never"),
            "smuggle": RawUpstream(smuggling_response, "smuggle"),
            "closedelim": RawUpstream(close_delimited, "close-delimited"),
            "hints": RawUpstream(early_hints, "early-hints"),
            "badheader": RawUpstream(bad_response_header, "bad-header"),
            "hugehead": RawUpstream(huge_response_head, "huge-head"),
        }
        cls.ups = {k: cls.own(v) for k, v in ups.items()}
        cls.echo = cls.own(EchoUpstream("echo"))
        services = {"echo": [cls.echo.address],
                    "refused": ["127.0.0.1:%d" % cls.refused_port]}
        routes = [{"name": "refused", "match": {"path_prefix": "/refused/"},
                   "service": "refused"}]
        for name, up in cls.ups.items():
            spec = {"pools": {"main": {"endpoints": [up.address]}},
                    "upstream_response_timeout": "500ms" if name == "never" else "10s"}
            services[name] = spec
            routes.append({"name": name, "match": {"path_prefix": "/%s/" % name},
                           "service": name})
        routes.append({"name": "echo", "match": {"path_prefix": "/"}, "service": "echo"})
        cls.gw = cls.start_gateway(config(services, routes=routes))

    def assert_short_error(self, path, statuses):
        c = self.client()
        c.send(harness.build_request("GET", path))
        resp, closed = read_response_or_close(c)
        self.assertIsNotNone(resp, "%s: closed without a response" % path)
        self.assertIn(resp.status, statuses)
        self.assertTrue(0 < len(resp.body) <= 1024,
                        "%s: want a short body, got %d bytes" % (path, len(resp.body)))
        return resp, c

    def test_upstream_refused_502(self):
        resp, c = self.assert_short_error("/refused/x", (502,))
        # the client connection survives a 502 produced by the gateway itself
        if (resp.header("Connection") or "").lower() != "close":
            self.assertEqual(c.request("GET", "/echo-after-502").status, 200)

    def test_upstream_garbage_502(self):
        self.assert_short_error("/garbage/x", (502,))

    def test_upstream_bad_status_line_502(self):
        self.assert_short_error("/badstatus/x", (502,))

    def test_upstream_closes_without_answer_502(self):
        self.assert_short_error("/hangup/x", (502,))

    def test_upstream_smuggling_response_502(self):
        self.assert_short_error("/smuggle/x", (502,))

    def test_upstream_invalid_response_header_502(self):
        self.assert_short_error("/badheader/x", (502,))

    def test_upstream_huge_response_head_502(self):
        self.assert_short_error("/hugehead/x", (502,))

    def test_upstream_response_timeout_504(self):
        up = self.ups["never"]
        resp, _ = self.assert_short_error("/never/x", (504,))
        self.assertTrue(up.event("never-got-request").is_set())
        self.assertTrue(up.event("never-closed").wait(IO_TIMEOUT),
                        "gateway kept the upstream connection after timing out")

    def _midbody(self, path, event, chunked):
        up = self.ups[event]
        c = self.client()
        c.send(harness.build_request("GET", path))
        version, status, reason, headers, head = c.read_head()
        self.assertEqual(status, 200)
        te = (harness.header_get(headers, "Transfer-Encoding") or "").lower()
        cl = harness.header_get(headers, "Content-Length")
        if chunked:
            # a close-delimited body would make truncation look like a normal end
            self.assertIn("chunked", te, "chunked upstream body re-framed as %r" % (head,))
        elif "chunked" not in te:
            self.assertEqual(cl, str(CL_TOTAL))
        # read the partial body that is available, then let the upstream die
        got = 0
        if "chunked" in te:
            while got < PARTIAL:
                line = c.r.read_until(b"\r\n")
                size = int(line.strip().split(b";")[0], 16)
                self.assertNotEqual(size, 0, "terminating chunk before the upstream ended")
                c.r.read_exact(size)
                c.r.read_exact(2)
                got += size
        else:
            while got < PARTIAL:
                got += len(c.r.read_some(PARTIAL - got))
        self.assertTrue(up.event(event + "-ready").wait(IO_TIMEOUT))
        up.event(event + "-go").set()
        closed, extra = c.wait_closed()
        self.assertTrue(closed, "client connection left open after the upstream died")
        if "chunked" in te:
            self.assertNotIn(b"0\r\n\r\n", extra,
                             "the gateway completed a chunked body the upstream never finished")
        else:
            self.assertLess(got + len(extra), CL_TOTAL)

    def test_upstream_closes_mid_content_length_body(self):
        self._midbody("/cl/x", "cl", chunked=False)

    def test_upstream_closes_mid_chunked_body(self):
        self._midbody("/chunked/x", "chunked", chunked=True)

    def test_upstream_resets_mid_body(self):
        self._midbody("/reset/x", "reset", chunked=False)

    def test_close_delimited_upstream_body_delivered(self):
        """An upstream body ended by close: the client gets all of it, framed so that
        it can tell the end (chunked, or close-delimited with the connection closed)."""
        c = self.client()
        c.send(harness.build_request("GET", "/closedelim/x"))
        try:
            resp = c.read_response()
        except harness.Incomplete as e:
            self.fail("incomplete: %r" % (e.partial,))
        self.assertEqual(resp.status, 200)
        self.assertEqual(len(resp.body), 300000)
        self.assertEqual(harness.hashlib.sha256(resp.body).hexdigest(),
                         harness.pattern_sha256(300000))

    def test_upstream_1xx_then_final(self):
        c = self.client()
        resp = c.request("GET", "/hints/x")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"final")
        self.assertEqual(c.request("GET", "/hints/2").body, b"final")

    def test_gateway_still_serves_after_failures(self):
        self.assertEqual(self.client().request("GET", "/echo-ok").status, 200)


class ConnectTimeout(GatewayTestCase):
    """An upstream whose accept queue is full (listen backlog 0, one connection
    already pending, never accepted): the kernel drops the gateway's SYN, so its
    connect hangs until upstream_connect_timeout -> 504. Loopback only."""

    @classmethod
    def setUpClass(cls):
        cls.blackhole = socket.socket()
        cls.addClassCleanup(cls.blackhole.close)
        cls.blackhole.bind(("127.0.0.1", 0))
        cls.blackhole.listen(0)
        cls.filler = socket.socket()
        cls.addClassCleanup(cls.filler.close)
        cls.filler.settimeout(IO_TIMEOUT)
        cls.filler.connect(cls.blackhole.getsockname())
        # check that the queue is really full (a second connect must hang)
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(cls.blackhole.getsockname())
            cls.queue_full = False
        except socket.timeout:
            cls.queue_full = True
        except OSError:
            cls.queue_full = False
        finally:
            probe.close()
        cls.gw = cls.start_gateway(config(
            {"hole": {"pools": {"main": {"endpoints": ["127.0.0.1:%d"
                                                       % cls.blackhole.getsockname()[1]]}},
                      "upstream_connect_timeout": "300ms"}}))

    def test_connect_timeout_504(self):
        if not self.queue_full:
            self.skipTest("this kernel accepts past a full backlog; cannot make a hanging connect")
        c = self.client()
        c.send(harness.build_request("GET", "/hole"))
        resp, _ = read_response_or_close(c)
        self.assertIsNotNone(resp, "closed without a response")
        self.assertEqual(resp.status, 504)
        self.assertLessEqual(len(resp.body), 1024)


class NoEndpointAvailable(GatewayTestCase):
    """Every endpoint refuses: 502 or 503, short body, quickly; the process survives."""

    @classmethod
    def setUpClass(cls):
        cls.gw = cls.start_gateway(config(
            {"dead": ["127.0.0.1:%d" % harness.free_port(),
                      "127.0.0.1:%d" % harness.free_port()]}))

    def test_all_refused(self):
        for i in range(4):
            c = self.client()
            c.send(harness.build_request("GET", "/x%d" % i))
            resp, _ = read_response_or_close(c)
            self.assertIsNotNone(resp)
            self.assertIn(resp.status, (502, 503))
            self.assertLessEqual(len(resp.body), 1024)


def answers_early_and_closes(server, conn, r, index):
    """Reads a request's head only, refuses it and closes: the body it left unread makes
    the kernel answer the gateway's next writes with a reset."""
    r.read_until(b"\r\n\r\n")
    conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n"
                 b"Connection: close\r\n\r\nbig!")
    conn.close()


class UpstreamAnswersBeforeTheBody(GatewayTestCase):
    """An upstream that answers before it has read the request body (a 413 or 401) and
    closes: the client gets that answer, not a 502 for the failed body write."""

    def test_early_answer_is_forwarded(self):
        up = self.upstream(RawUpstream(answers_early_and_closes, "early"))
        gw = self.gateway(config({"early": [up.address]}, limits={"max_body": "64MiB"}))
        for attempt in range(5):  # each a race between the failed write and the read
            with self.subTest(attempt=attempt):
                c = self.client(gw.addr)
                c.send(harness.build_request("POST", "/upload",
                                             headers=[("Content-Length", str(16 << 20))]))
                sender = threading.Thread(target=self.send_quietly, args=(c, 16 << 20))
                sender.start()
                resp = c.read_response()
                self.assertEqual((resp.status, resp.body), (413, b"big!"))
                self.assertEqual(resp.header("Connection"), "close")
                self.assertTrue(c.wait_closed()[0])
                sender.join(IO_TIMEOUT)

    @staticmethod
    def send_quietly(c, size):
        piece = b"u" * 65536
        try:
            for _ in range(size // len(piece)):
                c.sock.sendall(piece)
        except OSError:
            pass  # the gateway closed after the answer


class UpstreamResponseMatrix(GatewayTestCase):
    """Every shape of upstream response to every shape of client request, with a second
    request pipelined behind it: the client gets the response complete and right, or
    (for a broken upstream) a 502/503 or a response it can tell was cut short, never a
    complete-looking short one; and the connection then serves the pipelined request
    or, when the response said it would close, closes with nothing more."""

    CLIENTS = [  # (name, method, version, headers)
        ("GET", "GET", "HTTP/1.1", []),
        ("HEAD", "HEAD", "HTTP/1.1", []),
        ("GET close", "GET", "HTTP/1.1", [("Connection", "close")]),
        ("GET 1.0", "GET", "HTTP/1.0", []),
        ("GET 1.0 keep-alive", "GET", "HTTP/1.0", [("Connection", "keep-alive")]),
    ]

    @classmethod
    def setUpClass(cls):
        cls.good = cls.own(RawUpstream(harness.scripted_upstream, "good"))
        cls.bad = cls.own(RawUpstream(harness.scripted_upstream, "bad"))
        cls.gw = cls.start_gateway(config(
            {"good": [cls.good.address], "bad": [cls.bad.address]},
            routes=[{"name": "bad", "match": {"path_prefix": "/bad/"}, "service": "bad"},
                    {"name": "good", "match": {"path_prefix": "/"}, "service": "good"}]))

    def exchange(self, client, prefix, kind):
        name, method, version, headers = client
        c = self.client()
        c.send(harness.build_request(method, prefix + kind, headers, version=version) +
               harness.build_request("GET", "/after/cl"))
        try:
            return c, c.read_response(head_request=(method == "HEAD")), None
        except (harness.Incomplete, ConnectionResetError) as e:
            return c, None, e  # cut short: framing that did not end, or a reset

    def assert_connection_after(self, c, first, client):
        said = (first.header("Connection") or "").lower()
        if client[2] == "HTTP/1.0" and said != "keep-alive":
            said = "close"  # HTTP/1.0 without keep-alive: the response is the last
        if said == "close":
            closed, extra = c.wait_closed()
            self.assertTrue(closed, "said close, stayed open")
            self.assertEqual(extra, b"", "answered more after the last response")
        else:
            self.assertNotIn(client[0], ("GET close", "GET 1.0"), "kept against the client")
            second = c.read_response()
            self.assertEqual((second.status, second.body), (200, harness.HELLO))

    def test_good_responses(self):
        for kind in harness.GOOD_RESPONSES:
            status = harness.scripted_status(kind)
            for client in self.CLIENTS:
                with self.subTest(upstream=kind, client=client[0]):
                    c, first, cut = self.exchange(client, "/r/", kind)
                    self.assertIsNone(cut, "cut short")
                    self.assertEqual(first.status, status)
                    no_body = client[1] == "HEAD" or status in (204, 304)
                    self.assertEqual(first.body, b"" if no_body else harness.HELLO)
                    self.assert_connection_after(c, first, client)

    def test_broken_responses(self):
        for kind in harness.BAD_RESPONSES:
            for client in self.CLIENTS:
                with self.subTest(upstream=kind, client=client[0]):
                    c, first, cut = self.exchange(client, "/bad/", kind)
                    if cut is not None:
                        # Cut short, and the client can tell: only after a head that
                        # promised more (a whole-looking response would be the defect).
                        self.assertTrue(kind.startswith("cut-") and client[1] == "GET")
                        self.assertTrue(c.wait_closed()[0])
                        continue
                    if kind.startswith("cut-") and client[1] == "HEAD":
                        self.assertEqual(first.status, 200)  # a HEAD response is the head
                    else:
                        self.assertIn(first.status, (502, 503), first.body)
                    self.assert_connection_after(c, first, client)


if __name__ == "__main__":
    harness.main()
