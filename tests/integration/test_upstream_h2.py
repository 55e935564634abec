"""Upstream HTTP/2: a pool with protocol = "h2c" (prior knowledge) or "h2" (TLS, ALPN h2)
in front of a real HTTP/2 server written with python3-h2. HTTP/1.1 and HTTP/2 clients
share the route; requests are multiplexed over few upstream connections, the server's
SETTINGS_MAX_CONCURRENT_STREAMS is respected, bodies stream both ways under flow control,
and stream or connection failures become 502 or a cut response, never a hang."""

import hashlib
import json
import os
import ssl
import subprocess
import sys
import threading
import urllib.request
from urllib.parse import parse_qs, urlsplit

try:
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
except ImportError:  # Debian's python3-h2, when python3 is not Debian's own
    sys.path.append("/usr/lib/python3/dist-packages")
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings

import harness
from harness import IO_TIMEOUT, GatewayTestCase, close_quietly, config

INTERNAL_ERROR = 2

cert = harness.test_cert


def curl(url, *args):
    """curl; returns (exit code, http version, status, body)."""
    cmd = ["curl", "-sS", "-o", "-", "-w", "\n%{http_version} %{http_code}",
           "--max-time", str(int(IO_TIMEOUT))]
    p = subprocess.run(cmd + list(args) + [url], capture_output=True, timeout=IO_TIMEOUT + 5)
    body, _, tail = p.stdout.rpartition(b"\n")
    version, _, status = tail.decode().partition(" ")
    return p.returncode, version, int(status or 0), body


def curl_many(urls, *args):
    """Runs one curl per URL at the same time; returns [(exit code, status, body)]."""
    procs = [subprocess.Popen(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time",
                               str(int(IO_TIMEOUT))] + list(args) + [u],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for u in urls]
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=IO_TIMEOUT + 5)
        body, _, status = stdout.rpartition(b"\n")
        out.append((p.returncode, int(status or 0), body))
    return out


class _Conn:
    """One HTTP/2 connection of the server: its h2 state, guarded by `lock` (any thread
    may answer a held stream)."""

    def __init__(self, sock, h2conn, index):
        self.sock = sock
        self.h2 = h2conn
        self.index = index
        self.lock = threading.RLock()
        self.streams = {}   # stream id -> request record (open, not yet answered)
        self.pending = {}   # stream id -> response body bytes waiting for the window

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)


class H2Upstream(harness._ServerBase):
    """An HTTP/2 server (prior knowledge, or TLS with ALPN when `tls_ctx`). Records every
    request with the connection it came on and the most streams open at once per
    connection. Paths: /hold (answered once `hold` requests are held), /reset (RST_STREAM
    INTERNAL_ERROR), /kill (head and some body, then the connection closes), /trailers
    (body then trailers), /goaway (the first one: GOAWAY
    without processing it, then the connection closes), /big?n=N (N bytes, flow controlled); anything else: JSON
    describing the request."""

    def __init__(self, name="h2-upstream", max_streams=None, tls_ctx=None, hold=0):
        self.max_streams = max_streams
        self.tls_ctx = tls_ctx
        self.hold = hold
        self.requests = []
        self.max_active = {}
        self.held = []
        self.goaway_sent = False
        super().__init__(name)

    def handle(self, conn, index):
        if self.tls_ctx is None:
            self.serve(conn, index)
            return
        tls = self.tls_ctx.wrap_socket(conn, server_side=True)
        try:
            self.serve(tls, index)
        finally:
            tls.close()

    def serve(self, conn, index):
        h = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        if self.max_streams:
            h.local_settings = h2.settings.Settings(
                client=False,
                initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams})
        c = _Conn(conn, h, index)
        with c.lock:
            h.initiate_connection()
            c.flush()
        while True:
            data = conn.recv(65536)
            if not data:
                return
            self._record(data)
            with c.lock:
                for event in h.receive_data(data):
                    if self.on_event(c, event) == "kill":
                        close_quietly(conn)
                        return
                c.flush()

    def on_event(self, c, ev):
        if isinstance(ev, h2.events.RequestReceived):
            headers = dict(ev.headers)
            req = {"conn": c.index, "stream": ev.stream_id, "method": headers.get(":method"),
                   "path": headers.get(":path"), "scheme": headers.get(":scheme"),
                   "authority": headers.get(":authority"), "headers": ev.headers,
                   "body": bytearray()}
            c.streams[ev.stream_id] = req
            with self.cond:
                self.requests.append(req)
                self.max_active[c.index] = max(self.max_active.get(c.index, 0), len(c.streams))
                self.cond.notify_all()
            if req["path"].startswith("/goaway") and not self.goaway_sent:
                # The stream is beyond the GOAWAY's last stream id: not processed.
                self.goaway_sent = True
                c.h2.close_connection(last_stream_id=ev.stream_id - 2 if ev.stream_id > 2 else 0)
                c.flush()
                return "kill"
            if req["path"].startswith("/reset"):
                c.h2.reset_stream(ev.stream_id, error_code=INTERNAL_ERROR)
                del c.streams[ev.stream_id]
        elif isinstance(ev, h2.events.DataReceived):
            req = c.streams.get(ev.stream_id)
            if req is not None:
                req["body"] += ev.data
            c.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            req = c.streams.get(ev.stream_id)
            if req is not None:
                return self.answer(c, ev.stream_id, req)
        elif isinstance(ev, h2.events.WindowUpdated):
            self.pump(c)
        elif isinstance(ev, h2.events.StreamReset):
            c.streams.pop(ev.stream_id, None)
            c.pending.pop(ev.stream_id, None)
        return None

    def answer(self, c, sid, req):
        path = req["path"]
        if path.startswith("/hold"):
            release = None
            with self.cond:
                self.held.append((c, sid, req))
                if len(self.held) >= self.hold:
                    release, self.held = self.held, []
            for hc, hsid, hreq in release or []:
                with hc.lock:
                    self.respond_json(hc, hsid, hreq)
                    hc.flush()
            return None
        if path.startswith("/kill"):
            c.h2.send_headers(sid, [(":status", "200"), ("content-type", "text/plain")])
            c.h2.send_data(sid, b"x" * 1000)
            c.flush()
            return "kill"
        if path.startswith("/trailers"):
            c.h2.send_headers(sid, [(":status", "200"), ("content-type", "text/plain")])
            c.h2.send_data(sid, b"hello")
            c.h2.send_headers(sid, [("grpc-status", "0"), ("x-trailer", "yes")], end_stream=True)
            del c.streams[sid]
            return None
        if path.startswith("/big"):
            n = int(parse_qs(urlsplit(path).query)["n"][0])
            c.h2.send_headers(sid, [(":status", "200"), ("content-length", str(n))])
            c.pending[sid] = b"".join(harness.pattern_chunks(n))
            del c.streams[sid]
            self.pump(c)
            return None
        self.respond_json(c, sid, req)
        return None

    def respond_json(self, c, sid, req):
        body = json.dumps({
            "conn": req["conn"], "stream": sid, "method": req["method"], "path": req["path"],
            "scheme": req["scheme"], "authority": req["authority"],
            "headers": [[k, v] for k, v in req["headers"] if not k.startswith(":")],
            "body_len": len(req["body"]),
            "body_sha256": hashlib.sha256(bytes(req["body"])).hexdigest()}).encode()
        c.h2.send_headers(sid, [(":status", "200"), ("content-type", "application/json"),
                                ("content-length", str(len(body)))])
        c.h2.send_data(sid, body, end_stream=True)
        c.streams.pop(sid, None)

    def pump(self, c):
        for sid in list(c.pending):
            data = c.pending[sid]
            while data:
                room = min(c.h2.local_flow_control_window(sid), c.h2.max_outbound_frame_size)
                if room <= 0:
                    break
                piece, data = data[:room], data[room:]
                c.h2.send_data(sid, piece, end_stream=not data)
            if data:
                c.pending[sid] = data
            else:
                del c.pending[sid]

    def connection_count(self):
        with self.cond:
            return len({r["conn"] for r in self.requests})


def h2_doc(up, protocol="h2c", tls=None, service=None, **pool_extra):
    pool = dict({"endpoints": [up.address], "protocol": protocol}, **pool_extra)
    if tls is not None:
        pool["tls"] = tls
    listeners = [{"name": "main", "listen": "127.0.0.1:0", "http2": True}]
    svc = dict(service or {}, pools={"main": pool})
    return config({"h2up": svc}, listeners=listeners,
                  admin="127.0.0.1:0", limits={"max_body": "8MiB"})


class UpstreamH2c(GatewayTestCase):

    def url(self, gw, path):
        host, port = gw.listeners["main"]
        return "http://%s:%d%s" % (host, port, path)

    def test_http1_and_h2c_clients_reach_the_h2_upstream(self):
        up = self.upstream(H2Upstream())
        gw = self.gateway(h2_doc(up))
        for args, version in ((["--http1.1"], "1.1"), (["--http2-prior-knowledge"], "2")):
            code, got_version, status, body = curl(self.url(gw, "/hello?x=1"), *args)
            self.assertEqual((code, got_version, status), (0, version, 200), body)
            req = json.loads(body)
            self.assertEqual((req["method"], req["path"], req["scheme"]),
                             ("GET", "/hello?x=1", "http"))
            self.assertEqual(req["authority"], "127.0.0.1:%d" % gw.listeners["main"][1])
            names = [k for k, _ in req["headers"]]
            self.assertNotIn("connection", names)
            self.assertIn("x-forwarded-for", names)
        # Both requests went over one upstream connection.
        self.assertEqual(up.connections, 1)
        with urllib.request.urlopen("http://%s:%d/services" % gw.admin,
                                    timeout=IO_TIMEOUT) as r:
            services = json.loads(r.read())
        self.assertEqual(services["services"]["h2up"]["pool_protocols"], {"main": "h2c"})

    def test_concurrent_requests_share_few_connections(self):
        n = 10
        up = self.upstream(H2Upstream(hold=n))  # nobody is answered until all n arrived
        gw = self.gateway(h2_doc(up))
        urls = [self.url(gw, "/hold/%d" % i) for i in range(n)]
        procs_http1 = urls[: n // 2]
        procs_h2 = urls[n // 2:]
        results = []
        threads = [threading.Thread(target=lambda u=procs_http1: results.extend(
            curl_many(u, "--http1.1"))),
                   threading.Thread(target=lambda u=procs_h2: results.extend(
                       curl_many(u, "--http2-prior-knowledge")))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(IO_TIMEOUT + 10)
        self.assertEqual(len(results), n)
        for code, status, body in results:
            self.assertEqual((code, status), (0, 200), body)
        self.assertEqual(len(up.requests), n)
        self.assertLess(up.connection_count(), n, "requests were not multiplexed")
        self.assertGreater(max(up.max_active.values()), 1)

    def test_server_max_concurrent_streams_is_respected(self):
        up = self.upstream(H2Upstream(max_streams=2))
        gw = self.gateway(h2_doc(up))
        results = curl_many([self.url(gw, "/limit/%d" % i) for i in range(10)], "--http1.1")
        for code, status, body in results:
            self.assertEqual((code, status), (0, 200), body)
        self.assertEqual(len(up.requests), 10)
        self.assertLessEqual(max(up.max_active.values()), 2, up.max_active)

    def test_pool_cap_opens_another_connection(self):
        n = 4
        up = self.upstream(H2Upstream(hold=n))
        gw = self.gateway(h2_doc(up, max_streams_per_connection=1))
        results = curl_many([self.url(gw, "/hold/cap%d" % i) for i in range(n)], "--http1.1")
        for code, status, body in results:
            self.assertEqual((code, status), (0, 200), body)
        self.assertEqual(up.connection_count(), n)
        self.assertEqual(max(up.max_active.values()), 1)

    def test_request_bodies_arrive_intact(self):
        up = self.upstream(H2Upstream())
        gw = self.gateway(h2_doc(up))
        body = os.urandom(1 << 20)
        c = self.client(gw.listeners["main"])
        resp = c.request("POST", "/upload", body=body,
                         headers=[("Content-Length", str(len(body)))])
        self.assertEqual(resp.status, 200, resp.body[:200])
        got = resp.json()
        self.assertEqual(got["body_len"], len(body))
        self.assertEqual(got["body_sha256"], hashlib.sha256(body).hexdigest())
        # Chunked from the client: DATA frames without a content-length upstream.
        data = b"0123456789" * 50_000
        p = subprocess.run(["curl", "-sS", "--http1.1", "-H", "Transfer-Encoding: chunked",
                            "--data-binary", "@-", self.url(gw, "/chunked")], input=data,
                           capture_output=True, timeout=IO_TIMEOUT + 5)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = json.loads(p.stdout)
        self.assertEqual(got["body_len"], len(data))
        self.assertEqual(got["body_sha256"], hashlib.sha256(data).hexdigest())
        # Over HTTP/2 downstream too.
        p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--data-binary", "@-",
                            self.url(gw, "/h2post")], input=body, capture_output=True,
                           timeout=IO_TIMEOUT + 5)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_large_response_flows_under_flow_control(self):
        up = self.upstream(H2Upstream())
        gw = self.gateway(h2_doc(up))
        n = 4 << 20
        code, _, status, body = curl(self.url(gw, "/big?n=%d" % n), "--http1.1")
        self.assertEqual((code, status, len(body)), (0, 200, n))
        self.assertEqual(hashlib.sha256(body).hexdigest(), harness.pattern_sha256(n))

    def test_upstream_reset_is_502(self):
        up = self.upstream(H2Upstream())
        gw = self.gateway(h2_doc(up))
        code, _, status, body = curl(self.url(gw, "/reset"), "--http1.1")
        self.assertEqual((code, status), (0, 502), body)
        # The connection survives a stream reset.
        code, _, status, _ = curl(self.url(gw, "/after-reset"), "--http1.1")
        self.assertEqual((code, status), (0, 200))

    def test_goaway_with_the_stream_unprocessed_is_retried(self):
        up = self.upstream(H2Upstream())
        gw = self.gateway(h2_doc(up))
        code, _, status, body = curl(self.url(gw, "/goaway"), "--http1.1")
        self.assertEqual((code, status), (0, 200), body)
        self.assertEqual([r["path"] for r in up.requests], ["/goaway", "/goaway"])
        self.assertEqual(json.loads(body)["conn"], 2)

    def test_idle_connection_closes_after_the_idle_timeout(self):
        up = self.upstream(H2Upstream())
        gw = self.gateway(h2_doc(up, service={"idle_connection_timeout": "1s"}))
        code, _, status, _ = curl(self.url(gw, "/idle"), "--http1.1")
        self.assertEqual((code, status), (0, 200))
        self.assertTrue(up.wait_for(lambda: up.closed_connections == 1),
                        "the idle upstream HTTP/2 connection stayed open")
        code, _, status, _ = curl(self.url(gw, "/after-idle"), "--http1.1")
        self.assertEqual((code, status), (0, 200))
        self.assertEqual(up.connections, 2)

    def test_upstream_killed_mid_response_cuts_the_client(self):
        up = self.upstream(H2Upstream())
        gw = self.gateway(h2_doc(up))
        code, _, status, body = curl(self.url(gw, "/kill"), "--http1.1")
        self.assertNotEqual(code, 0, "a cut response must not look complete")
        self.assertEqual(status, 200)
        self.assertLess(len(body), 1001)
        # A new connection serves the next request.
        code, _, status, _ = curl(self.url(gw, "/after-kill"), "--http1.1")
        self.assertEqual((code, status), (0, 200))

    def test_trailers_end_a_chunked_response(self):
        up = self.upstream(H2Upstream())
        gw = self.gateway(h2_doc(up))
        code, _, status, body = curl(self.url(gw, "/trailers"), "--http1.1")
        self.assertEqual((code, status, body), (0, 200, b"hello"))
        code, version, status, body = curl(self.url(gw, "/trailers"), "--http2-prior-knowledge")
        self.assertEqual((code, version, status, body), (0, "2", 200, b"hello"))


class UpstreamH2Tls(GatewayTestCase):

    def server_ctx(self, alpn):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert("localhost.pem"), cert("localhost.key"))
        ctx.set_alpn_protocols(alpn)
        return ctx

    def test_h2_over_tls_with_alpn(self):
        up = self.upstream(H2Upstream(tls_ctx=self.server_ctx(["h2"])))
        gw = self.gateway(h2_doc(up, protocol="h2", tls={"ca_file": cert("ca.pem")}))
        c = self.client(gw.listeners["main"])
        for i in range(3):
            resp = c.request("GET", "/tls/%d" % i)
            self.assertEqual(resp.status, 200, resp.body)
            self.assertEqual(resp.json()["scheme"], "https")
        self.assertEqual(up.connections, 1)

    def test_server_without_h2_alpn_is_502(self):
        up = self.upstream(H2Upstream(tls_ctx=self.server_ctx(["http/1.1"])))
        gw = self.gateway(h2_doc(up, protocol="h2", tls={"ca_file": cert("ca.pem")}))
        resp = self.client(gw.listeners["main"]).request("GET", "/no-alpn")
        self.assertEqual(resp.status, 502)
        self.assertEqual(up.requests, [])
        self.assertTrue(gw.wait_log(lambda r: "did not select h2" in r.get("msg", "")))


if __name__ == "__main__":
    import unittest
    unittest.main()
