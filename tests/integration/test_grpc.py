"""gRPC pass-through without upstream HTTP/2: a real gRPC client (python3-grpcio, generic
byte methods, no protoc) and a raw-frame HTTP/2 client (python3-h2) through an h2c
listener, HTTP/1.1 upstreams. Covers the gateway's own replies in the gRPC trailers-only
form (no route, upstream unavailable, rate limit, auth, grpc-timeout and the route's
response timeout), and trailers both ways (upstream chunked trailers to HTTP/2 and
HTTP/1.1 clients, HTTP/2 request trailers to the upstream as chunked trailers)."""

import json
import os
import socket
import struct
import sys

try:
    import grpc
    import h2.config
    import h2.connection
    import h2.events
except ImportError:  # Debian's python3-grpcio / python3-h2, when python3 is not Debian's own
    sys.path.append("/usr/lib/python3/dist-packages")
    import grpc
    import h2.config
    import h2.connection
    import h2.events

import harness
from harness import IO_TIMEOUT, EchoUpstream, GatewayTestCase, RawUpstream, config, metric


def grpc_frame(payload):
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def trailers_upstream(server, conn, r, index):
    """Answers chunked with trailers. /unary: one gRPC message then grpc-status 0 (and a
    Content-Length trailer, which the gateway must drop); /only: trailers only, no data
    (how gRPC servers send errors)."""
    while True:
        req = harness.read_request(r)
        if req is None:
            return
        with server.cond:
            server.requests = getattr(server, "requests", []) + [req]
            server.cond.notify_all()
        head = (b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        if req["target"].endswith("/only"):
            conn.sendall(head + b"0\r\ngrpc-status: 5\r\ngrpc-message: nothing%20here\r\n\r\n")
        else:
            body = grpc_frame(b"pong")
            conn.sendall(head + b"%x\r\n" % len(body) + body + b"\r\n" +
                         b"0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\nx-trailer: t1\r\n"
                         b"content-length: 99\r\n\r\n")


def silent_upstream(server, conn, r, index):
    """Reads a request head and never answers; sets the event "closed <target>" when the
    gateway closes the connection (the request was cancelled)."""
    target = None
    try:
        first = r.read_until(b"\r\n").decode("latin-1").split(" ")
        target = first[1] if len(first) > 1 else ""
        while conn.recv(65536):
            pass
    except (OSError, EOFError):
        pass
    if target is not None:
        server.event("closed " + target).set()


def stalling_upstream(server, conn, r, index):
    """Starts a chunked gRPC response (its head and one message), then stalls; sets the
    event "closed" when the gateway closes the connection (the request was cancelled)."""
    if harness.read_request(r) is None:
        return
    body = grpc_frame(b"first")
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n")
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass
    server.event("closed").set()


class H2Client:
    """python3-h2 over a plain socket (h2c, prior knowledge); keeps responses, bodies and
    trailers per stream."""

    def __init__(self, addr):
        self.sock = socket.create_connection(addr, timeout=IO_TIMEOUT)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        self.flush()
        self.streams = {}

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, headers=(), body=None, trailers=None, end=True):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", "POST"), (":scheme", "http"), (":authority", "localhost"),
                (":path", path), ("content-type", "application/grpc"), ("te", "trailers")]
        self.conn.send_headers(sid, hdrs + list(headers),
                               end_stream=body is None and trailers is None)
        self.streams[sid] = {"headers": None, "body": b"", "trailers": None, "ended": False,
                             "reset": None, "frames": []}
        if body is not None:
            self.conn.send_data(sid, body, end_stream=trailers is None and end)
        if trailers is not None:
            self.conn.send_headers(sid, list(trailers), end_stream=True)
        self.flush()
        return sid

    def wait(self, sid):
        s = self.streams[sid]
        while not s["ended"] and s["reset"] is None:
            data = self.sock.recv(65536)
            if not data:
                break
            for ev in self.conn.receive_data(data):
                r = self.streams.get(getattr(ev, "stream_id", None))
                if r is None:
                    continue
                if isinstance(ev, h2.events.ResponseReceived):
                    r["headers"] = dict(ev.headers)
                    r["frames"].append("headers")
                elif isinstance(ev, h2.events.DataReceived):
                    r["body"] += ev.data
                    if ev.data:
                        r["frames"].append("data")
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.TrailersReceived):
                    r["trailers"] = dict(ev.headers)
                    r["frames"].append("trailers")
                elif isinstance(ev, h2.events.StreamEnded):
                    r["ended"] = True
                elif isinstance(ev, h2.events.StreamReset):
                    r["reset"] = ev.error_code
            self.flush()
        return s

    def close(self):
        self.sock.close()


class Grpc(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))
        cls.trailers = cls.own(RawUpstream(trailers_upstream, "trailers"))
        cls.silent = cls.own(RawUpstream(silent_upstream, "silent"))
        cls.stalling = cls.own(RawUpstream(stalling_upstream, "stalling"))
        refused = harness.free_port()
        services = {
            "echo": [cls.echo.address],
            "trailers": [cls.trailers.address],
            "refused": ["127.0.0.1:%d" % refused],
            "stalling": [cls.stalling.address],
            "silent": {"pools": {"main": {"endpoints": [cls.silent.address]}},
                       "upstream_response_timeout": "30s"},
            "slow": {"pools": {"main": {"endpoints": [cls.silent.address]}},
                     "upstream_response_timeout": "300ms"},
        }
        routes = [
            {"name": "trailers", "match": {"path_prefix": "/trailers."}, "service": "trailers"},
            {"name": "refused", "match": {"path_prefix": "/refused."}, "service": "refused"},
            {"name": "stalling", "match": {"path_prefix": "/stalling."}, "service": "stalling"},
            {"name": "silent", "match": {"path_prefix": "/silent."}, "service": "silent"},
            {"name": "slow", "match": {"path_prefix": "/slow."}, "service": "slow"},
            {"name": "limited", "match": {"path_prefix": "/limited."}, "service": "echo",
             "filters": [{"type": "rate_limit", "rate": "1/h", "burst": 1}]},
            {"name": "auth", "match": {"path_prefix": "/auth."}, "service": "echo",
             "filters": [{"type": "auth_api_key", "keys": {"alice": "k-alice"}}]},
            {"name": "echo", "match": {"path_prefix": "/echo."}, "service": "echo"},
        ]
        listeners = [{"name": "main", "listen": "127.0.0.1:0", "http2": True}]
        doc = config(services, routes=routes, listeners=listeners, admin="127.0.0.1:0")
        cls.log_path = os.path.join(harness.tmp_dir(), "access.log")
        doc["access_log"] = {"path": cls.log_path,
                             "fields": ["path", "protocol", "status", "grpc_status"]}
        cls.gw = cls.start_gateway(doc)
        host, port = cls.gw.listeners["main"]
        cls.target = "%s:%d" % (host, port)

    def channel(self):
        ch = grpc.insecure_channel(self.target)
        self.addCleanup(ch.close)
        return ch

    def call(self, method, request=b"ping", timeout=None, metadata=None):
        """A unary call with raw bytes; returns (code, details, response)."""
        fn = self.channel().unary_unary(method)
        try:
            return grpc.StatusCode.OK, None, fn(request, timeout=timeout or IO_TIMEOUT,
                                               metadata=metadata)
        except grpc.RpcError as e:
            return e.code(), e.details(), None

    def h2(self):
        c = H2Client(self.gw.listeners["main"])
        self.addCleanup(c.close)
        return c

    # -- local replies as gRPC statuses (real client) -------------------------------

    def test_no_route_is_unimplemented(self):
        code, details, _ = self.call("/nowhere.Svc/Method")
        self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED)
        self.assertEqual(details, "no route")

    def test_unreachable_upstream_is_unavailable(self):
        code, _, _ = self.call("/refused.Svc/Method")
        self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)

    def test_rate_limit_is_resource_exhausted(self):
        codes = [self.call("/limited.Svc/Method")[0] for _ in range(3)]
        self.assertIn(grpc.StatusCode.RESOURCE_EXHAUSTED, codes)
        self.assertEqual(codes[-1], grpc.StatusCode.RESOURCE_EXHAUSTED)

    def test_auth_is_unauthenticated(self):
        code, _, _ = self.call("/auth.Svc/Method")
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
        code, _, _ = self.call("/auth.Svc/Method", metadata=(("x-api-key", "wrong"),))
        self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)

    def test_local_reply_is_one_headers_frame(self):
        c = self.h2()
        s = c.wait(c.request("/nowhere.Svc/M", body=grpc_frame(b"x")))
        self.assertTrue(s["ended"])
        self.assertEqual(s["frames"], ["headers"])
        self.assertEqual(s["headers"][":status"], "200")
        self.assertEqual(s["headers"]["content-type"], "application/grpc")
        self.assertEqual(s["headers"]["grpc-status"], "12")
        self.assertEqual(s["headers"]["grpc-message"], "no route")

    def test_http1_client_gets_trailers(self):
        c = self.client()
        c.send(harness.build_request("POST", "/nowhere.Svc/M",
                                     headers=[("Content-Type", "application/grpc"),
                                              ("Content-Length", "0"), ("Connection", "close")]))
        data = c.r.read_to_eof()
        head, _, rest = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        self.assertIn(b"transfer-encoding: chunked", head.lower())
        self.assertEqual(rest, b"0\r\ngrpc-status: 12\r\ngrpc-message: no route\r\n\r\n")

    def test_access_log_records_the_grpc_status(self):
        code, _, _ = self.call("/nowhere.Svc/Logged")
        self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED)
        self.call("/echo.Svc/NotGrpcReply")  # reaches the upstream: no gRPC local reply

        def records():
            if not os.path.exists(self.log_path):
                return []
            with open(self.log_path, "rb") as f:
                lines = f.read().split(b"\n")[:-1]
            return [json.loads(line) for line in lines]

        def find(path):
            return [r for r in records() if r["path"] == path]

        self.assertTrue(harness.wait_until(
            lambda: find("/nowhere.Svc/Logged") and find("/echo.Svc/NotGrpcReply")))
        self.assertEqual(find("/nowhere.Svc/Logged")[0],
                         {"path": "/nowhere.Svc/Logged", "protocol": "HTTP/2.0", "status": 404,
                          "grpc_status": 12})
        self.assertIsNone(find("/echo.Svc/NotGrpcReply")[0]["grpc_status"])

    # -- deadlines --------------------------------------------------------------------

    def test_client_deadline_cancels_the_upstream_request(self):
        closed = self.silent.event("closed /silent.Svc/Deadline")
        code, _, _ = self.call("/silent.Svc/Deadline", timeout=1.0)
        self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertTrue(closed.wait(IO_TIMEOUT), "the upstream request was not cancelled")

    def test_grpc_timeout_shorter_than_route_timeout_wins(self):
        # No client-side deadline: the reply can only come from the gateway.
        before = metric(self.gw, "gateway_local_replies_total")
        closed = self.silent.event("closed /silent.Svc/Timeout")
        c = self.h2()
        s = c.wait(c.request("/silent.Svc/Timeout", headers=[("grpc-timeout", "200m")],
                             body=grpc_frame(b"x")))
        self.assertEqual(s["headers"][":status"], "200")
        self.assertEqual(s["headers"]["grpc-status"], "4")
        self.assertEqual(s["headers"]["grpc-message"], "gateway: grpc-timeout expired")
        self.assertTrue(closed.wait(IO_TIMEOUT), "the upstream request was not cancelled")
        self.assertEqual(metric(self.gw, "gateway_local_replies_total"), before + 1)

    def test_grpc_timeout_while_the_request_still_streams(self):
        closed = self.silent.event("closed /silent.Svc/Streaming")
        c = self.h2()
        s = c.wait(c.request("/silent.Svc/Streaming", headers=[("grpc-timeout", "200m")],
                             body=grpc_frame(b"x"), end=False))
        self.assertEqual(s["headers"]["grpc-status"], "4")
        self.assertEqual(s["headers"]["grpc-message"], "gateway: grpc-timeout expired")
        self.assertTrue(closed.wait(IO_TIMEOUT), "the upstream request was not cancelled")

    def test_grpc_timeout_after_the_response_started_ends_it_with_trailers(self):
        # The upstream sent the head and one message, then stalled: the response ends
        # with DEADLINE_EXCEEDED in its trailers (not a reset stream).
        closed = self.stalling.event("closed")
        c = self.h2()
        s = c.wait(c.request("/stalling.Svc/M", headers=[("grpc-timeout", "300m")],
                             body=grpc_frame(b"x")))
        self.assertTrue(s["ended"])
        self.assertIsNone(s["reset"])
        self.assertEqual(s["headers"][":status"], "200")
        self.assertEqual(s["body"], grpc_frame(b"first"))
        self.assertEqual(s["frames"][-1], "trailers")
        self.assertEqual(s["trailers"]["grpc-status"], "4")
        self.assertEqual(s["trailers"]["grpc-message"], "gateway: grpc-timeout expired")
        self.assertTrue(closed.wait(IO_TIMEOUT), "the upstream request was not cancelled")

    def test_route_timeout_shorter_than_grpc_timeout_wins(self):
        c = self.h2()
        s = c.wait(c.request("/slow.Svc/M", headers=[("grpc-timeout", "60S")],
                             body=grpc_frame(b"x")))
        self.assertEqual(s["headers"]["grpc-status"], "4")
        self.assertEqual(s["headers"]["grpc-message"], "upstream response timeout")

    def test_malformed_grpc_timeout_is_ignored(self):
        c = self.h2()
        s = c.wait(c.request("/slow.Svc/M", headers=[("grpc-timeout", "1x")],
                             body=grpc_frame(b"x")))
        self.assertEqual(s["headers"]["grpc-message"], "upstream response timeout")

    # -- trailers ---------------------------------------------------------------------

    def test_real_client_reads_upstream_trailers(self):
        code, _, response = self.call("/trailers.Svc/Unary")
        self.assertEqual(code, grpc.StatusCode.OK)
        self.assertEqual(response, b"pong")
        code, details, _ = self.call("/trailers.Svc/only")
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)
        self.assertEqual(details, "nothing here")

    def test_h2_client_sees_trailing_headers_frame(self):
        c = self.h2()
        s = c.wait(c.request("/trailers.Svc/Unary", body=grpc_frame(b"ping")))
        self.assertTrue(s["ended"])
        self.assertEqual(s["body"], grpc_frame(b"pong"))
        self.assertEqual(s["trailers"], {"grpc-status": "0", "grpc-message": "ok",
                                         "x-trailer": "t1"})
        s = c.wait(c.request("/trailers.Svc/only", body=grpc_frame(b"ping")))
        self.assertEqual(s["body"], b"")
        self.assertEqual(s["trailers"]["grpc-status"], "5")

    def test_http1_client_sees_chunked_trailers(self):
        c = self.client()
        c.send(harness.build_request("POST", "/trailers.Svc/Unary",
                                     headers=[("Content-Type", "application/grpc"),
                                              ("TE", "trailers"), ("Connection", "close")],
                                     body=grpc_frame(b"ping")))
        data = c.r.read_to_eof()
        self.assertTrue(data.endswith(b"\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n"
                                      b"x-trailer: t1\r\n\r\n"), data)

    def test_h2_request_trailers_reach_the_upstream(self):
        n = self.echo.request_count()
        c = self.h2()
        s = c.wait(c.request("/echo.Svc/M", body=b"abc",
                             trailers=[("x-checksum", "42"), ("content-length", "3")]))
        self.assertTrue(s["ended"])
        self.assertTrue(self.echo.wait_for(lambda: len(self.echo.requests) > n))
        req = self.echo.last()
        self.assertTrue(req["chunked"])
        self.assertEqual(req["body"], "abc")
        self.assertEqual(req["trailers"], ["x-checksum: 42"])
        self.assertEqual(json.loads(s["body"])["trailers"], ["x-checksum: 42"])


if __name__ == "__main__":
    harness.main()
