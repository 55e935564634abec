"""Health checks, outlier ejection, panic mode, circuit breakers and retries through the
real binary, against upstreams that fail on command (answer 500, refuse, hang, close
before answering, come back). Every wait polls the admin API or an upstream's state."""

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import harness
from harness import IO_TIMEOUT, EchoUpstream, GatewayTestCase, config


class Flaky:
    """An HTTP/1.1 keep-alive upstream on a fixed port whose behaviour changes at run
    time. mode: "ok" | "500" | "503" | "hang" | "close" (close before answering) |
    "slow" (answer 200 after 200ms) |
    "refuse" (stop listening). health_mode, when set, is used for /healthz instead."""

    def __init__(self, name):
        self.name = name
        self.port = harness.free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.mode = "ok"
        self.health_mode = None
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.requests = 0         # non-health requests seen
        self.health_requests = 0
        self.conns = []
        self.sock = None
        self.listen()

    def listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self.sock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def set_mode(self, mode, health_mode=None):
        with self.cond:
            was_refusing = self.mode == "refuse"
            self.mode = mode
            self.health_mode = health_mode
            conns, self.conns = self.conns, []
        if mode == "refuse" and not was_refusing:
            # shutdown() stops listening and wakes the accept() (close() alone does not).
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        for c in conns:  # a new behaviour starts on fresh connections
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if was_refusing and mode != "refuse":
            self.listen()

    def _accept(self, s):
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            with self.cond:
                self.conns.append(conn)
            conn.settimeout(IO_TIMEOUT * 3)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        r = harness.BufferedSocket(conn)
        try:
            while True:
                req = harness.read_request(r)
                if req is None:
                    return
                health = req["target"] == "/healthz"
                with self.cond:
                    mode = self.health_mode if health and self.health_mode else self.mode
                    if health:
                        self.health_requests += 1
                    else:
                        self.requests += 1
                    self.cond.notify_all()
                if mode == "hang":
                    time.sleep(IO_TIMEOUT)
                    return
                if mode == "close":
                    return
                if mode == "slow":
                    time.sleep(0.2)  # the behaviour under test, not synchronisation
                status = {"ok": 200, "500": 500, "503": 503}.get(mode, 200)
                body = json.dumps({"upstream": self.name}).encode()
                conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (status, len(body), body))
        except (OSError, EOFError, ValueError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def wait_for(self, predicate, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(remaining)
            return True

    def close(self):
        self.set_mode("refuse")


def admin_get(gw, path):
    url = "http://%s:%d%s" % (gw.admin[0], gw.admin[1], path)
    try:
        with urllib.request.urlopen(url, timeout=IO_TIMEOUT) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def poll(predicate, timeout=IO_TIMEOUT * 2, interval=0.05):
    """Polls admin state (not a sleep as synchronisation: it waits for an observed
    change, bounded by a timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def syn_sent_to(port):
    """Sockets of this network namespace whose connect to 127.0.0.1:port is in flight
    (SYN_SENT in /proc/net/tcp)."""
    count = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "02" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def svc(endpoints, **extra):
    spec = {"lb": "round_robin", "pools": {"main": {"endpoints": endpoints}}}
    spec.update(extra)
    return spec


HEALTH = {"path": "/healthz", "interval": "50ms", "timeout": "40ms", "healthy": 2,
          "unhealthy": 2}


class Base(GatewayTestCase):

    def flaky(self, name):
        f = Flaky(name)
        self.addCleanup(f.close)
        return f

    def gw_with(self, services, **kw):
        return self.gateway(config(services, admin="127.0.0.1:0", **kw))

    def state(self, gw, service, endpoint):
        return admin_get(gw, "/services")["services"][service]["health"]["main"][endpoint]

    def wait_state(self, gw, service, endpoint, want):
        got = poll(lambda: self.state(gw, service, endpoint) == want)
        self.assertTrue(got, "%s never became %s (now %s)" %
                        (endpoint, want, self.state(gw, service, endpoint)))

    def upstreams(self, gw, n, path="/x"):
        c = self.client(gw.addr)
        seen = []
        for i in range(n):
            resp = c.request("GET", "%s/%d" % (path, i))
            seen.append((resp.status, resp.json().get("upstream") if resp.status == 200
                         else None))
        return seen


class ActiveHealth(Base):

    def test_marks_down_and_up_and_traffic_follows(self):
        a, b = self.flaky("a"), self.flaky("b")
        gw = self.gw_with({"s": svc([a.address, b.address], health_check=HEALTH)})
        self.wait_state(gw, "s", a.address, "healthy")
        a.set_mode("ok", health_mode="500")
        self.wait_state(gw, "s", a.address, "unhealthy")
        stats = admin_get(gw, "/stats")
        self.assertGreaterEqual(stats["health_marked_down"], 1)
        before = a.requests
        self.assertEqual(self.upstreams(gw, 10), [(200, "b")] * 10)
        self.assertEqual(a.requests, before, "an unhealthy endpoint got traffic")
        a.set_mode("ok")
        self.wait_state(gw, "s", a.address, "healthy")
        self.assertIn((200, "a"), self.upstreams(gw, 10))
        self.assertGreaterEqual(admin_get(gw, "/stats")["health_marked_up"], 1)
        pools = admin_get(gw, "/services")["services"]["s"]["healthy_pools"]
        self.assertEqual(pools, {"main": True})

    def test_flip_to_an_unhealthy_pool_is_refused_unless_forced(self):
        blue, green = self.flaky("blue"), self.flaky("green")
        green.set_mode("ok", health_mode="500")
        gw = self.gw_with({"s": {"active": "blue", "health_check": HEALTH,
                                 "pools": {"blue": {"endpoints": [blue.address]},
                                           "green": {"endpoints": [green.address]}}}})

        def green_state():
            return admin_get(gw, "/services")["services"]["s"]["health"]["green"][green.address]
        self.assertTrue(poll(lambda: green_state() == "unhealthy"), green_state())

        def flip(query=""):
            req = urllib.request.Request("http://%s:%d/services/s/flip%s" % (
                gw.admin[0], gw.admin[1], query), method="POST", data=b"")
            try:
                with urllib.request.urlopen(req, timeout=IO_TIMEOUT) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())
        status, body = flip()
        self.assertEqual(status, 409, body)
        self.assertIn("no healthy endpoint", body["error"])
        self.assertEqual(admin_get(gw, "/services")["services"]["s"]["active"], "blue")
        self.assertEqual(self.upstreams(gw, 3), [(200, "blue")] * 3)
        status, body = flip("?force=1")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["active"], "green")
        # Forced onto a pool whose only endpoint fails its checks: a fast 503, as asked.
        self.assertEqual(self.upstreams(gw, 3), [(503, None)] * 3)

    def test_refused_and_hanging_health_checks_mark_down(self):
        a, b = self.flaky("a"), self.flaky("b")
        gw = self.gw_with({"s": svc([a.address, b.address], health_check=HEALTH)})
        a.set_mode("refuse")
        b.set_mode("ok", health_mode="hang")
        self.wait_state(gw, "s", a.address, "unhealthy")
        self.wait_state(gw, "s", b.address, "unhealthy")
        pools = admin_get(gw, "/services")["services"]["s"]["healthy_pools"]
        self.assertEqual(pools, {"main": False})

    def test_no_healthy_endpoint_is_a_fast_503_with_retry_after(self):
        a = self.flaky("a")
        gw = self.gw_with({"s": svc([a.address], health_check=HEALTH)})
        a.set_mode("ok", health_mode="500")
        self.wait_state(gw, "s", a.address, "unhealthy")
        before = a.requests
        resp = self.client(gw.addr).request("GET", "/x")
        self.assertEqual(resp.status, 503)
        self.assertEqual(resp.header("Retry-After"), "1")
        self.assertEqual(resp.json(), {"error": "no healthy endpoint", "status": 503})
        self.assertEqual(a.requests, before)
        self.assertGreaterEqual(admin_get(gw, "/stats")["no_healthy_endpoint"], 1)

    def test_panic_mode_uses_all_endpoints(self):
        a, b = self.flaky("a"), self.flaky("b")
        gw = self.gw_with({"s": svc([a.address, b.address], health_check=HEALTH,
                                    panic_threshold=50)})
        a.set_mode("ok", health_mode="500")
        b.set_mode("ok", health_mode="500")
        self.wait_state(gw, "s", a.address, "unhealthy")
        self.wait_state(gw, "s", b.address, "unhealthy")
        seen = self.upstreams(gw, 10)
        self.assertEqual({s for s, _ in seen}, {200})
        self.assertEqual({u for _, u in seen}, {"a", "b"})
        self.assertGreaterEqual(admin_get(gw, "/stats")["panic_picks"], 10)


class Outlier(Base):

    def test_consecutive_5xx_eject_then_return(self):
        a, b = self.flaky("a"), self.flaky("b")
        gw = self.gw_with({"s": svc([a.address, b.address], outlier={
            "consecutive_errors": 3, "base_ejection_time": "300ms",
            "max_ejection_percent": 50})})
        a.set_mode("500")
        seen = self.upstreams(gw, 6)  # a answers 500 three times: ejected
        self.assertEqual([s for s, u in seen].count(500), 3, seen)
        self.assertEqual(admin_get(gw, "/stats")["outlier_ejections"], 1)
        before = a.requests
        self.assertEqual(self.upstreams(gw, 6), [(200, "b")] * 6)
        self.assertEqual(a.requests, before, "an ejected endpoint got traffic")
        a.set_mode("ok")
        # It returns once its ejection time is over: keep sending until a answers.
        back = poll(lambda: (200, "a") in self.upstreams(gw, 2))
        self.assertTrue(back, "the ejected endpoint never returned")
        self.assertEqual(admin_get(gw, "/stats")["outlier_returns"], 1)
        self.assertTrue(gw.wait_log(lambda r: r.get("msg") == "endpoint ejected"))
        self.assertTrue(gw.wait_log(lambda r: r.get("msg") == "endpoint returned from ejection"))

    def test_connect_failures_eject_and_max_ejection_percent_holds(self):
        a, b = self.flaky("a"), self.flaky("b")
        gw = self.gw_with({"s": svc([a.address, b.address], outlier={
            "consecutive_errors": 2, "max_ejection_percent": 50})})
        a.set_mode("refuse")
        b.set_mode("refuse")
        seen = self.upstreams(gw, 8)
        self.assertEqual({s for s, _ in seen}, {502})
        stats = admin_get(gw, "/stats")
        self.assertEqual(stats["outlier_ejections"], 1, "50% of two endpoints is one")
        self.assertGreaterEqual(stats["outlier_ejections_skipped"], 1)


class LatencyOutlier(Base):

    def test_slow_endpoint_is_ejected(self):
        a, b, c = self.flaky("a"), self.flaky("b"), self.flaky("c")
        c.set_mode("slow")
        gw = self.gw_with({"s": svc([a.address, b.address, c.address], outlier={
            "latency_factor": 5, "latency_min_requests": 5, "max_ejection_percent": 34})})
        first = self.upstreams(gw, 15)  # one window: 5 per endpoint
        self.assertEqual({s for s, _ in first}, {200})
        self.assertEqual(admin_get(gw, "/stats")["outlier_ejections"], 1)
        record = gw.wait_log(lambda r: r.get("msg") == "endpoint ejected")
        self.assertEqual((record["endpoint"], record["reason"]), (c.address, "latency"))
        before = c.requests
        self.assertNotIn((200, "c"), self.upstreams(gw, 10))
        self.assertEqual(c.requests, before)


class Breakers(Base):

    def test_max_requests_overflow_is_a_fast_503(self):
        echo = self.upstream(EchoUpstream("echo"))
        gw = self.gw_with({"s": svc([echo.address], circuit_breaker={"max_requests": 2})})
        holders = []
        for i in range(2):
            h = self.client(gw.addr)
            h.send(harness.build_request("GET", "/hold/%d" % i, headers=[("X-Echo-Hold", "1")]))
            holders.append(h)
        self.assertTrue(echo.wait_for(lambda: len(echo.requests) >= 2))
        resp = self.client(gw.addr).request("GET", "/over")
        self.assertEqual(resp.status, 503)
        self.assertEqual(resp.json()["error"], "circuit breaker open: too many requests")
        self.assertEqual(admin_get(gw, "/stats")["circuit_breaker_max_requests"], 1)
        record = gw.wait_log(lambda r: r.get("msg") == "circuit breaker open")
        self.assertEqual(record["limit"], "max_requests")
        echo.release()
        for h in holders:
            self.assertEqual(h.read_response().status, 200)
        self.assertEqual(self.client(gw.addr).request("GET", "/after").status, 200)
        self.assertTrue(gw.wait_log(lambda r: r.get("msg") == "circuit breaker closed"))

    def test_max_connections_overflow_is_a_fast_503(self):
        # A held request keeps its upstream connection open; a second request would need
        # a second connection.
        echo = self.upstream(EchoUpstream("echo"))
        gw = self.gw_with({"s": svc([echo.address], circuit_breaker={"max_connections": 1})})
        h = self.client(gw.addr)
        h.send(harness.build_request("GET", "/hold", headers=[("X-Echo-Hold", "1")]))
        self.assertTrue(echo.wait_for(lambda: len(echo.requests) >= 1))
        resp = self.client(gw.addr).request("GET", "/over")
        self.assertEqual(resp.status, 503)
        self.assertEqual(resp.json()["error"],
                         "circuit breaker open: too many upstream connections")
        self.assertEqual(admin_get(gw, "/stats")["circuit_breaker_max_connections"], 1)
        echo.release()
        self.assertEqual(h.read_response().status, 200)

    def test_max_pending_overflow_is_a_fast_503(self):
        # Loopback connects finish at once, unless the upstream's accept queue is full:
        # with a backlog of 0 that never accepts, one connection (ours) fills it and the
        # kernel drops later SYNs, so the gateway's connect stays in flight (SYN_SENT).
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(0)
        port = blocker.getsockname()[1]
        filler = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.addCleanup(filler.close)
        gw = self.gw_with({"s": svc(["127.0.0.1:%d" % port],
                                    upstream_connect_timeout="60s",
                                    circuit_breaker={"max_pending": 1})})
        h = self.client(gw.addr)
        h.send(harness.build_request("GET", "/pending"))
        self.assertTrue(poll(lambda: syn_sent_to(port) >= 1),
                        "the gateway's connect never stayed pending")
        resp = self.client(gw.addr).request("GET", "/over")
        self.assertEqual(resp.status, 503)
        self.assertEqual(resp.json()["error"],
                         "circuit breaker open: too many upstream connections")
        self.assertEqual(admin_get(gw, "/stats")["circuit_breaker_max_pending"], 1)
        record = gw.wait_log(lambda r: r.get("msg") == "circuit breaker open")
        self.assertEqual(record["limit"], "max_pending")
        h.close()  # the pending connect is abandoned with its request


class Retries(Base):

    def test_connect_failure_retried_on_another_endpoint(self):
        a, b = self.flaky("a"), self.flaky("b")
        a.set_mode("refuse")
        gw = self.gw_with({"s": svc([a.address, b.address], retry={"attempts": 1},
                                    outlier={"consecutive_errors": 0})})
        self.assertEqual(self.upstreams(gw, 10), [(200, "b")] * 10)
        # Round robin: the retry's pick moves the cursor past b, so every request tries
        # a first (outlier ejection, off here, is what would stop that).
        stats = admin_get(gw, "/stats")
        self.assertEqual(stats["retries"], 10)
        self.assertEqual(stats["upstream_connect_failures"], 10)

    def test_status_and_reset_retried_for_idempotent_only(self):
        a, b = self.flaky("a"), self.flaky("b")
        a.set_mode("503")
        gw = self.gw_with({"s": svc([a.address, b.address],
                                    retry={"attempts": 1, "on": ["reset", "503"]},
                                    outlier={"consecutive_errors": 0})})
        self.assertEqual(self.upstreams(gw, 6), [(200, "b")] * 6)
        a.set_mode("close")
        self.assertEqual(self.upstreams(gw, 6), [(200, "b")] * 6)
        # POST is not idempotent: a's failure reaches the client.
        c = self.client(gw.addr)
        statuses = [c.request("POST", "/p/%d" % i).status for i in range(4)]
        self.assertIn(502, statuses)
        self.assertIn(200, statuses)

    def test_no_retry_without_policy(self):
        a, b = self.flaky("a"), self.flaky("b")
        a.set_mode("503")
        gw = self.gw_with({"s": svc([a.address, b.address],
                                    outlier={"consecutive_errors": 0})})
        seen = self.upstreams(gw, 4)
        self.assertEqual(sorted(s for s, _ in seen), [200, 200, 503, 503])

    def test_retry_budget_holds_under_an_outage(self):
        a, b = self.flaky("a"), self.flaky("b")
        a.set_mode("hang")
        b.set_mode("hang")
        gw = self.gw_with({"s": svc([a.address, b.address], upstream_response_timeout="5s",
                                    retry={"attempts": 3, "on": ["reset"],
                                           "per_try_timeout": "300ms", "budget_percent": 20,
                                           "min_retry_concurrency": 1},
                                    outlier={"consecutive_errors": 0})})
        clients = []
        for i in range(10):
            c = self.client(gw.addr)
            c.send(harness.build_request("GET", "/outage/%d" % i))
            clients.append(c)
        statuses = [c.read_response().status for c in clients]
        self.assertEqual(set(statuses), {504})
        stats = admin_get(gw, "/stats")
        # Without a budget 10 requests x 3 attempts = 30 retries; the budget allows at
        # most max(1, 20% of 10) = 2 in flight at a time.
        self.assertGreaterEqual(stats["retry_budget_exhausted"], 1)
        self.assertLess(stats["retries"], 30)


class Dns(Base):

    def test_hostname_endpoints_are_re_resolved_and_keep_working(self):
        a = self.flaky("a")
        gw = self.gw_with({"s": svc(["localhost:%d" % a.port], dns_refresh="100ms")})
        self.assertTrue(poll(lambda: admin_get(gw, "/stats")["dns_refresh_rounds"] >= 3),
                        "no re-resolution rounds")
        self.assertEqual(admin_get(gw, "/stats")["dns_refresh_failures"], 0)
        self.assertEqual(self.upstreams(gw, 3), [(200, "a")] * 3)
        # The same addresses came back: no new snapshot was published.
        self.assertFalse([r for r in list(gw.records)
                          if r.get("msg", "").startswith("endpoint addresses changed")])
