"""Load-balancing policies through the real binary: distribution per policy, weights,
consistent hashing on a header / cookie, endpoints named by hostname, and sticky
sessions by cookie."""

import collections
import json
import re
import time
import urllib.request

import harness
from harness import EchoUpstream, GatewayTestCase, config


def service(endpoints, lb, **extra):
    spec = {"lb": lb, "pools": {"main": {"endpoints": endpoints}}}
    spec.update(extra)
    return spec


class Policies(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.a = cls.own(EchoUpstream("a"))
        cls.b = cls.own(EchoUpstream("b"))
        cls.c = cls.own(EchoUpstream("c"))

    def hits(self, gw, n, headers=None, path="/p"):
        count = collections.Counter()
        c = self.client(gw.addr)
        for i in range(n):
            resp = c.request("GET", "%s/%d" % (path, i), headers=headers or [])
            self.assertEqual(resp.status, 200)
            count[resp.json()["upstream"]] += 1
        return count

    def test_weighted_round_robin_3_to_1(self):
        gw = self.gateway(config({"w": service(
            [{"address": self.a.address, "weight": 3}, self.b.address],
            "weighted_round_robin")}))
        n = 4000
        count = self.hits(gw, n)
        share = count["a"] / n
        self.assertTrue(0.70 <= share <= 0.80, count)
        self.assertEqual(count["a"] + count["b"], n)

    def test_weighted_round_robin_5_1_1_interleaves(self):
        gw = self.gateway(config({"w": service(
            [{"address": self.a.address, "weight": 5}, self.b.address, self.c.address],
            "weighted_round_robin")}))
        c = self.client(gw.addr)
        seq = [c.request("GET", "/s/%d" % i).json()["upstream"] for i in range(14)]
        # Smooth: b and c are spread through each cycle of 7 (a a b a c a a), never a
        # burst of five a's as plain weighted round robin would give.
        self.assertEqual("".join(seq), "aabacaa" * 2)
        self.assertEqual(collections.Counter(seq), {"a": 10, "b": 2, "c": 2})

    def test_random_follows_weights(self):
        gw = self.gateway(config({"r": service(
            [{"address": self.a.address, "weight": 3}, self.b.address], "random")}))
        n = 4000
        count = self.hits(gw, n)
        self.assertTrue(0.70 <= count["a"] / n <= 0.80, count)

    def test_least_request_spreads_evenly(self):
        gw = self.gateway(config({"l": service([self.a.address, self.b.address],
                                               "least_request")}))
        n = 2000
        count = self.hits(gw, n)
        self.assertTrue(0.40 <= count["a"] / n <= 0.60, count)

    def test_least_request_avoids_a_busy_endpoint(self):
        # `busy` sends only to `held`, which holds its requests: they stay in flight on
        # that endpoint, so least_request over [held, b] should mostly pick b (held wins
        # only when both random draws land on it, about a quarter of the time).
        held = EchoUpstream("held")
        self.addCleanup(held.close)
        routes = [{"name": "busy", "match": {"path_prefix": "/busy"}, "service": "busy"},
                  {"name": "l", "match": {"path_prefix": "/"}, "service": "l"}]
        gw = self.gateway(config({"l": service([held.address, self.b.address],
                                               "least_request"),
                                  "busy": service([held.address], "round_robin")},
                                 routes=routes))
        holders = []
        for i in range(20):
            h = self.client(gw.addr)
            h.send(harness.build_request("GET", "/busy/%d" % i,
                                         headers=[("X-Echo-Hold", "1")]))
            holders.append(h)
        self.assertTrue(held.wait_for(lambda: len(held.requests) >= 20),
                        "held requests did not reach the upstream")
        n = 400
        count = collections.Counter()
        c = self.client(gw.addr)
        for i in range(n):
            resp = c.request("GET", "/l/%d" % i)  # no X-Echo-Hold: answered at once
            self.assertEqual(resp.status, 200)
            count[resp.json()["upstream"]] += 1
        self.assertGreater(count["b"] / n, 0.65, count)
        held.release()
        for h in holders:
            self.assertEqual(h.read_response().status, 200)

    def test_consistent_hash_on_header(self):
        gw = self.gateway(config({"h": service(
            [self.a.address, self.b.address, self.c.address], "consistent_hash",
            hash_key="header:X-User")}))
        c = self.client(gw.addr)
        placement = {}
        for user in range(30):
            seen = {c.request("GET", "/u/%d" % i, headers=[("X-User", "user-%d" % user)])
                    .json()["upstream"] for i in range(5)}
            self.assertEqual(len(seen), 1, "user-%d moved between %s" % (user, seen))
            placement[user] = seen.pop()
        self.assertGreaterEqual(len(set(placement.values())), 2, placement)

    def test_consistent_hash_on_cookie(self):
        gw = self.gateway(config({"h": service(
            [self.a.address, self.b.address, self.c.address], "consistent_hash",
            hash_key="cookie:sid")}))
        c = self.client(gw.addr)
        for sid in ("x1", "x2", "x3", "x4"):
            seen = {c.request("GET", "/c/%d" % i,
                              headers=[("Cookie", "theme=dark; sid=%s; lang=en" % sid)])
                    .json()["upstream"] for i in range(6)}
            self.assertEqual(len(seen), 1, seen)

    def test_endpoint_by_hostname(self):
        gw = self.gateway(config({"dns": service(
            ["localhost:%d" % self.a.port, self.b.address], "round_robin")}))
        count = self.hits(gw, 10)
        self.assertEqual(count, {"a": 5, "b": 5})


def admin_get(gw, path):
    url = "http://%s:%d%s" % (gw.admin[0], gw.admin[1], path)
    with urllib.request.urlopen(url, timeout=harness.IO_TIMEOUT) as r:
        return json.loads(r.read())


def poll(predicate, timeout=harness.IO_TIMEOUT * 2, interval=0.05):
    """Polls admin state until it shows the change (bounded by a timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


COOKIE = re.compile(r"^GW_STICKY=([0-9a-f]{16}); Path=/; Max-Age=3600; HttpOnly$")


class Sticky(GatewayTestCase):
    """sticky = { cookie = "GW_STICKY", ttl = "1h" } over round robin, two workers (the ids
    must agree between them: each request below opens its own connection)."""

    def endpoints(self, n):
        servers = []
        for name in "abcdef"[:n]:
            server = EchoUpstream(name)
            self.addCleanup(server.close)
            servers.append(server)
        return servers

    def sticky_gateway(self, servers, **extra):
        return self.gateway(config({"s": service(
            [s.address for s in servers], "round_robin",
            sticky={"cookie": "GW_STICKY", "ttl": "1h"}, **extra)},
            workers=2, admin="127.0.0.1:0"))

    def get(self, gw, cookie=None, path="/p"):
        headers = [("Cookie", cookie)] if cookie is not None else []
        resp = self.client(gw.addr).request("GET", path, headers=headers)
        self.assertEqual(resp.status, 200)
        set_cookie = resp.header_all("Set-Cookie")
        self.assertLessEqual(len(set_cookie), 1, set_cookie)
        sticky_id = None
        if set_cookie:
            m = COOKIE.match(set_cookie[0])
            self.assertIsNotNone(m, set_cookie[0])
            sticky_id = m.group(1)
        return resp.json()["upstream"], sticky_id

    def learn_ids(self, gw, n):
        """Endpoint name -> its id, from the cookies set on requests without one."""
        ids = {}
        for i in range(8 * n):
            upstream, sticky_id = self.get(gw, path="/learn/%d" % i)
            self.assertIsNotNone(sticky_id, "no cookie set for a request without one")
            self.assertEqual(ids.setdefault(upstream, sticky_id), sticky_id,
                             "one endpoint, two ids")
            if len(ids) == n:
                break
        self.assertEqual(len(ids), n, ids)
        self.assertEqual(len(set(ids.values())), n, "two endpoints share an id: %s" % ids)
        return ids

    def test_cookie_pins_the_client_to_one_endpoint(self):
        servers = self.endpoints(3)
        gw = self.sticky_gateway(servers)
        first, sticky_id = self.get(gw)
        self.assertIsNotNone(sticky_id)
        for s in servers:  # opaque: neither the address nor the port shows
            self.assertNotIn(str(s.port), sticky_id)
        for i in range(30):
            upstream, again = self.get(gw, "theme=dark; GW_STICKY=%s; lang=en" % sticky_id,
                                       path="/s/%d" % i)
            self.assertEqual(upstream, first)
            self.assertIsNone(again, "a valid cookie was set again")
        ids = self.learn_ids(gw, 3)
        self.assertEqual(ids[first], sticky_id)
        # Every endpoint's id pins to that endpoint.
        for name, other in ids.items():
            self.assertEqual(self.get(gw, "GW_STICKY=" + other)[0], name)

    def test_forged_or_garbage_cookie_is_ignored(self):
        servers = self.endpoints(2)
        gw = self.sticky_gateway(servers)
        ids = self.learn_ids(gw, 2)
        real = ids["a"]
        flipped = real[:-1] + ("0" if real[-1] != "0" else "1")
        for cookie in ["GW_STICKY=garbage", "GW_STICKY=", "GW_STICKY", "GW_STICKY=%s" %
                       servers[0].address, "GW_STICKY=" + flipped, "GW_STICKY=" + real.upper(),
                       "GW_STICKY=" + "f" * 4000, "GW_STICKY=\"%s\"" % real, ";;=;GW_STICKY"]:
            upstream, sticky_id = self.get(gw, cookie)
            self.assertIsNotNone(sticky_id, "no new cookie after %r" % cookie[:40])
            self.assertEqual(ids[upstream], sticky_id, cookie[:40])

    def test_endpoint_marked_down_moves_the_client(self):
        servers = self.endpoints(3)
        gw = self.sticky_gateway(servers, health_check={
            "path": "/healthz", "interval": "50ms", "timeout": "40ms", "healthy": 1,
            "unhealthy": 1})
        first, sticky_id = self.get(gw)
        gone = next(s for s in servers if s.name == first)
        gone.close()  # health checks now fail to connect

        def health():
            return admin_get(gw, "/services")["services"]["s"]["health"]["main"][gone.address]
        self.assertTrue(poll(lambda: health() == "unhealthy"), health())
        moved, new_id = self.get(gw, "GW_STICKY=" + sticky_id)
        self.assertNotEqual(moved, first)
        self.assertIsNotNone(new_id, "the cookie was not set again")
        self.assertNotEqual(new_id, sticky_id)
        for i in range(10):
            upstream, again = self.get(gw, "GW_STICKY=" + new_id, path="/after/%d" % i)
            self.assertEqual(upstream, moved)
            self.assertIsNone(again)

    def test_stopped_endpoint_moves_the_client_on_retry(self):
        # No health checks: the request pinned to the stopped endpoint fails to connect,
        # is retried on another, and the answer re-sets the cookie to that one.
        servers = self.endpoints(3)
        gw = self.sticky_gateway(servers, retry={"attempts": 2})
        first, sticky_id = self.get(gw)
        gone = next(s for s in servers if s.name == first)
        gone.close()
        moved, new_id = self.get(gw, "GW_STICKY=" + sticky_id)
        self.assertNotEqual(moved, first)
        self.assertIsNotNone(new_id)
        self.assertNotEqual(new_id, sticky_id)
        for i in range(10):
            upstream, again = self.get(gw, "GW_STICKY=" + new_id, path="/after/%d" % i)
            self.assertEqual(upstream, moved)
            self.assertIsNone(again)

    def test_sticky_with_consistent_hash(self):
        # The cookie wins over the hash while its endpoint is up.
        servers = self.endpoints(3)
        gw = self.gateway(config({"s": service(
            [s.address for s in servers], "consistent_hash", hash_key="header:X-User",
            sticky=True)}, admin="127.0.0.1:0"))
        c = self.client(gw.addr)
        resp = c.request("GET", "/h", headers=[("X-User", "u1")])
        m = re.match(r"^GW_STICKY=([0-9a-f]{16}); Path=/; HttpOnly$", resp.header("Set-Cookie"))
        self.assertIsNotNone(m, resp.header("Set-Cookie"))
        hashed = resp.json()["upstream"]
        others = set()
        for user in range(20):
            r = c.request("GET", "/h", headers=[("X-User", "user-%d" % user),
                                               ("Cookie", "GW_STICKY=" + m.group(1))])
            self.assertEqual(r.json()["upstream"], hashed)
            self.assertIsNone(r.header("Set-Cookie"))
            others.add(c.request("GET", "/h", headers=[("X-User", "user-%d" % user)])
                       .json()["upstream"])
        self.assertGreaterEqual(len(others), 2, "the hash alone would spread these users")
