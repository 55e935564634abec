"""HTTP/2 downstream: ALPN h2 over TLS and prior knowledge (h2c) on a plain listener,
with real clients (curl, nghttp) and a raw-frame client (python3-h2) for the limits and
attack defences: rapid reset, CONTINUATION flood, PING flood, empty DATA frames,
malformed and oversized header blocks, and GOAWAY on SIGTERM while a stream is open.
Every stream is an ordinary exchange to an HTTP/1.1 upstream."""

import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import urllib.request

try:
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
    import hpack
except ImportError:  # Debian's python3-h2, when python3 is not Debian's own
    sys.path.append("/usr/lib/python3/dist-packages")
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
    import hpack

import harness
from harness import IO_TIMEOUT, EchoUpstream, GatewayTestCase, config, header_get, metric

PROTOCOL_ERROR = 1
ENHANCE_YOUR_CALM = 11

cert = harness.test_cert


def h2_doc(echo, **extra_limits):
    tls = {"certificates": [{"cert": cert("localhost.pem"), "key": cert("localhost.key")}]}
    listeners = [
        {"name": "main", "listen": "127.0.0.1:0", "http2": True},
        {"name": "tls", "listen": "127.0.0.1:0", "http2": True, "tls": tls},
        {"name": "h1", "listen": "127.0.0.1:0"},
    ]
    limits = dict({"max_body": "1MiB"}, **extra_limits)
    return config({"echo": [echo.address]}, listeners=listeners, admin="127.0.0.1:0",
                  limits=limits)


def curl(url, *args):
    """curl; returns (exit code, http version, status, body)."""
    cmd = ["curl", "-sS", "-o", "-", "-w", "\n%{http_version} %{http_code}",
           "--max-time", str(int(IO_TIMEOUT)), "--cacert", cert("ca.pem")]
    p = subprocess.run(cmd + list(args) + [url], capture_output=True, timeout=IO_TIMEOUT + 5)
    body, _, tail = p.stdout.rpartition(b"\n")
    version, _, status = tail.decode().partition(" ")
    return p.returncode, version, int(status or 0), body


def stats(gw):
    with urllib.request.urlopen("http://%s:%d/stats" % gw.admin, timeout=IO_TIMEOUT) as r:
        return json.loads(r.read())


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream_id) + payload


class H2Client:
    """A client over python3-h2: sends what h2 queues, feeds what arrives, and keeps the
    events. `validate=False` lets it send header blocks a real client must not."""

    def __init__(self, addr, tls=False, validate=True, window=None):
        self.sock = socket.create_connection(addr, timeout=IO_TIMEOUT)
        if tls:
            ctx = ssl.create_default_context(cafile=cert("ca.pem"))
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
            assert self.sock.selected_alpn_protocol() == "h2"
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=validate,
                                        normalize_outbound_headers=validate,
                                        validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.responses = {}   # stream id -> {"status", "headers", "body", "reset", "ended"}
        self.terminated = None
        self.eof = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data):
        self.flush()
        self.sock.sendall(data)

    def request(self, method, path, headers=(), body=None, end=True, authority="localhost"):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "https"), (":authority", authority),
                (":path", path)] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=body is None and end)
        self.flush()
        self.responses[sid] = {"status": None, "headers": [], "body": b"", "reset": None,
                               "ended": False}
        if body is not None:
            self.send_body(sid, body, end)
        return sid

    def send_body(self, sid, body, end):
        """Sends as the stream's window allows (the gateway opens it as the upstream
        takes the bytes)."""
        view = memoryview(body)
        while len(view) > 0:
            window = min(self.conn.local_flow_control_window(sid),
                         self.conn.max_outbound_frame_size)
            if window <= 0:
                if not self.pump() or self.finished(sid):
                    return
                continue
            self.conn.send_data(sid, bytes(view[:window]))
            view = view[window:]
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def pump(self):
        """Reads once and handles the events; False at EOF."""
        try:
            data = self.sock.recv(262144)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.eof = True
            return False
        for ev in self.conn.receive_data(data):
            r = self.responses.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived):
                r["headers"] = ev.headers
                r["status"] = int(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                r["body"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                r["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                if r is not None:
                    r["reset"] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.terminated = ev
        self.flush()
        return True

    def wait(self, predicate):
        while not predicate():
            if not self.pump():
                break
        return predicate()

    def finished(self, sid):
        r = self.responses[sid]
        return r["ended"] or r["reset"] is not None

    def close(self):
        self.sock.close()


def h2_client(test, addr, **kw):
    """An H2Client closed when `test` ends."""
    c = H2Client(addr, **kw)
    test.addCleanup(c.close)
    return c


class Http2(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))
        cls.gw = cls.start_gateway(h2_doc(cls.echo))

    def url(self, path, listener="tls"):
        host, port = self.gw.listeners[listener]
        scheme = "https" if listener == "tls" else "http"
        return "%s://localhost:%d%s" % (scheme, port, path)

    def client(self, listener="main", **kw):
        return h2_client(self, self.gw.listeners[listener], tls=listener == "tls", **kw)

    # -- real clients ------------------------------------------------------------
    def test_curl_http2_over_tls(self):
        code, version, status, body = curl(self.url("/hello?x=1"), "--http2")
        self.assertEqual((code, version, status), (0, "2", 200), body)
        req = json.loads(body)
        self.assertEqual(req["target"], "/hello?x=1")
        self.assertEqual(req["version"], "HTTP/1.1")  # the upstream speaks HTTP/1.1
        self.assertEqual(header_get(req["headers"], "Host"),
                         "localhost:%d" % self.gw.listeners["tls"][1])
        self.assertEqual(header_get(req["headers"], "X-Forwarded-Proto"), "https")

    def test_curl_h2c_prior_knowledge(self):
        code, version, status, body = curl(self.url("/h2c", "main"), "--http2-prior-knowledge")
        self.assertEqual((code, version, status), (0, "2", 200), body)
        self.assertEqual(json.loads(body)["target"], "/h2c")

    def test_http1_and_http2_clients_reach_the_same_upstream(self):
        for args, want in ((["--http1.1"], "1.1"), (["--http2"], "2")):
            code, version, status, body = curl(self.url("/same"), *args)
            self.assertEqual((code, version, status), (0, want, 200))
            self.assertEqual(json.loads(body)["upstream"], "echo")
        code, version, status, _ = curl(self.url("/same", "main"), "--http1.1")
        self.assertEqual((code, version, status), (0, "1.1", 200))
        # A listener without `http2` does not take the preface.
        code, _, status, _ = curl(self.url("/", "h1"), "--http2-prior-knowledge")
        self.assertNotEqual((code, status), (0, 200))

    def test_alpn_offers_h2_only_where_enabled(self):
        p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" %
                            self.gw.listeners["tls"][1], "-alpn", "h2,http/1.1"],
                           input=b"", capture_output=True, timeout=IO_TIMEOUT)
        self.assertIn("ALPN protocol: h2", (p.stdout + p.stderr).decode())

    def test_nghttp_several_streams(self):
        urls = [self.url("/n/%d" % i, "main") for i in range(5)]
        p = subprocess.run(["nghttp", "-n", "-s"] + urls, capture_output=True,
                           timeout=IO_TIMEOUT * 2)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        for i in range(5):
            self.assertRegex(out, r"200 .* /n/%d" % i)

    def test_large_response_through_flow_control(self):
        # 1 MiB through a 16 KiB stream window that the client opens as it reads, both
        # with Content-Length and de-chunked from a chunked upstream response.
        for chunked in ("", "1"):
            code, version, status, body = curl(
                self.url("/big"), "--http2", "-H", "X-Echo-Body-Size: 1048576",
                "-H", "X-Echo-Chunked: %s" % chunked)
            self.assertEqual((code, version, status), (0, "2", 200))
            self.assertEqual(len(body), 1048576)
            self.assertEqual(body, b"".join(harness.pattern_chunks(1048576)))
        c = self.client(window=16384)
        sid = c.request("GET", "/slow", [("x-echo-body-size", "1048576"),
                                         ("x-echo-chunked", "1")])
        self.assertTrue(c.wait(lambda: c.finished(sid)))
        r = c.responses[sid]
        self.assertEqual((r["status"], r["reset"]), (200, None))
        self.assertEqual(r["body"], b"".join(harness.pattern_chunks(1048576)))
        self.assertNotIn("transfer-encoding", dict(r["headers"]))

    def test_concurrent_streams_on_one_connection(self):
        c = self.client("tls")
        sids = [c.request("GET", "/c/%d" % i) for i in range(20)]
        self.assertTrue(c.wait(lambda: all(c.finished(s) for s in sids)))
        for i, sid in enumerate(sids):
            r = c.responses[sid]
            self.assertEqual(r["status"], 200)
            self.assertEqual(json.loads(r["body"])["target"], "/c/%d" % i)

    def test_post_bodies(self):
        c = self.client()
        body = b"".join(harness.pattern_chunks(300000))
        with_length = c.request("POST", "/post", [("content-length", str(len(body)))], body)
        without = c.request("POST", "/post2", [], body)  # goes upstream chunked
        self.assertTrue(c.wait(lambda: c.finished(with_length) and c.finished(without)))
        for sid, chunked in ((with_length, False), (without, True)):
            r = c.responses[sid]
            self.assertEqual(r["status"], 200)
            req = json.loads(r["body"])
            self.assertEqual(req["method"], "POST")
            self.assertEqual(req["body_len"], len(body))
            self.assertEqual(req["chunked"], chunked)
            self.assertEqual(req["body_sha256"], harness.pattern_sha256(300000))

    def test_head_and_local_replies(self):
        c = self.client()
        head = c.request("HEAD", "/h", [("x-echo-body-size", "1000")])
        too_big = c.request("POST", "/big-upload", [("content-length", "2000000")],
                            b"x" * 1000, end=False)
        self.assertTrue(c.wait(lambda: c.finished(head) and c.finished(too_big)))
        r = c.responses[head]
        self.assertEqual((r["status"], r["body"]), (200, b""))
        self.assertEqual(dict(r["headers"])["content-length"], "1000")
        self.assertEqual(c.responses[too_big]["status"], 413)
        self.assertIn(b"too large", c.responses[too_big]["body"])

    # -- malformed requests and limits ---------------------------------------------
    def test_malformed_header_blocks_are_reset(self):
        before = metric(self.gw, "gateway_http2_rejected_streams_total", '{reason="malformed"}')
        c = self.client(validate=False)
        bad = [[("connection", "keep-alive")], [("X-Upper", "1")], [("te", "gzip")],
               [("transfer-encoding", "chunked")]]
        sids = [c.request("GET", "/bad", h) for h in bad]
        good = c.request("GET", "/good")
        self.assertTrue(c.wait(lambda: all(c.finished(s) for s in sids + [good])))
        for sid in sids:
            self.assertEqual(c.responses[sid]["reset"], PROTOCOL_ERROR, sid)
        self.assertEqual(c.responses[good]["status"], 200)  # the connection goes on
        self.assertEqual(metric(self.gw, "gateway_http2_rejected_streams_total",
                                '{reason="malformed"}'), before + len(bad))

    def test_header_list_over_max_header_bytes_is_reset(self):
        before = metric(self.gw, "gateway_http2_rejected_streams_total",
                        '{reason="header_list_too_large"}')
        c = self.client()
        sid = c.request("GET", "/huge", [("x-big", "a" * 20000)])
        self.assertTrue(c.wait(lambda: c.finished(sid)))
        self.assertEqual(c.responses[sid]["reset"], ENHANCE_YOUR_CALM)
        self.assertEqual(metric(self.gw, "gateway_http2_rejected_streams_total",
                                '{reason="header_list_too_large"}'), before + 1)

    def test_hpack_bomb_is_bounded_by_the_decoded_size(self):
        # One 4000-byte field enters the HPACK table, then 9 one-byte references to it:
        # a small block that decodes to 40 KB, over max_header_bytes (16 KiB).
        before = metric(self.gw, "gateway_http2_rejected_streams_total",
                        '{reason="header_list_too_large"}')
        c = self.client()
        sid = c.request("GET", "/bomb", [("x-bomb", "b" * 4000)] * 10)
        self.assertLess(len(c.conn.encoder.encode([("x-bomb", "b" * 4000)])), 10)
        self.assertTrue(c.wait(lambda: c.finished(sid)))
        self.assertEqual(c.responses[sid]["reset"], ENHANCE_YOUR_CALM)
        self.assertEqual(metric(self.gw, "gateway_http2_rejected_streams_total",
                                '{reason="header_list_too_large"}'), before + 1)

    def assertClosedForAbuse(self, c, reason, before):
        self.assertTrue(c.wait(lambda: c.terminated is not None or c.eof))
        if c.terminated is not None:
            self.assertEqual(c.terminated.error_code, ENHANCE_YOUR_CALM)
        self.assertTrue(c.wait(lambda: c.eof), "the connection stays open")
        self.assertGreater(metric(self.gw, "gateway_http2_connections_closed_total",
                                  '{reason="%s"}' % reason), before)

    def test_rapid_reset_closes_the_connection(self):
        label = '{reason="rapid_reset"}'
        before = metric(self.gw, "gateway_http2_connections_closed_total", label)
        c = self.client()
        for _ in range(300):
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                      (":authority", "localhost"), (":path", "/rr")])
            c.conn.reset_stream(sid)
        c.flush()
        self.assertTrue(c.wait(lambda: c.terminated is not None))
        self.assertEqual(c.terminated.error_code, ENHANCE_YOUR_CALM)
        self.assertClosedForAbuse(c, "rapid_reset", before)

    def test_continuation_flood_closes_the_connection(self):
        before = metric(self.gw, "gateway_http2_connections_closed_total",
                        '{reason="continuation_flood"}')
        c = self.client(validate=False)
        enc = hpack.Encoder()
        block = enc.encode([(":method", "GET"), (":scheme", "http"), (":path", "/"),
                            (":authority", "localhost")])
        data = frame(1, 0, 1, block)  # HEADERS without END_HEADERS
        piece = enc.encode([("x-c", "v")])
        data += b"".join(frame(9, 0, 1, piece) for _ in range(50))
        c.send_raw(data)
        self.assertClosedForAbuse(c, "continuation_flood", before)

    def test_ping_flood_closes_the_connection(self):
        before = metric(self.gw, "gateway_http2_connections_closed_total",
                        '{reason="control_flood"}')
        c = self.client()
        c.send_raw(b"".join(frame(6, 0, 0, struct.pack(">Q", i)) for i in range(1500)))
        self.assertClosedForAbuse(c, "control_flood", before)

    def test_settings_flood_closes_the_connection(self):
        before = metric(self.gw, "gateway_http2_connections_closed_total",
                        '{reason="control_flood"}')
        c = self.client()
        c.send_raw(frame(4, 0, 0) * 1500)  # empty SETTINGS, each wants an ACK
        self.assertClosedForAbuse(c, "control_flood", before)

    def test_empty_data_flood_closes_the_connection(self):
        before = metric(self.gw, "gateway_http2_connections_closed_total",
                        '{reason="empty_frame_flood"}')
        c = self.client()
        sid = c.request("POST", "/empty", end=False)
        c.send_raw(b"".join(frame(0, 0, sid) for _ in range(300)))
        self.assertClosedForAbuse(c, "empty_frame_flood", before)


class Http2ConfiguredLimits(GatewayTestCase):
    """`http2 = { ... }` on a listener: the limits are advertised and enforced."""

    def setUp(self):
        self.echo = self.upstream(EchoUpstream("echo"))
        doc = h2_doc(self.echo)
        doc["listeners"][0]["http2"] = {"max_concurrent_streams": 3, "max_resets": 5,
                                        "stream_window": "128KiB"}
        self.gw = self.gateway(doc)

    def client(self):
        return h2_client(self, self.gw.listeners["main"])

    def test_settings_advertise_the_configured_limits(self):
        c = self.client()
        self.assertTrue(c.wait(lambda: c.conn.remote_settings.max_concurrent_streams == 3),
                        "SETTINGS_MAX_CONCURRENT_STREAMS 3 never arrived")
        self.assertEqual(c.conn.remote_settings.initial_window_size, 128 * 1024)
        sid = c.request("GET", "/ok")
        self.assertTrue(c.wait(lambda: c.finished(sid)))
        self.assertEqual(c.responses[sid]["status"], 200)

    def test_a_stream_over_the_limit_ends_the_connection(self):
        c = self.client()
        self.assertTrue(c.wait(lambda: c.conn.remote_settings.max_concurrent_streams == 3))
        self.addCleanup(self.echo.release)
        held = [c.request("GET", "/held/%d" % i, [("x-echo-hold", "1")]) for i in range(3)]
        self.assertTrue(self.echo.held.wait(IO_TIMEOUT))
        # A fourth stream: python3-h2 would refuse to open it, so it goes out as a raw
        # HEADERS frame (END_STREAM | END_HEADERS) encoded with the client's own HPACK
        # context.
        block = c.conn.encoder.encode([(":method", "GET"), (":scheme", "http"),
                                       (":authority", "localhost"), (":path", "/over")])
        c.send_raw(frame(1, 0x5, held[-1] + 2, block))
        self.assertTrue(c.wait(lambda: c.terminated is not None or c.eof))
        self.assertIsNotNone(c.terminated, "closed without GOAWAY")
        self.assertEqual(c.terminated.error_code, PROTOCOL_ERROR)

    def test_reset_limit_is_the_configured_one(self):
        label = '{reason="rapid_reset"}'
        before = metric(self.gw, "gateway_http2_connections_closed_total", label)
        c = self.client()
        self.assertTrue(c.wait(lambda: c.conn.remote_settings.max_concurrent_streams == 3))

        def resets(n):
            for _ in range(n):
                sid = c.conn.get_next_available_stream_id()
                c.conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                          (":authority", "localhost"), (":path", "/rr")])
                c.conn.reset_stream(sid)
            c.flush()
        resets(5)  # at the limit: the connection goes on
        sid = c.request("GET", "/still-open")
        self.assertTrue(c.wait(lambda: c.finished(sid)))
        self.assertEqual(c.responses[sid]["status"], 200)
        resets(3)
        self.assertTrue(c.wait(lambda: c.terminated is not None))
        self.assertEqual(c.terminated.error_code, ENHANCE_YOUR_CALM)
        self.assertEqual(metric(self.gw, "gateway_http2_connections_closed_total", label),
                         before + 1)


class Http2Drain(GatewayTestCase):

    def test_goaway_on_sigterm_lets_the_open_stream_finish(self):
        echo = self.upstream(EchoUpstream("echo"))
        gw = self.gateway(h2_doc(echo))
        host, port = gw.listeners["main"]
        # nghttp (python3-h2 stops reading frames once it has seen a GOAWAY).
        client = subprocess.Popen(
            ["nghttp", "-v", "-H", "x-echo-hold: 1", "http://%s:%d/held" % (host, port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(client.kill)
        self.assertTrue(echo.held.wait(IO_TIMEOUT))
        gw.send_signal(signal.SIGTERM)
        self.assertTrue(gw.wait_log(lambda r: r.get("msg") == "draining"))
        # "draining" is the control thread's line; the worker drains when its mailbox
        # message arrives. Release the stream only once the worker has sent GOAWAY.
        self.assertTrue(harness.wait_until(lambda: stats(gw)["drains_started"] >= 1),
                        "the worker never started draining")
        echo.release()
        out, _ = client.communicate(timeout=IO_TIMEOUT)
        text = out.decode("utf-8", "replace")
        self.assertEqual(client.returncode, 0, text)
        self.assertRegex(text, r"recv GOAWAY frame[^\n]*\n\s*\(last_stream_id=13, "
                               r"error_code=NO_ERROR")
        self.assertRegex(text, r":status: 200")
        self.assertEqual(gw.wait_exit(), 0)


class Http2AccessLog(GatewayTestCase):

    def test_access_log_records_the_protocol(self):
        echo = self.upstream(EchoUpstream("echo"))
        path = os.path.join(harness.tmp_dir(), "access.log")
        doc = h2_doc(echo)
        doc["access_log"] = {"path": path}
        gw = self.gateway(doc)
        host, port = gw.listeners["main"]
        for args in (["--http2-prior-knowledge"], ["--http1.1"]):
            code, _, status, _ = curl("http://%s:%d/logged" % (host, port), *args)
            self.assertEqual((code, status), (0, 200))

        def lines():
            try:
                with open(path) as f:
                    return [json.loads(line) for line in f if line.strip()]
            except FileNotFoundError:
                return []
        self.assertTrue(harness.wait_until(lambda: len(lines()) >= 2))
        self.assertEqual([(r["protocol"], r["path"], r["status"]) for r in lines()],
                         [("HTTP/2.0", "/logged", 200), ("HTTP/1.1", "/logged", 200)])


class Http2SlowClient(GatewayTestCase):

    def test_backpressure_and_a_client_that_takes_nothing(self):
        # The client opens no window: the gateway stops reading the upstream (it does not
        # buffer the 64 MiB response), and after idle timeouts without progress it closes.
        echo = self.upstream(EchoUpstream("echo"))
        gw = self.gateway(h2_doc(echo, idle_timeout="1s"))
        c = h2_client(self, gw.listeners["main"], window=0)
        sid = c.request("GET", "/stuck", [("x-echo-body-size", str(64 << 20))])
        self.assertTrue(c.wait(lambda: c.eof))
        self.assertEqual(c.responses[sid]["status"], 200)
        self.assertEqual(c.responses[sid]["body"], b"")
        self.assertLess(echo.body_bytes_sent, 32 << 20)


class Http2BrokenUpstreamBody(GatewayTestCase):
    """An upstream body that fails to parse in the read that brought its head: the stream
    gets a 502 (the staged response head is dropped before it is framed), as over
    HTTP/1, rather than RST_STREAM. A break after the head has gone still resets it."""

    @classmethod
    def setUpClass(cls):
        cls.head_arrived = threading.Event()

        def bad(server, conn, reader, index):
            req = reader.read_until(b"\r\n\r\n")
            head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            if b" /late " in req:
                conn.sendall(head + b"5\r\nhello\r\n")
                if cls.head_arrived.wait(IO_TIMEOUT):  # the client has the head
                    conn.sendall(b"zz\r\n")
            else:
                conn.sendall(head + b"zz\r\nhello\r\n0\r\n\r\n")  # one read
            harness.close_quietly(conn)

        cls.up = cls.own(harness.RawUpstream(bad, "bad"))
        cls.gw = cls.start_gateway(h2_doc(cls.up))

    def client(self):
        return h2_client(self, self.gw.listeners["main"])

    def test_bad_chunk_in_the_first_read_is_502(self):
        c = self.client()
        sid = c.request("GET", "/first")
        self.assertTrue(c.wait(lambda: c.finished(sid)))
        r = c.responses[sid]
        self.assertEqual((r["status"], r["reset"], r["ended"]), (502, None, True))
        self.assertIn(b"invalid response from upstream", r["body"])
        sid2 = c.request("GET", "/second")  # the connection serves on
        self.assertTrue(c.wait(lambda: c.finished(sid2)))
        self.assertEqual(c.responses[sid2]["status"], 502)

    def test_curl_over_tls_gets_502(self):
        code, version, status, body = curl(
            "https://localhost:%d/curl" % self.gw.listeners["tls"][1], "--http2")
        self.assertEqual((code, version, status), (0, "2", 502), body)

    def test_break_after_the_head_resets_the_stream(self):
        c = self.client()
        sid = c.request("GET", "/late")
        self.assertTrue(c.wait(lambda: c.responses[sid]["status"] is not None))
        self.head_arrived.set()
        self.assertTrue(c.wait(lambda: c.finished(sid)))
        r = c.responses[sid]
        self.assertEqual((r["status"], r["ended"], r["reset"]), (200, False, 2))  # INTERNAL_ERROR
        self.assertTrue(b"hello".startswith(r["body"]))


class Http2UpstreamResponseMatrix(GatewayTestCase):
    """test_failures.UpstreamResponseMatrix over HTTP/2 streams: every scripted upstream
    response to GET and HEAD, all streams on one connection. A good response arrives
    whole and right (no body for HEAD, 204 and 304); a broken one as 502/503 or as a
    reset stream, never as a stream that ends whole; the connection serves on."""

    @classmethod
    def setUpClass(cls):
        cls.good = cls.own(harness.RawUpstream(harness.scripted_upstream, "good"))
        cls.bad = cls.own(harness.RawUpstream(harness.scripted_upstream, "bad"))
        listeners = [{"name": "main", "listen": "127.0.0.1:0", "http2": True}]
        cls.gw = cls.start_gateway(config(
            {"good": [cls.good.address], "bad": [cls.bad.address]}, listeners=listeners,
            routes=[{"name": "bad", "match": {"path_prefix": "/bad/"}, "service": "bad"},
                    {"name": "good", "match": {"path_prefix": "/"}, "service": "good"}]))

    def test_every_response_shape(self):
        c = h2_client(self, self.gw.listeners["main"])
        for kind in list(harness.GOOD_RESPONSES) + list(harness.BAD_RESPONSES):
            for method in ("GET", "HEAD"):
                with self.subTest(upstream=kind, method=method):
                    good = kind in harness.GOOD_RESPONSES
                    sid = c.request(method, ("/r/" if good else "/bad/") + kind)
                    self.assertTrue(c.wait(lambda: c.finished(sid)))
                    r = c.responses[sid]
                    if good or (kind.startswith("cut-") and method == "HEAD"):
                        status = harness.scripted_status(kind) if good else 200
                        no_body = method == "HEAD" or status in (204, 304)
                        self.assertEqual((r["status"], r["reset"], r["ended"]),
                                         (status, None, True))
                        self.assertEqual(r["body"], b"" if no_body else harness.HELLO)
                    elif r["reset"] is None:
                        self.assertIn(r["status"], (502, 503), r["body"])
                        self.assertTrue(r["ended"])
                    else:  # cut after the head had gone: the stream is reset
                        self.assertTrue(kind.startswith("cut-"), r)
                        self.assertFalse(r["ended"])
        self.assertIsNone(c.terminated)


if __name__ == "__main__":
    harness.main()
