"""Upstream failures: refused (502), garbage (502), no answer (504), and an upstream
that dies in the middle of a body (the client must see an incomplete response)."""

import socket
import struct

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
        }
        cls.ups = {k: cls.own(v) for k, v in ups.items()}
        cls.echo = cls.own(EchoUpstream("echo"))
        services = {"echo": [cls.echo.address],
                    "refused": ["127.0.0.1:%d" % cls.refused_port]}
        routes = [{"name": "refused", "match": {"path_prefix": "/refused"},
                   "service": "refused"}]
        for name, up in cls.ups.items():
            spec = {"pools": {"main": {"endpoints": [up.address]}},
                    "upstream_response_timeout": "500ms" if name == "never" else "10s"}
            services[name] = spec
            routes.append({"name": name, "match": {"path_prefix": "/" + name},
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
        resp, c = self.assert_short_error("/refused", (502,))
        # the client connection survives a 502 produced by the gateway itself
        if (resp.header("Connection") or "").lower() != "close":
            self.assertEqual(c.request("GET", "/echo-after-502").status, 200)

    def test_upstream_garbage_502(self):
        self.assert_short_error("/garbage", (502,))

    def test_upstream_bad_status_line_502(self):
        self.assert_short_error("/badstatus", (502,))

    def test_upstream_closes_without_answer_502(self):
        self.assert_short_error("/hangup", (502,))

    def test_upstream_smuggling_response_502(self):
        self.assert_short_error("/smuggle", (502,))

    def test_upstream_response_timeout_504(self):
        up = self.ups["never"]
        resp, _ = self.assert_short_error("/never", (504,))
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
        self._midbody("/cl", "cl", chunked=False)

    def test_upstream_closes_mid_chunked_body(self):
        self._midbody("/chunked", "chunked", chunked=True)

    def test_upstream_resets_mid_body(self):
        self._midbody("/reset", "reset", chunked=False)

    def test_gateway_still_serves_after_failures(self):
        self.assertEqual(self.client().request("GET", "/echo-ok").status, 200)


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


if __name__ == "__main__":
    harness.main()
