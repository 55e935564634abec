"""Traffic splits and canaries: a fixed `split` sends the configured share of new
requests to each pool; a `canary` steps its pool's share up on a schedule and is
promoted after the last step, or rolled back to the active pool when its error rate
over the window passes the threshold (logged, counted, shown by GET /services)."""

import json
import time
import urllib.request

import harness
from harness import EchoUpstream, GatewayTestCase, RawUpstream, config, read_request

POLL_LIMIT = 30 * harness.SCALE  # seconds of polling before a canary test gives up


def failing_handler(server, conn, r, index):
    """Answers every request with 500 (keep-alive), as a broken release would."""
    while True:
        req = read_request(r)
        if req is None:
            return
        body = b'{"upstream":"green-broken"}'
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def service_doc(blue, green, **extra):
    svc = {"active": "blue",
           "pools": {"blue": {"endpoints": [blue.address]},
                     "green": {"endpoints": [green.address]}}}
    svc.update(extra)
    return config({"app": svc}, admin="127.0.0.1:0")


class Canary(GatewayTestCase):

    def services(self, gw):
        with urllib.request.urlopen("http://%s:%d/services" % gw.admin,
                                    timeout=harness.IO_TIMEOUT) as r:
            return json.loads(r.read())["services"]["app"]

    def stats(self, gw):
        with urllib.request.urlopen("http://%s:%d/stats" % gw.admin,
                                    timeout=harness.IO_TIMEOUT) as r:
            return json.loads(r.read())

    def drive_until(self, gw, client, predicate, what):
        """Sends requests (the canary needs traffic to judge) and polls the admin state
        until `predicate(services)` holds; fails after POLL_LIMIT seconds."""
        deadline = time.monotonic() + POLL_LIMIT
        while True:
            svc = self.services(gw)
            if predicate(svc):
                return svc
            self.assertLess(time.monotonic(), deadline, "%s never happened: %r" % (what, svc))
            for _ in range(5):
                client.request("GET", "/drive")

    def test_fixed_split_proportions(self):
        blue = self.upstream(EchoUpstream("blue"))
        green = self.upstream(EchoUpstream("green"))
        gw = self.gateway(service_doc(blue, green, split={"blue": 75, "green": 25}))
        self.assertEqual(self.services(gw)["split"], {"blue": 75, "green": 25})
        clients = [self.client(gw.addr) for _ in range(4)]
        counts = {"blue": 0, "green": 0}
        total = 2000
        for i in range(total):
            resp = clients[i % 4].request("GET", "/split/%d" % i)
            self.assertEqual(resp.status, 200)
            counts[resp.json()["upstream"]] += 1
        share = counts["green"] / total
        self.assertTrue(0.20 <= share <= 0.30, counts)

    def test_failing_canary_rolls_back(self):
        blue = self.upstream(EchoUpstream("blue"))
        green = self.upstream(RawUpstream(failing_handler, name="green-broken"))
        gw = self.gateway(service_doc(blue, green, canary={
            "pool": "green", "steps": [50], "step_interval": "1h", "window": "30s",
            "min_requests": 10, "max_error_rate": 0.2}))
        svc = self.services(gw)
        self.assertEqual(svc["canary"]["status"], "running")
        self.assertEqual(svc["split"], {"blue": 50, "green": 50})
        c = self.client(gw.addr)
        svc = self.drive_until(gw, c, lambda s: s["canary"]["status"] == "rolled_back",
                               "rollback")
        self.assertEqual(svc["split"], {})
        self.assertIn("error rate", svc["canary"]["reason"])
        for i in range(40):
            resp = c.request("GET", "/after/%d" % i)
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.json()["upstream"], "blue")
        self.assertEqual(self.stats(gw)["canary_rollbacks"], 1)
        rec = gw.wait_log(lambda r: r.get("msg") == "canary rolled back")
        self.assertEqual(rec["pool"], "green")

    def test_healthy_canary_steps_up_and_is_promoted(self):
        blue = self.upstream(EchoUpstream("blue"))
        green = self.upstream(EchoUpstream("green"))
        gw = self.gateway(service_doc(blue, green, canary={
            "pool": "green", "steps": [20, 100], "step_interval": "1s",
            "min_requests": 5, "max_error_rate": 0.1}))
        c = self.client(gw.addr)
        self.drive_until(gw, c, lambda s: s["canary"]["weight"] == 100, "step to 100%")
        svc = self.drive_until(gw, c, lambda s: s["canary"]["status"] == "promoted", "promotion")
        self.assertEqual(svc["split"], {"green": 100})
        for i in range(20):
            self.assertEqual(c.request("GET", "/promoted/%d" % i).json()["upstream"], "green")
        steps = [r for r in gw.records if r.get("msg") == "canary step"]
        self.assertEqual([r["weight"] for r in steps], [100])
        self.assertEqual(self.stats(gw)["canary_rollbacks"], 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
