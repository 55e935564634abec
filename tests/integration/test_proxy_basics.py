"""Proxying basics: keep-alive, pipelining, bodies both ways (Content-Length and
chunked, large, slow reader), HEAD, Expect: 100-continue, absolute-form targets,
Upgrade tunnels, hop-by-hop headers, X-Forwarded-*, Via, header order and case."""

import hashlib
import os
import subprocess
import threading

import harness
from harness import (IO_TIMEOUT, EchoUpstream, GatewayTestCase, RawClient, RawUpstream,
                     build_request, chunked_body, config, header_all, header_get)


class ProxyBasics(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))
        cls.gw = cls.start_gateway(config({"echo": [cls.echo.address]},
                                          limits={"max_body": "100MiB"}))

    def setUp(self):
        self.echo.extra_headers = []

    # -- plain requests -------------------------------------------------------
    def test_simple_get(self):
        c = self.client()
        resp = c.request("GET", "/hello?x=1", headers=[("X-Test", "1")])
        self.assertEqual(resp.status, 200)
        info = resp.json()
        self.assertEqual(info["method"], "GET")
        self.assertEqual(info["target"], "/hello?x=1")
        self.assertEqual(info["version"], "HTTP/1.1")
        self.assertEqual(header_get(info["headers"], "X-Test"), "1")
        self.assertEqual(header_get(info["headers"], "Host"), "test.local")

    def test_curl_get(self):
        out = subprocess.run(
            ["curl", "-sS", "--max-time", str(int(IO_TIMEOUT)), "-D", "-",
             self.gw.url("/via-curl")], capture_output=True, timeout=IO_TIMEOUT * 2)
        self.assertEqual(out.returncode, 0, out.stderr)
        text = out.stdout.decode("latin-1")
        self.assertTrue(text.startswith("HTTP/1.1 200"), text[:200])
        self.assertIn('"target": "/via-curl"', text)

    def test_keep_alive_many_requests_one_connection(self):
        c = self.client()
        for i in range(20):
            resp = c.request("GET", "/ka/%d" % i)
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.json()["target"], "/ka/%d" % i)
        closed, _ = c.wait_closed(timeout=0.2)
        self.assertFalse(closed, "gateway closed a keep-alive connection")

    def test_connection_close_from_client(self):
        c = self.client()
        resp = c.request("GET", "/close", headers=[("Connection", "close")])
        self.assertEqual(resp.status, 200)
        closed, extra = c.wait_closed()
        self.assertTrue(closed, "gateway kept the connection after Connection: close")
        self.assertEqual(extra, b"")

    def test_http10_client(self):
        c = self.client()
        c.send(b"GET /ten HTTP/1.0\r\nHost: test.local\r\n\r\n")
        resp = c.read_response()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["target"], "/ten")
        closed, _ = c.wait_closed()
        self.assertTrue(closed, "HTTP/1.0 request without keep-alive must close")

    def test_http10_client_gets_no_chunked_response(self):
        """An HTTP/1.0 client cannot parse chunked: a chunked upstream body must reach
        it de-chunked (close-delimited or with a Content-Length)."""
        c = self.client()
        c.send(b"GET /ten-chunked HTTP/1.0\r\nHost: test.local\r\n"
               b"X-Echo-Chunked: 1\r\nX-Echo-Body-Size: 10000\r\n\r\n")
        version, status, reason, headers, head = c.read_head()
        self.assertEqual(status, 200)
        self.assertNotIn("chunked", (header_get(headers, "Transfer-Encoding") or "").lower(),
                         "chunked response sent to an HTTP/1.0 client: %r" % head)
        body = c.r.read_to_eof()
        cl = header_get(headers, "Content-Length")
        if cl is not None:
            body = body[:int(cl)]
        self.assertEqual(hashlib.sha256(body).hexdigest(), harness.pattern_sha256(10000))

    def test_http10_keep_alive(self):
        c = self.client()
        c.send(b"GET /ten-ka HTTP/1.0\r\nHost: test.local\r\nConnection: keep-alive\r\n\r\n")
        resp = c.read_response()
        self.assertEqual(resp.status, 200)
        if "keep-alive" in (resp.header("Connection") or "").lower():
            c.send(b"GET /ten-ka2 HTTP/1.0\r\nHost: test.local\r\nConnection: keep-alive\r\n\r\n")
            self.assertEqual(c.read_response().json()["target"], "/ten-ka2")

    def test_connect_method_not_tunnelled(self):
        c = self.client()
        c.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        resp, _ = harness.read_response_or_close(c)
        self.assertIsNotNone(resp, "closed without a response")
        self.assertIn(resp.status, (400, 403, 405, 501),
                      "CONNECT answered %s: a reverse proxy must not open tunnels" % resp.status)

    def test_304_without_body(self):
        c = self.client()
        resp = c.request("GET", "/304", headers=[("X-Echo-Status", "304")])
        self.assertEqual(resp.status, 304)
        self.assertEqual(c.request("GET", "/after-304").json()["target"], "/after-304")

    def test_pipelined_requests_answered_in_order(self):
        c = self.client()
        targets = ["/pipe/%d" % i for i in range(8)]
        data = b"".join(
            build_request("POST" if i % 2 else "GET", t,
                          body=(b"body-%d" % i) if i % 2 else b"")
            for i, t in enumerate(targets))
        c.send(data)
        for i, t in enumerate(targets):
            resp = c.read_response()
            self.assertEqual(resp.status, 200)
            info = resp.json()
            self.assertEqual(info["target"], t)
            if i % 2:
                self.assertEqual(info["body"], "body-%d" % i)

    def test_many_pipelined_requests_in_one_write(self):
        c = self.client()
        n = 100
        c.send(b"".join(build_request("GET", "/many/%d" % i) for i in range(n)))
        for i in range(n):
            resp = c.read_response()
            self.assertEqual(resp.json()["target"], "/many/%d" % i)

    def test_pipelined_chunked_then_get(self):
        c = self.client()
        c.send(build_request("POST", "/pc1", headers=[("Transfer-Encoding", "chunked")]) +
               chunked_body(b"abcdefghij" * 10, sizes=(3, 7)) +
               build_request("GET", "/pc2") + build_request("HEAD", "/pc3") +
               build_request("GET", "/pc4"))
        r1 = c.read_response()
        self.assertEqual(r1.json()["body"], "abcdefghij" * 10)
        self.assertEqual(c.read_response().json()["target"], "/pc2")
        self.assertEqual(c.read_response(head_request=True).status, 200)
        self.assertEqual(c.read_response().json()["target"], "/pc4")

    def test_request_in_tiny_fragments(self):
        c = self.client()
        data = build_request("POST", "/frag", headers=[("Transfer-Encoding", "chunked")]) + \
            chunked_body(b"fragmented-body", sizes=(4,))
        for i in range(0, len(data), 3):
            c.send(data[i:i + 3])
        resp = c.read_response()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["body"], "fragmented-body")

    def test_pipelined_with_slow_first_response(self):
        """The first request is held upstream; the second must not overtake it."""
        echo2 = self.upstream(EchoUpstream("hold"))
        gw = self.gateway(config({"hold": [echo2.address]}))
        c = self.client(gw.addr)
        c.send(build_request("GET", "/first", headers=[("X-Echo-Hold", "1")]) +
               build_request("GET", "/second"))
        self.assertTrue(echo2.held.wait(IO_TIMEOUT), "first request never reached upstream")
        echo2.release()
        first = c.read_response()
        second = c.read_response()
        self.assertEqual(first.json()["target"], "/first")
        self.assertEqual(second.json()["target"], "/second")

    # -- bodies ---------------------------------------------------------------
    def test_post_content_length_body(self):
        body = os.urandom(100000)
        resp = self.client().request("POST", "/upload", body=body)
        self.assertEqual(resp.status, 200)
        info = resp.json()
        self.assertEqual(info["body_len"], len(body))
        self.assertEqual(info["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_post_chunked_body(self):
        body = os.urandom(300000)
        c = self.client()
        c.send(build_request("POST", "/chunked", headers=[("Transfer-Encoding", "chunked")]) +
               chunked_body(body))
        resp = c.read_response()
        self.assertEqual(resp.status, 200)
        info = resp.json()
        self.assertEqual(info["body_len"], len(body))
        self.assertEqual(info["body_sha256"], hashlib.sha256(body).hexdigest())
        # and the connection is still usable
        self.assertEqual(c.request("GET", "/after").json()["target"], "/after")

    def test_chunked_request_with_trailers_and_extensions(self):
        c = self.client()
        c.send(build_request("POST", "/trailers", headers=[("Transfer-Encoding", "chunked")]) +
               b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n")
        resp = c.read_response()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["body"], "hello")
        self.assertEqual(c.request("GET", "/after").status, 200)

    def test_chunked_response(self):
        resp = self.client().request("GET", "/chunked-resp",
                                     headers=[("X-Echo-Chunked", "1"),
                                              ("X-Echo-Body-Size", "200000")])
        self.assertEqual(resp.status, 200)
        self.assertEqual(len(resp.body), 200000)
        self.assertEqual(hashlib.sha256(resp.body).hexdigest(), harness.pattern_sha256(200000))

    def test_empty_body_post(self):
        resp = self.client().request("POST", "/empty", headers=[("Content-Length", "0")])
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["body_len"], 0)

    def test_large_upload_50mib_streamed(self):
        total = 50 * 1024 * 1024
        c = self.client()
        h = hashlib.sha256()
        c.send(build_request("POST", "/big-upload",
                             headers=[("Content-Length", str(total))]))
        for piece in harness.pattern_chunks(total, 1 << 20):
            h.update(piece)
            c.send(piece)
        resp = c.read_response()
        self.assertEqual(resp.status, 200)
        info = resp.json()
        self.assertEqual(info["body_len"], total)
        self.assertEqual(info["body_sha256"], h.hexdigest())

    def test_large_chunked_upload_20mib(self):
        total = 20 * 1024 * 1024
        c = self.client()
        c.send(build_request("POST", "/big-chunked",
                             headers=[("Transfer-Encoding", "chunked")]))
        h = hashlib.sha256()
        for piece in harness.pattern_chunks(total, 100003):
            h.update(piece)
            c.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
        c.send(b"0\r\n\r\n")
        resp = c.read_response()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["body_len"], total)
        self.assertEqual(resp.json()["body_sha256"], h.hexdigest())

    def test_large_download_50mib_slow_reader_backpressure(self):
        """The client stops reading; the upstream must stall well before it has sent
        everything (the gateway does not buffer the whole body); then the client reads
        it all and the checksum matches."""
        total = 50 * 1024 * 1024
        echo = self.upstream(EchoUpstream("big"))
        gw = self.gateway(config({"big": [echo.address]}))
        c = RawClient(gw.addr, timeout=IO_TIMEOUT * 3)
        self.addCleanup(c.close)
        c.sock.setsockopt(harness.socket.SOL_SOCKET, harness.socket.SO_RCVBUF, 65536)
        c.send(build_request("GET", "/big-download",
                             headers=[("X-Echo-Body-Size", str(total))]))
        # Wait until the upstream's progress stops for a while (it is blocked on a
        # full pipe) or it has sent everything.
        last = [-1]

        def stalled():
            with echo.cond:
                now = echo.body_bytes_sent
            if now == total:
                return True
            if now == last[0] and now > 0:
                return True
            last[0] = now
            return False

        harness.wait_until(stalled, timeout=IO_TIMEOUT * 3, interval=0.5)
        with echo.cond:
            sent_while_paused = echo.body_bytes_sent
        self.assertLess(sent_while_paused, total - 8 * 1024 * 1024,
                        "upstream sent %d of %d bytes while the client read nothing: "
                        "the gateway buffers the body" % (sent_while_paused, total))
        h = hashlib.sha256()
        count = [0]

        def sink(data):
            h.update(data)
            count[0] += len(data)

        resp = c.read_response(body_sink=sink)
        self.assertEqual(resp.status, 200)
        self.assertEqual(count[0], total)
        self.assertEqual(h.hexdigest(), harness.pattern_sha256(total))

    def test_large_upload_slow_upstream_backpressure(self):
        """The upstream reads the head, then stops reading: the client must be stopped
        well before it has sent everything (the gateway does not buffer the body);
        then the upstream reads it all and the checksum matches."""
        total = 50 * 1024 * 1024
        expected = harness.pattern_sha256(total)

        def slow_reader(server, conn, r, index):
            r.read_until(b"\r\n\r\n")
            server.event("head").set()
            server.event("go").wait(IO_TIMEOUT * 6)
            h = hashlib.sha256()
            remaining = total
            while remaining:
                piece = r.read_some(min(remaining, 262144))
                h.update(piece)
                remaining -= len(piece)
            body = h.hexdigest().encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

        up = self.upstream(RawUpstream(slow_reader, "slow-reader"))
        gw = self.gateway(config({"slow": [up.address]}, limits={"max_body": "100MiB"}))
        c = RawClient(gw.addr, timeout=IO_TIMEOUT * 3)
        self.addCleanup(c.close)
        c.send(build_request("POST", "/slow-upload", headers=[("Content-Length", str(total))]))
        self.assertTrue(up.event("head").wait(IO_TIMEOUT))
        chunks = harness.pattern_chunks(total, 65536)
        pending = b""
        sent = 0
        c.sock.settimeout(1.0 * harness.SCALE)
        while sent < total:
            if not pending:
                pending = next(chunks)
            try:
                n = c.sock.send(pending)
            except harness.socket.timeout:
                break  # the pipe is full: the gateway stopped reading
            pending = pending[n:]
            sent += n
        self.assertLess(sent, total - 8 * 1024 * 1024,
                        "the gateway accepted %d of %d body bytes while the upstream read "
                        "nothing: it buffers the body" % (sent, total))
        up.event("go").set()
        c.sock.settimeout(IO_TIMEOUT * 3)
        if pending:
            c.send(pending)
        for piece in chunks:
            c.send(piece)
        resp = c.read_response()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body.decode(), expected)

    def test_large_chunked_download(self):
        total = 20 * 1024 * 1024
        h = hashlib.sha256()
        n = [0]

        def sink(data):
            h.update(data)
            n[0] += len(data)

        c = self.client()
        c.send(build_request("GET", "/big-chunked-download",
                             headers=[("X-Echo-Body-Size", str(total)),
                                      ("X-Echo-Chunked", "1")]))
        resp = c.read_response(body_sink=sink)
        self.assertEqual(resp.status, 200)
        self.assertEqual(n[0], total)
        self.assertEqual(h.hexdigest(), harness.pattern_sha256(total))

    # -- HEAD -----------------------------------------------------------------
    def test_head(self):
        c = self.client()
        resp = c.request("HEAD", "/head", headers=[("X-Echo-Body-Size", "12345")])
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.header("Content-Length"), "12345")
        self.assertEqual(self.echo.last()["method"], "HEAD")
        # No body bytes may follow: the next response on the connection parses.
        resp2 = c.request("GET", "/after-head")
        self.assertEqual(resp2.status, 200)
        self.assertEqual(resp2.json()["target"], "/after-head")

    def test_head_chunked_response(self):
        c = self.client()
        resp = c.request("HEAD", "/head-chunked", headers=[("X-Echo-Chunked", "1")])
        self.assertEqual(resp.status, 200)
        resp2 = c.request("GET", "/after-head-chunked")
        self.assertEqual(resp2.json()["target"], "/after-head-chunked")

    # -- Expect: 100-continue -------------------------------------------------
    def test_expect_100_continue(self):
        c = self.client()
        c.send(build_request("POST", "/expect",
                             headers=[("Expect", "100-continue"), ("Content-Length", "11")]))
        interim = c.read_response(keep_interim=True)
        self.assertEqual(interim.status, 100, "gateway did not answer 100 Continue")
        c.send(b"hello world")
        resp = c.read_response()
        self.assertEqual(resp.status, 200)
        info = resp.json()
        self.assertEqual(info["body"], "hello world")
        self.assertIsNone(header_get(info["headers"], "Expect"),
                          "Expect was forwarded upstream")
        self.assertEqual(c.request("GET", "/after-expect").status, 200)

    def test_expect_100_continue_curl(self):
        out = subprocess.run(
            ["curl", "-sS", "--max-time", str(int(IO_TIMEOUT)), "-H", "Expect: 100-continue",
             "--data-binary", "@-", self.gw.url("/expect-curl")],
            input=b"x" * 5000, capture_output=True, timeout=IO_TIMEOUT * 2)
        self.assertEqual(out.returncode, 0, out.stderr)
        info = harness.json.loads(out.stdout)
        self.assertEqual(info["body_len"], 5000)

    def test_expect_100_continue_rejected_body_gets_final_status(self):
        """A declared body over max_body with Expect: the final 413 comes without a
        100 Continue first, and nothing reaches the upstream."""
        before = self.echo.request_count()
        c = self.client()
        c.send(build_request("POST", "/expect-big", headers=[
            ("Expect", "100-continue"), ("Content-Length", str(200 * 1024 * 1024))]))
        resp, _ = harness.read_response_or_close(c)
        self.assertIsNotNone(resp)
        self.assertEqual(resp.interim, [], "100 Continue sent for a body that is refused")
        self.assertEqual(resp.status, 413)
        self.assertEqual(self.echo.request_count(), before)

    # -- absolute-form --------------------------------------------------------
    def test_absolute_form_target(self):
        c = self.client()
        # Host names the same authority (case aside); the target's spelling goes upstream.
        c.send(b"GET http://abs.example.com/abs/path?q=1 HTTP/1.1\r\n"
               b"Host: ABS.example.com:80\r\n\r\n")
        resp = c.read_response()
        self.assertEqual(resp.status, 200)
        info = resp.json()
        self.assertEqual(info["target"], "/abs/path?q=1")
        self.assertEqual(header_all(info["headers"], "Host"), ["abs.example.com"])
        # Another authority in Host: refused (test_smuggling checks the upstream saw none).
        c = self.client()
        c.send(b"GET http://abs.example.com/abs/path HTTP/1.1\r\nHost: other.example.com\r\n\r\n")
        self.assertEqual(c.read_response().status, 400)

    def test_absolute_form_with_port_and_empty_path(self):
        c = self.client()
        c.send(b"GET http://abs.example.com:8080 HTTP/1.1\r\nHost: abs.example.com:8080\r\n\r\n")
        resp = c.read_response()
        self.assertEqual(resp.status, 200)
        info = resp.json()
        self.assertEqual(info["target"], "/")
        self.assertEqual(header_all(info["headers"], "Host"), ["abs.example.com:8080"])

    # -- hop-by-hop -----------------------------------------------------------
    def test_hop_by_hop_request_headers_removed(self):
        c = self.client()
        resp = c.request("GET", "/hop", headers=[
            ("Connection", "keep-alive, X-Custom-Hop"),
            ("X-Custom-Hop", "secret"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "X-Foo"),
            ("Upgrade", "h2c"),
            ("X-End-To-End", "kept"),
        ])
        self.assertEqual(resp.status, 200)
        hdrs = resp.json()["headers"]
        names = [k.lower() for k, _ in hdrs]
        for hop in ("x-custom-hop", "keep-alive", "proxy-connection", "te", "trailer",
                    "upgrade"):
            self.assertNotIn(hop, names, "%s was forwarded upstream: %r" % (hop, hdrs))
        for value in header_all(hdrs, "Connection"):
            self.assertNotIn("x-custom-hop", value.lower())
        self.assertEqual(header_get(hdrs, "X-End-To-End"), "kept")

    def test_hop_by_hop_response_headers_removed(self):
        self.echo.extra_headers = [
            ("Connection", "X-Resp-Hop"),
            ("X-Resp-Hop", "secret"),
            ("Keep-Alive", "timeout=5, max=100"),
            ("Proxy-Connection", "keep-alive"),
            ("Trailer", "X-Foo"),
            ("Upgrade", "h2c"),
            ("X-Resp-End", "kept"),
        ]
        c = self.client()
        resp = c.request("GET", "/hop-resp")
        self.assertEqual(resp.status, 200)
        names = [k.lower() for k, _ in resp.headers]
        for hop in ("x-resp-hop", "keep-alive", "proxy-connection", "trailer", "upgrade"):
            self.assertNotIn(hop, names, "%s reached the client: %r" % (hop, resp.headers))
        for value in resp.header_all("Connection"):
            self.assertNotIn("x-resp-hop", value.lower())
        self.assertEqual(resp.header("X-Resp-End"), "kept")
        # the upstream's "Connection: X-Resp-Hop" must not close the client connection
        self.assertEqual(c.request("GET", "/still-open").status, 200)

    # -- forwarding headers ---------------------------------------------------
    def test_forwarded_headers_added(self):
        resp = self.client().request("GET", "/xff", host="front.example.com")
        hdrs = resp.json()["headers"]
        self.assertEqual(header_all(hdrs, "X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual(header_get(hdrs, "X-Forwarded-Proto"), "http")
        self.assertEqual(header_get(hdrs, "X-Forwarded-Host"), "front.example.com")
        via = header_get(hdrs, "Via")
        self.assertIsNotNone(via, "no Via header")
        self.assertTrue(via.startswith("1.1 "), via)

    def test_client_xff_replaced_from_untrusted_peer(self):
        resp = self.client().request("GET", "/xff-spoof", headers=[
            ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https")])
        hdrs = resp.json()["headers"]
        self.assertEqual(header_all(hdrs, "X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual(header_all(hdrs, "X-Forwarded-Proto"), ["http"])

    def test_response_via_added(self):
        resp = self.client().request("GET", "/via-resp")
        via = resp.header("Via")
        self.assertIsNotNone(via, "no Via on the response")

    # -- order and case -------------------------------------------------------
    def test_request_header_order_and_case_preserved(self):
        sent = [("X-First", "1"), ("x-MiXeD-CaSe", "a"), ("X-Dup", "one"),
                ("ALLCAPS", "B"), ("X-Dup", "two"), ("x-last", "z")]
        resp = self.client().request("GET", "/order", headers=sent)
        got = [(k, v) for k, v in resp.json()["headers"]
               if k.lower() in {n.lower() for n, _ in sent}]
        self.assertEqual(got, sent)

    def test_response_header_order_and_case_preserved(self):
        extra = [("X-Resp-A", "1"), ("x-resp-lower", "2"), ("Set-Cookie", "a=1"),
                 ("X-RESP-UPPER", "3"), ("Set-Cookie", "b=2")]
        self.echo.extra_headers = extra
        resp = self.client().request("GET", "/resp-order")
        got = [(k, v) for k, v in resp.headers if k.lower() in {n.lower() for n, _ in extra}]
        self.assertEqual(got, extra)

    def test_large_header_within_limit_passed_intact(self):
        value = "v" * 12000
        resp = self.client().request("GET", "/big-header", headers=[("X-Large", value)])
        self.assertEqual(resp.status, 200)
        self.assertEqual(header_get(resp.json()["headers"], "X-Large"), value)

    def test_many_concurrent_clients(self):
        results = []
        errors = []
        lock = threading.Lock()

        def run(k):
            c = RawClient(self.gw.addr)
            try:
                for i in range(5):
                    body = b"k%d-i%d" % (k, i)
                    resp = c.request("POST", "/conc/%d/%d" % (k, i), body=body)
                    info = resp.json()
                    ok = (resp.status == 200 and info["target"] == "/conc/%d/%d" % (k, i)
                          and info["body"] == body.decode())
                    with lock:
                        results.append(ok)
            except Exception as e:  # collected and asserted below
                with lock:
                    errors.append(repr(e))
            finally:
                c.close()

        threads = [threading.Thread(target=run, args=(k,)) for k in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(IO_TIMEOUT * 3)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 250)
        self.assertTrue(all(results))

    def test_client_aborts_mid_body_upstream_connection_not_reused(self):
        """The client sends half a declared body and closes: the upstream connection
        carrying the half request must be closed, never reused for another request."""
        echo = self.upstream(EchoUpstream("abort"))
        gw = self.gateway(config({"abort": [echo.address]}, workers=1))
        c = RawClient(gw.addr)
        c.send(build_request("POST", "/half", headers=[("Content-Length", "100000")]) +
               b"x" * 1000)
        c.close()
        # a later request must be answered normally, on a clean connection
        resp = self.client(gw.addr).request("GET", "/after-abort")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["target"], "/after-abort")
        for req in list(echo.requests):
            if req["target"] == "/half":
                self.fail("the upstream saw the aborted request complete: %r" % req)

    def test_client_disconnects_while_waiting(self):
        echo = self.upstream(EchoUpstream("gone"))
        gw = self.gateway(config({"gone": [echo.address]}, workers=1))
        c = RawClient(gw.addr)
        c.send(build_request("GET", "/gone", headers=[("X-Echo-Hold", "1")]))
        self.assertTrue(echo.held.wait(IO_TIMEOUT))
        c.close()
        echo.release()
        resp = self.client(gw.addr).request("GET", "/after-gone")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["target"], "/after-gone")

    def test_upgrade_refused_by_upstream_is_plain_http(self):
        c = self.client()
        resp = c.request("GET", "/no-upgrade", headers=[
            ("Connection", "Upgrade"), ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")])
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["target"], "/no-upgrade")

    def test_status_and_reason_passed_through(self):
        resp = self.client().request("GET", "/status", headers=[("X-Echo-Status", "418")])
        self.assertEqual(resp.status, 418)

    def test_no_content_204(self):
        c = self.client()
        resp = c.request("GET", "/204", headers=[("X-Echo-Status", "204")])
        self.assertEqual(resp.status, 204)
        self.assertEqual(c.request("GET", "/after-204").json()["target"], "/after-204")


class TrustedProxies(GatewayTestCase):
    """127.0.0.1 is a trusted proxy: a client's X-Forwarded-For is extended."""

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))
        cls.gw = cls.start_gateway(config(
            {"echo": [cls.echo.address]},
            forwarding={"trusted_proxies": ["127.0.0.0/8"]}))

    def test_xff_appended(self):
        resp = self.client().request("GET", "/", headers=[("X-Forwarded-For", "1.2.3.4")])
        xff = header_all(resp.json()["headers"], "X-Forwarded-For")
        self.assertEqual(len(xff), 1, xff)
        self.assertEqual([p.strip() for p in xff[0].split(",")], ["1.2.3.4", "127.0.0.1"])

    def test_xff_added_when_absent(self):
        resp = self.client().request("GET", "/")
        self.assertEqual(header_all(resp.json()["headers"], "X-Forwarded-For"), ["127.0.0.1"])


class ForwardingDisabled(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))
        cls.gw = cls.start_gateway(config(
            {"echo": [cls.echo.address]},
            forwarding={"x_forwarded_for": False, "x_forwarded_proto": False,
                        "x_forwarded_host": False, "via": False}))

    def test_nothing_added(self):
        resp = self.client().request("GET", "/")
        names = [k.lower() for k, _ in resp.json()["headers"]]
        for h in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "via"):
            self.assertNotIn(h, names)


upgrade_handler = harness.upgrade_echo_handler


class UpgradeTunnel(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.up = cls.own(RawUpstream(upgrade_handler, "ws"))
        cls.gw = cls.start_gateway(config({"ws": [cls.up.address]}))

    def test_websocket_upgrade_tunnel(self):
        c = self.client()
        c.send(build_request("GET", "/ws", headers=[
            ("Connection", "Upgrade"), ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13")]))
        resp = c.read_response()
        self.assertEqual(resp.status, 101)
        self.assertEqual((resp.header("Upgrade") or "").lower(), "websocket")
        self.assertIn("upgrade", (resp.header("Connection") or "").lower())
        req = self.up.events["request"]
        self.assertEqual((header_get(req["headers"], "Upgrade") or "").lower(), "websocket")
        self.assertIn("upgrade", (header_get(req["headers"], "Connection") or "").lower())
        # a two-way byte pipe
        for msg in (b"hello", b"\x00\x01binary\xff", b"x" * 200000):
            c.send(msg)
            got = b""
            while len(got) < len(msg):
                got += c.r.read_some()
            self.assertEqual(got, msg.upper())
        # client half-close: the upstream sees EOF and closes; the client sees EOF
        c.sock.shutdown(harness.socket.SHUT_WR)
        closed, extra = c.wait_closed()
        self.assertTrue(closed)
        self.assertEqual(extra, b"")


class UpgradeAllowList(GatewayTestCase):
    """A route tunnels only the upgrade protocols in its `upgrades` (default
    ["websocket"]); any other offer is served as plain HTTP/1.1 without Upgrade, and the
    bytes after it are the connection's next request, not a tunnel."""

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))
        cls.up = cls.own(RawUpstream(upgrade_handler, "foo"))
        cls.gw = cls.start_gateway(config(
            {"echo": [cls.echo.address], "foo": [cls.up.address]},
            routes=[{"name": "foo", "match": {"path_prefix": "/foo"}, "service": "foo",
                     "upgrades": ["foo"]},
                    {"name": "plain", "match": {"path_prefix": "/plain"}, "service": "echo",
                     "upgrades": []},
                    {"name": "default", "match": {"path_prefix": "/", "methods": ["GET"]},
                     "service": "echo"}]))

    def assert_served_plain(self, target, upgrade):
        c = self.client()
        c.send(build_request("GET", target, headers=[
            ("Connection", "Upgrade"), ("Upgrade", upgrade),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]) +
            build_request("GET", "/after"))
        first = c.read_response()
        self.assertEqual(first.status, 200)
        sent = first.json()
        self.assertEqual(sent["target"], target)
        self.assertIsNone(header_get(sent["headers"], "Upgrade"))
        self.assertNotIn("upgrade", (header_get(sent["headers"], "Connection") or "").lower())
        self.assertNotIn("upgrade", (first.header("Connection") or "").lower())
        second = c.read_response()  # parsed as HTTP, not piped to the upstream
        self.assertEqual(second.status, 200)
        self.assertEqual(second.json()["target"], "/after")

    def test_protocol_not_allowed_by_default(self):
        self.assert_served_plain("/x", "foo")

    def test_one_protocol_not_allowed_among_others(self):
        self.assert_served_plain("/x", "websocket, foo")

    def test_websocket_off_on_a_route_without_upgrades(self):
        self.assert_served_plain("/plain/ws", "websocket")

    def test_local_reply_leaves_the_connection_http(self):
        # No route for POST: the 404 ends the request, not the connection, and what
        # follows is parsed as the next request (it hung until a timeout).
        c = self.client()
        c.send(build_request("POST", "/x", headers=[
            ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Content-Length", "0"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]) +
            build_request("GET", "/after"))
        self.assertEqual(c.read_response().status, 404)
        second = c.read_response()
        self.assertEqual(second.status, 200)
        self.assertEqual(second.json()["target"], "/after")

    def test_allowed_protocol_tunnels(self):
        c = self.client()
        c.send(build_request("GET", "/foo/x", headers=[
            ("Connection", "Upgrade"), ("Upgrade", "FOO/2")]))
        resp = c.read_response()
        self.assertEqual(resp.status, 101)
        self.assertEqual((header_get(self.up.events["request"]["headers"], "Upgrade") or ""),
                         "FOO/2")
        c.send(b"hello")
        self.assertEqual(c.r.read_exact(5), b"HELLO")


class LocalReplyDiscardsBody(GatewayTestCase):
    """A reply the gateway makes itself before it has read the request body (no route, a
    filter's refusal, an upstream failure) reads and drops up to 64 KiB of that body and
    keeps the connection, as nginx does; a longer body, a client that holds its body back
    for 100 Continue, or a broken body closes the connection instead."""

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))
        dead = "127.0.0.1:%d" % harness.free_port()
        cls.gw = cls.start_gateway(config(
            {"echo": [cls.echo.address], "dead": [dead]},
            routes=[{"name": "key", "match": {"path_prefix": "/key"}, "service": "echo",
                     "filters": [{"type": "auth_api_key", "keys": {"alice": "k-alice"}}]},
                    {"name": "dead", "match": {"path_prefix": "/dead"}, "service": "dead"},
                    {"name": "get", "match": {"path_prefix": "/", "methods": ["GET"]},
                     "service": "echo"}],
            limits={"max_body": "1MiB"}))

    def head_answered(self, target, headers, status):
        """Sends a request head alone; returns the connection and the reply to it."""
        c = self.client()
        c.send(build_request("POST", target, headers=headers))
        reply = c.read_response()
        self.assertEqual(reply.status, status)
        return c, reply

    def assert_kept_alive(self, c, reply):
        self.assertNotEqual((reply.header("Connection") or "").lower(), "close")
        resp = c.request("GET", "/after")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["target"], "/after")

    def assert_closed_without_more(self, c):
        closed, extra = c.wait_closed()
        self.assertTrue(closed, "the connection stayed open")
        self.assertEqual(extra, b"", "more was answered on the connection")

    def test_body_in_the_same_write(self):
        c = self.client()
        c.send(build_request("POST", "/nowhere", body=b"x" * 1000) +
               build_request("GET", "/after"))
        reply = c.read_response()
        self.assertEqual(reply.status, 404)
        self.assertNotEqual((reply.header("Connection") or "").lower(), "close")
        second = c.read_response()  # the body was not taken for a request
        self.assertEqual((second.status, second.json()["target"]), (200, "/after"))

    def test_body_sent_after_the_reply(self):
        # The 404 comes before any body byte, and the body that follows is read and dropped.
        c, reply = self.head_answered("/nowhere", [("Content-Length", "5000")], 404)
        for _ in range(5):
            c.send(b"GET /x HTTP/1.1\r\n"[:10] * 100)  # body bytes that look like a request
        self.assert_kept_alive(c, reply)

    def test_chunked_body_with_trailers(self):
        c, reply = self.head_answered("/nowhere", [("Transfer-Encoding", "chunked")], 404)
        c.send(chunked_body(b"y" * 3000, sizes=(100, 1000))[:-2] + b"X-Sum: 1\r\n\r\n")
        self.assert_kept_alive(c, reply)

    def test_filter_refusal(self):
        before = [r["target"] for r in self.echo.requests].count("/key/upload")
        c, reply = self.head_answered("/key/upload", [("Content-Length", "2000")], 401)
        c.send(b"k" * 2000)
        self.assert_kept_alive(c, reply)
        self.assertEqual([r["target"] for r in self.echo.requests].count("/key/upload"), before)

    def test_upstream_failure(self):
        c, reply = self.head_answered("/dead/upload", [("Content-Length", "3000")], 502)
        c.send(b"d" * 3000)
        self.assert_kept_alive(c, reply)

    def test_declared_body_over_64k_closes(self):
        c, reply = self.head_answered("/nowhere", [("Content-Length", "100000")], 404)
        self.assertEqual(reply.header("Connection"), "close")
        self.assert_closed_without_more(c)

    def test_chunked_body_running_over_64k_closes(self):
        c, reply = self.head_answered("/nowhere", [("Transfer-Encoding", "chunked")], 404)
        try:
            c.send(chunked_body(b"z" * 100000, sizes=(8192,)) + build_request("GET", "/after"))
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while the rest was on its way: what is asserted next
        self.assert_closed_without_more(c)

    def test_client_waiting_for_100_continue_closes(self):
        # Its body may never come: reading 10 bytes would eat its next request.
        c, reply = self.head_answered("/nowhere", [
            ("Expect", "100-continue"), ("Content-Length", "10")], 404)
        self.assertEqual(reply.interim, [])
        self.assertEqual(reply.header("Connection"), "close")
        self.assert_closed_without_more(c)

    def test_broken_chunk_while_discarding_closes(self):
        c, _ = self.head_answered("/nowhere", [("Transfer-Encoding", "chunked")], 404)
        c.send(b"zz\r\nGET /after HTTP/1.1\r\nHost: test.local\r\n\r\n")
        self.assert_closed_without_more(c)


class LocalReplyMatrix(GatewayTestCase):
    """Every kind of reply the gateway makes itself, to every shape of request, with a
    second request pipelined behind it in the same write: when the reply does not say
    Connection: close the second request is served on the connection, and when it does
    the connection closes with nothing more. Neither waits for a timeout."""

    KINDS = [  # (name, method, target, extra headers)
        ("no route", "POST", "/nowhere", []),
        ("direct_response", "POST", "/direct", []),
        ("redirect", "POST", "/moved", []),
        ("ip_access", "POST", "/allow", []),
        ("auth_api_key", "POST", "/key", []),
        ("body_limit", "POST", "/limit", []),
        ("upstream down", "POST", "/dead", []),
        ("TRACE", "TRACE", "/x", []),
        ("bad Expect", "POST", "/x", [("Expect", "foo")]),
        ("CORS preflight", "OPTIONS", "/cors",
         [("Origin", "https://app.test"), ("Access-Control-Request-Method", "PUT")]),
    ]
    # The endpoint of "upstream down" is ejected after its first failures: 503 from then on.
    STATUS = {"no route": (404,), "direct_response": (418,), "redirect": (301,),
              "ip_access": (403,), "auth_api_key": (401,), "upstream down": (502, 503),
              "TRACE": (405,), "bad Expect": (417,), "CORS preflight": (204,)}
    FORMS = [  # (name, version, extra headers, body)
        ("no body", "HTTP/1.1", [], b""),
        ("length", "HTTP/1.1", [("Content-Length", "1500")], b"b" * 1500),
        ("chunked", "HTTP/1.1", [("Transfer-Encoding", "chunked")],
         chunked_body(b"c" * 1500, sizes=(700,))),
        ("expect", "HTTP/1.1", [("Expect", "100-continue"), ("Content-Length", "5")], b"hello"),
        ("upgrade", "HTTP/1.1", [("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                 ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                                 ("Content-Length", "5")], b"hello"),
        ("HTTP/1.0", "HTTP/1.0", [("Connection", "keep-alive"), ("Content-Length", "5")],
         b"hello"),
    ]

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))
        routes = [
            {"name": "direct", "match": {"path_prefix": "/direct"}, "service": "echo",
             "filters": [{"type": "direct_response", "status": 418, "body": "tea\n"}]},
            {"name": "moved", "match": {"path_prefix": "/moved"}, "service": "echo",
             "filters": [{"type": "redirect", "location": "https://${host}${path}",
                          "status": 301}]},
            {"name": "allow", "match": {"path_prefix": "/allow"}, "service": "echo",
             "filters": [{"type": "ip_access", "allow": ["10.0.0.0/8"]}]},
            {"name": "key", "match": {"path_prefix": "/key"}, "service": "echo",
             "filters": [{"type": "auth_api_key", "keys": {"alice": "k-alice"}}]},
            {"name": "limit", "match": {"path_prefix": "/limit"}, "service": "echo",
             "filters": [{"type": "body_limit", "max": "1KiB"}]},
            {"name": "cors", "match": {"path_prefix": "/cors"}, "service": "echo",
             "filters": [{"type": "cors", "allow_origins": ["https://app.test"],
                          "allow_methods": ["GET", "PUT"]}]},
            {"name": "dead", "match": {"path_prefix": "/dead"}, "service": "dead"},
            {"name": "get", "match": {"path_prefix": "/", "methods": ["GET"]},
             "service": "echo"},
        ]
        cls.gw = cls.start_gateway(config(
            {"echo": [cls.echo.address], "dead": ["127.0.0.1:%d" % harness.free_port()]},
            routes=routes))

    def test_every_reply_to_every_request_shape(self):
        for kind, method, target, kind_headers in self.KINDS:
            for form, version, form_headers, body in self.FORMS:
                with self.subTest(kind=kind, form=form):
                    expected = self.STATUS.get(kind, (413,) if len(body) > 1024 else (200,))
                    c = self.client()
                    c.send(build_request(method, target, kind_headers + form_headers, body,
                                         version=version) + build_request("GET", "/after"))
                    first = c.read_response()
                    self.assertIn(first.status, expected)
                    if version == "HTTP/1.0" and first.header("Connection") != "close":
                        # Kept: an HTTP/1.0 client must be told, or it expects the close.
                        self.assertEqual(first.header("Connection"), "keep-alive")
                    if (first.header("Connection") or "").lower() == "close":
                        closed, extra = c.wait_closed()
                        self.assertTrue(closed, "said close, stayed open")
                        self.assertEqual(extra, b"", "answered more after Connection: close")
                    else:
                        second = c.read_response()
                        self.assertEqual((second.status, second.json()["target"]),
                                         (200, "/after"))


if __name__ == "__main__":
    harness.main()
