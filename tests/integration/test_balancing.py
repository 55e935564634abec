"""Load-balancing policies through the real binary: distribution per policy, weights,
consistent hashing on a header / cookie, and endpoints named by hostname."""

import collections

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
