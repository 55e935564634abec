"""gRPC end to end (issue 9): a real gRPC client and a real gRPC server (python3-grpcio,
generic byte methods, no protoc), with the gateway between them: an h2c listener in
front, an `h2c` upstream pool behind. Unary, server-streaming, client-streaming and
bidirectional calls; the server's status, message and trailing metadata reach the
client; a client deadline ends the call with DEADLINE_EXCEEDED and cancels it at the
server; many concurrent calls share few upstream connections."""

import sys
import threading
from concurrent import futures

try:
    import grpc
except ImportError:  # Debian's python3-grpcio, when python3 is not Debian's own
    sys.path.append("/usr/lib/python3/dist-packages")
    import grpc

import harness
from harness import IO_TIMEOUT, GatewayTestCase, config

SERVICE = "demo.Echo"


class EchoServer:
    """A grpcio server on a loopback port. Records the peer of every call (so a test can
    count the gateway's upstream connections) and the calls the client cancelled."""

    def __init__(self):
        self.lock = threading.Lock()
        self.peers = set()
        self.cancelled = threading.Event()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary),
            "Fail": grpc.unary_unary_rpc_method_handler(self.fail),
            "Hang": grpc.unary_unary_rpc_method_handler(self.hang),
            "Count": grpc.unary_stream_rpc_method_handler(self.count),
            "Sum": grpc.stream_unary_rpc_method_handler(self.sum),
            "Chat": grpc.stream_stream_rpc_method_handler(self.chat),
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.address = "127.0.0.1:%d" % self.port

    def close(self):
        self.server.stop(None)

    def seen(self, context):
        with self.lock:
            self.peers.add(context.peer())

    def unary(self, request, context):
        self.seen(context)
        context.set_trailing_metadata((("x-served-by", "grpc-server"),))
        return b"echo:" + request

    def fail(self, request, context):
        self.seen(context)
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing: " + request.decode())

    def hang(self, request, context):
        # Answers only when the call ends (the client's deadline): the callback runs
        # when the gateway cancels the stream.
        done = threading.Event()
        context.add_callback(done.set)
        if done.wait(IO_TIMEOUT):
            self.cancelled.set()
        return b"too late"

    def count(self, request, context):
        self.seen(context)
        for i in range(int(request)):
            yield b"%d" % i

    def sum(self, request_iterator, context):
        self.seen(context)
        return b"%d" % sum(int(r) for r in request_iterator)

    def chat(self, request_iterator, context):
        self.seen(context)
        for r in request_iterator:
            yield r.upper()


class GrpcThroughGateway(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.grpc_server = cls.own(EchoServer())
        services = {"grpc": {"pools": {"main": {"endpoints": [cls.grpc_server.address],
                                                 "protocol": "h2c"}}}}
        routes = [{"name": "grpc", "match": {"path_prefix": "/%s/" % SERVICE},
                   "service": "grpc"}]
        listeners = [{"name": "main", "listen": "127.0.0.1:0", "http2": True}]
        cls.gw = cls.start_gateway(config(services, routes=routes, listeners=listeners))
        host, port = cls.gw.listeners["main"]
        cls.target = "%s:%d" % (host, port)

    def channel(self):
        ch = grpc.insecure_channel(self.target)
        self.addCleanup(ch.close)
        return ch

    def method(self, kind, name):
        return getattr(self.channel(), kind)("/%s/%s" % (SERVICE, name))

    def test_unary_call_with_trailing_metadata(self):
        call = self.method("unary_unary", "Unary")
        response, info = call.with_call(b"hello", timeout=IO_TIMEOUT)
        self.assertEqual(response, b"echo:hello")
        self.assertEqual(info.code(), grpc.StatusCode.OK)
        self.assertIn(("x-served-by", "grpc-server"), tuple(info.trailing_metadata()))

    def test_server_status_and_message_reach_the_client(self):
        call = self.method("unary_unary", "Fail")
        with self.assertRaises(grpc.RpcError) as caught:
            call(b"widget", timeout=IO_TIMEOUT)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(caught.exception.details(), "no such thing: widget")

    def test_server_streaming(self):
        call = self.method("unary_stream", "Count")
        got = list(call(b"500", timeout=IO_TIMEOUT))
        self.assertEqual(got, [b"%d" % i for i in range(500)])

    def test_client_streaming(self):
        call = self.method("stream_unary", "Sum")
        self.assertEqual(call(iter([b"%d" % i for i in range(1000)]), timeout=IO_TIMEOUT),
                         b"%d" % sum(range(1000)))

    def test_bidirectional_streaming(self):
        call = self.method("stream_stream", "Chat")
        words = [b"alpha", b"beta", b"gamma"] * 50
        self.assertEqual(list(call(iter(words), timeout=IO_TIMEOUT)), [w.upper() for w in words])

    def test_deadline_cancels_the_call_at_the_server(self):
        call = self.method("unary_unary", "Hang")
        with self.assertRaises(grpc.RpcError) as caught:
            call(b"x", timeout=1.0)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertTrue(self.grpc_server.cancelled.wait(IO_TIMEOUT),
                        "the server never saw the call end")

    def test_concurrent_calls_share_upstream_connections(self):
        call = self.method("unary_unary", "Unary")
        with self.grpc_server.lock:
            self.grpc_server.peers.clear()
        n = 40
        with futures.ThreadPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(lambda i: call(b"%d" % i, timeout=IO_TIMEOUT), range(n)))
        self.assertEqual(results, [b"echo:%d" % i for i in range(n)])
        with self.grpc_server.lock:
            peers = len(self.grpc_server.peers)
        # One worker; 40 calls at once on at most a few multiplexed connections.
        self.assertGreaterEqual(peers, 1)
        self.assertLess(peers, n // 4, "%d upstream connections for %d calls" % (peers, n))


if __name__ == "__main__":
    harness.main()
