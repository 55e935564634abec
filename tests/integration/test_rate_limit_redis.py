"""The global rate_limit (`redis = ...`) through the real binary and a real
redis-server on loopback: one limit shared by two gateway instances, the filter chain
pausing for Redis (request bodies and pipelined requests survive the pause), the
failure modes when Redis is down or hangs, a client that leaves during the pause, and
config errors."""

import os
import shutil
import signal
import socket
import subprocess
import time

import harness
from harness import EchoUpstream, GatewayTestCase, build_request, config, run_gateway

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """A private redis-server on a free loopback port, no persistence."""

    def __init__(self):
        self.dir = harness.tmp_dir()
        self.port = harness.free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.log = open(os.path.join(self.dir, "redis.log"), "wb")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + harness.STARTUP_TIMEOUT
        while True:
            try:
                if self.command("PING") == b"+PONG":
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)  # polling the server's port until it answers

    def command(self, *args):
        """One command over a fresh connection; returns the first reply line."""
        payload = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            payload += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(payload)
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.strip()

    def stop_process(self):
        self.proc.send_signal(signal.SIGSTOP)

    def continue_process(self):
        self.proc.send_signal(signal.SIGCONT)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


def limited_route(name, prefix, redis, rate="5/m", key="route", mode="open", timeout="200ms"):
    return {"name": name, "match": {"path_prefix": prefix}, "service": "app",
            "filters": [{"type": "rate_limit", "rate": rate, "key": key, "redis": redis,
                         "redis_timeout": timeout, "failure_mode": mode,
                         "redis_prefix": "test:%s:" % name}]}


class GlobalRateLimit(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.redis = cls.own(RedisServer())
        cls.app = cls.own(EchoUpstream("app"))
        dead = "127.0.0.1:%d" % harness.free_port()
        routes = [
            limited_route("shared", "/shared", cls.redis.address),
            limited_route("body", "/body", cls.redis.address, rate="1000/m"),
            limited_route("byhdr", "/byhdr", cls.redis.address, rate="2/m", key="header:X-User",
                          mode="closed"),
            limited_route("deadopen", "/deadopen", dead, mode="open"),
            limited_route("deadclosed", "/deadclosed", dead, mode="closed"),
            {"name": "plain", "match": {"path_prefix": "/"}, "service": "app"},
        ]
        doc = config({"app": [cls.app.address]}, routes=routes, workers=2)
        # Two gateway instances, two workers each, sharing one Redis.
        cls.gw = cls.start_gateway(doc, name="gw-a")
        cls.gw2 = cls.start_gateway(doc, name="gw-b")

    def setUp(self):
        self.assertEqual(self.redis.command("FLUSHALL"), b"+OK")

    def get(self, gw, target, headers=None):
        return self.client(gw.addr).request("GET", target, headers=headers)

    def test_one_limit_across_two_gateways_and_their_workers(self):
        before = self.app.request_count()
        results = []
        for i in range(8):
            gw = self.gw if i % 2 == 0 else self.gw2
            resp = self.get(gw, "/shared")  # a new connection each: both workers serve
            results.append(resp)
        statuses = [r.status for r in results]
        self.assertEqual(statuses, [200] * 5 + [429] * 3)
        self.assertEqual(self.app.request_count() - before, 5)
        remaining = [int(r.header("RateLimit-Remaining")) for r in results[:5]]
        self.assertEqual(remaining, [4, 3, 2, 1, 0])
        for r in results:
            self.assertEqual(r.header("RateLimit-Limit"), "5")
            self.assertGreaterEqual(int(r.header("RateLimit-Reset")), 1)
        for r in results[5:]:
            self.assertEqual(r.json()["error"], "rate limit exceeded")
            self.assertGreaterEqual(int(r.header("Retry-After")), 1)
            self.assertLessEqual(int(r.header("Retry-After")), 120)

    def test_header_key_separates_counters(self):
        a = [self.get(self.gw, "/byhdr", [("X-User", "alice")]).status for _ in range(3)]
        b = [self.get(self.gw2, "/byhdr", [("X-User", "bob")]).status for _ in range(2)]
        self.assertEqual(a, [200, 200, 429])
        self.assertEqual(b, [200, 200])

    def test_request_body_and_pipelined_requests_survive_the_pause(self):
        body = b"x" * 3000 + b"END"
        c = self.client(self.gw.addr)
        # Head, body and a second request in one write: the parser stops after the first
        # head while Redis answers, and the rest waits in the gateway.
        c.send(build_request("POST", "/body/1", [("Content-Length", str(len(body)))], body)
               + build_request("GET", "/body/2"))
        first = c.read_response()
        second = c.read_response()
        self.assertEqual(first.status, 200)
        self.assertEqual(first.json()["target"], "/body/1")
        self.assertEqual(first.json()["body"], body.decode())
        self.assertEqual(second.status, 200)
        self.assertEqual(second.json()["target"], "/body/2")
        # Chunked, sent in pieces after the head.
        c.send(build_request("POST", "/body/3", [("Transfer-Encoding", "chunked")]))
        c.send(harness.chunked_body(b"abcdef" * 100))
        third = c.read_response()
        self.assertEqual(third.status, 200)
        self.assertEqual(third.json()["body"], "abcdef" * 100)
        self.assertIsNotNone(third.header("RateLimit-Remaining"))

    def test_redis_down_fail_open_and_fail_closed(self):
        before = self.app.request_count()
        opened = [self.get(self.gw, "/deadopen") for _ in range(3)]
        self.assertEqual([r.status for r in opened], [200] * 3)
        self.assertIsNone(opened[0].header("RateLimit-Limit"))  # nothing was decided
        closed = [self.get(self.gw, "/deadclosed") for _ in range(3)]
        self.assertEqual([r.status for r in closed], [503] * 3)
        self.assertEqual(closed[0].json()["error"], "rate limit service unavailable")
        self.assertEqual(closed[0].header("Retry-After"), "1")
        self.assertEqual(self.app.request_count() - before, 3)

class HungRedis(GatewayTestCase):
    """A Redis that stops answering (SIGSTOP): calls time out, the failure mode
    answers, and the limiter comes back once Redis does. Its own Redis and gateway, so
    the backoff it causes cannot leak into other tests."""

    @classmethod
    def setUpClass(cls):
        cls.redis = cls.own(RedisServer())
        cls.app = cls.own(EchoUpstream("app"))
        routes = [
            limited_route("shared", "/shared", cls.redis.address),
            limited_route("byhdr", "/byhdr", cls.redis.address, rate="2/m", key="header:X-User",
                          mode="closed"),
            {"name": "plain", "match": {"path_prefix": "/"}, "service": "app"},
        ]
        cls.gw = cls.start_gateway(config({"app": [cls.app.address]}, routes=routes))

    def get(self, gw, target, headers=None):
        return self.client(gw.addr).request("GET", target, headers=headers)

    def test_hung_redis_times_out_then_recovers(self):
        self.redis.stop_process()
        try:
            resp = self.get(self.gw, "/byhdr", [("X-User", "carol")])
            self.assertEqual(resp.status, 503)  # failure_mode closed, after the timeout
            # A client that gives up while its request waits on Redis.
            c = harness.RawClient(self.gw.addr)
            c.send(build_request("GET", "/shared"))
            c.close()
        finally:
            self.redis.continue_process()
        # Redis answers again: once the client's backoff has passed, limits apply again.
        deadline = time.monotonic() + 20 * harness.SCALE
        while True:
            resp = self.get(self.gw, "/byhdr", [("X-User", "dave")])
            if resp.status == 200 and resp.header("RateLimit-Limit") == "2":
                break
            self.assertLess(time.monotonic(), deadline, "the limiter did not come back")
            time.sleep(0.05)  # polling the limiter until it answers again
        # The gateway kept serving other routes throughout.
        self.assertEqual(self.get(self.gw, "/other").status, 200)


class GlobalRateLimitConfig(GatewayTestCase):
    BASE = """
[[listeners]]
listen = "127.0.0.1:0"
[[routes]]
name = "r"
service = "s"
filters = [
  FILTER
]
[services.s]
pools.main.endpoints = ["127.0.0.1:9"]
"""

    def check(self, filter_text):
        path = os.path.join(harness.tmp_dir(), "gateway.toml")
        with open(path, "w") as f:
            f.write(self.BASE.replace("FILTER", filter_text))
        out = run_gateway(["--config", path, "--check"])
        return out, out.stderr.decode("utf-8", "replace")

    def assertRejected(self, filter_text, *words):
        out, stderr = self.check(filter_text)
        self.assertEqual(out.returncode, 1, stderr)
        lines = [l for l in stderr.splitlines() if "gateway.toml:8:" in l]
        self.assertTrue(lines, stderr)
        for w in words:
            self.assertTrue(any(w in l for l in lines), "want %r in:\n%s" % (w, stderr))

    def test_valid(self):
        out, stderr = self.check('{ type = "rate_limit", rate = "10/s", redis = "127.0.0.1:6379",'
                                 ' failure_mode = "closed", redis_timeout = "20ms" }')
        self.assertEqual(out.returncode, 0, stderr)

    def test_rejected(self):
        self.assertRejected('{ type = "rate_limit", rate = "10/s", redis = "redis:6379" }',
                            "IP address")
        self.assertRejected('{ type = "rate_limit", rate = "10/s", redis = "127.0.0.1:6379", '
                            'burst = 20 }', "burst", "local rate limit only")
        self.assertRejected('{ type = "rate_limit", rate = "10/s", redis = "127.0.0.1:6379", '
                            'failure_mode = "maybe" }', "failure_mode")
        self.assertRejected('{ type = "rate_limit", rate = "10/s", redis = "127.0.0.1:6379", '
                            'redis_timeout = "0ms" }', "redis_timeout")


if __name__ == "__main__":
    harness.main()
