"""Upstream connection pool and load balancing: keep-alive reuse, an idle connection
the upstream closed, Connection: close from upstream, idle limits, round robin."""

import threading

import harness
from harness import IO_TIMEOUT, EchoUpstream, GatewayTestCase, RawUpstream, config


def answer_then_close(server, conn, r, index):
    """Answers one request with a keep-alive response, then closes the connection
    as an upstream's idle timeout would."""
    req = harness.read_request(r)
    if req is None:
        return
    body = ("conn %d %s" % (index, req["target"])).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    conn.close()
    server.event("closed-%d" % index).set()


class Pool(GatewayTestCase):

    def test_keep_alive_reuse_across_client_connections(self):
        echo = self.upstream(EchoUpstream("echo"))
        gw = self.gateway(config({"echo": [echo.address]}, workers=1))
        n = 12
        for i in range(n):
            c = self.client(gw.addr)
            resp = c.request("GET", "/reuse/%d" % i)
            self.assertEqual(resp.status, 200)
            c.close()
        self.assertEqual(echo.request_count(), n)
        self.assertLess(echo.connections, n, "no upstream connection was reused")
        self.assertLessEqual(echo.connections, 2,
                             "%d upstream connections for %d sequential requests"
                             % (echo.connections, n))

    def test_upstream_closed_idle_connection_is_not_an_error(self):
        up = self.upstream(RawUpstream(answer_then_close, "closer"))
        gw = self.gateway(config({"closer": [up.address]}, workers=1))
        c = self.client(gw.addr)
        for i in range(1, 6):
            resp = c.request("GET", "/idle-close/%d" % i)
            self.assertEqual(resp.status, 200, "request %d after an upstream idle close" % i)
            self.assertTrue(resp.body.startswith(b"conn "), resp.body)
            self.assertTrue(up.event("closed-%d" % up.connections).wait(IO_TIMEOUT))
        # also with a POST body (nothing was sent on the dead connection either)
        resp = c.request("POST", "/idle-close-post", body=b"payload")
        self.assertEqual(resp.status, 200)

    def test_upstream_connection_close_not_reused(self):
        echo = self.upstream(EchoUpstream("echo"))
        gw = self.gateway(config({"echo": [echo.address]}, workers=1))
        c = self.client(gw.addr)
        r1 = c.request("GET", "/a", headers=[("X-Echo-Close", "1")])
        self.assertEqual(r1.status, 200)
        r2 = c.request("GET", "/b")
        self.assertEqual(r2.status, 200)
        self.assertNotEqual(r1.json()["connection"], r2.json()["connection"])
        # the client connection is not closed because the upstream's was
        self.assertEqual(c.request("GET", "/c").status, 200)

    def test_idle_connection_timeout(self):
        echo = self.upstream(EchoUpstream("echo"))
        gw = self.gateway(config({"echo": {"pools": {"main": {"endpoints": [echo.address]}},
                                           "idle_connection_timeout": "300ms"}}, workers=1))
        self.assertEqual(self.client(gw.addr).request("GET", "/x").status, 200)
        self.assertTrue(echo.wait_for(lambda: echo.closed_connections >= 1,
                                      timeout=IO_TIMEOUT),
                        "idle upstream connection was never closed")

    def test_max_idle_connections(self):
        echo = self.upstream(EchoUpstream("echo"))
        gw = self.gateway(config({"echo": {"pools": {"main": {"endpoints": [echo.address]}},
                                           "max_idle_connections": 1}}, workers=1))
        clients = [self.client(gw.addr) for _ in range(3)]
        for i, c in enumerate(clients):
            c.send(harness.build_request("GET", "/held/%d" % i,
                                         headers=[("X-Echo-Hold", "1")]))
        self.assertTrue(echo.wait_for(lambda: len(echo.requests) >= 3),
                        "three concurrent requests did not reach the upstream")
        self.assertEqual(echo.connections, 3)
        echo.release()
        for c in clients:
            self.assertEqual(c.read_response().status, 200)
        self.assertTrue(echo.wait_for(lambda: echo.closed_connections >= 2),
                        "more than max_idle_connections = 1 kept open: %d closed of 3"
                        % echo.closed_connections)


class RoundRobin(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.a = cls.own(EchoUpstream("a"))
        cls.b = cls.own(EchoUpstream("b"))
        cls.gw = cls.start_gateway(config(
            {"rr": {"lb": "round_robin",
                    "pools": {"main": {"endpoints": [cls.a.address, cls.b.address]}}}},
            workers=1))

    def test_round_robin_spreads_requests(self):
        hits = {"a": 0, "b": 0}
        c = self.client()
        for i in range(20):
            resp = c.request("GET", "/rr/%d" % i)
            self.assertEqual(resp.status, 200)
            hits[resp.json()["upstream"]] += 1
        self.assertEqual(hits["a"] + hits["b"], 20)
        self.assertTrue(8 <= hits["a"] <= 12, hits)
        self.assertTrue(8 <= hits["b"] <= 12, hits)

    def test_round_robin_concurrent_clients(self):
        results = []
        lock = threading.Lock()

        def run(k):
            c = harness.RawClient(self.gw.addr)
            try:
                for i in range(5):
                    resp = c.request("GET", "/rrc/%d/%d" % (k, i))
                    with lock:
                        results.append((resp.status, resp.json()["upstream"]))
            finally:
                c.close()

        threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(IO_TIMEOUT * 3)
        self.assertEqual(len(results), 20)
        self.assertTrue(all(s == 200 for s, _ in results))
        self.assertTrue({u for _, u in results} == {"a", "b"}, results)


class InactivePool(GatewayTestCase):
    """Only the active pool gets traffic."""

    @classmethod
    def setUpClass(cls):
        cls.blue = cls.own(EchoUpstream("blue"))
        cls.green = cls.own(EchoUpstream("green"))
        cls.gw = cls.start_gateway(config(
            {"app": {"active": "green",
                     "pools": {"blue": {"endpoints": [cls.blue.address]},
                               "green": {"endpoints": [cls.green.address]}}}}))

    def test_active_pool_only(self):
        c = self.client()
        for i in range(4):
            self.assertEqual(c.request("GET", "/bg/%d" % i).json()["upstream"], "green")
        self.assertEqual(self.blue.connections, 0)


if __name__ == "__main__":
    harness.main()
