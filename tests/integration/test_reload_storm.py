"""A bounded reload storm: steady keep-alive client traffic on two workers while the
config file is edited 50 times and the service flipped 50 times through the admin API.
No request fails, no client connection is reset, and after every flip call returns,
new requests go to the expected pool on every worker."""

import json
import os
import threading
import urllib.request

import harness
from harness import EchoUpstream, GatewayTestCase, RawClient, config, toml_dumps

CLIENTS = 4
ROUNDS = 50


def doc(blue, green, header_timeout):
    return config({"app": {"active": "blue",
                           "pools": {"blue": {"endpoints": [blue.address]},
                                     "green": {"endpoints": [green.address]}}}},
                  workers=2, admin="127.0.0.1:0",
                  limits={"header_read_timeout": header_timeout})


class ReloadStorm(GatewayTestCase):

    def flip(self, gw):
        req = urllib.request.Request("http://%s:%d/services/app/flip" % gw.admin,
                                     method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=harness.IO_TIMEOUT) as r:
            return json.loads(r.read())

    def test_edits_and_flips_under_load(self):
        blue = self.upstream(EchoUpstream("blue"))
        green = self.upstream(EchoUpstream("green"))
        gw = self.gateway(doc(blue, green, "10s"))
        stop = threading.Event()
        failures, served = [], [0] * CLIENTS

        def load(i):
            c = RawClient(gw.addr)
            try:
                while not stop.is_set():
                    resp = c.request("GET", "/load/%d" % i)
                    if resp.status != 200 or resp.json()["upstream"] not in ("blue", "green"):
                        failures.append((i, resp.status, resp.body[:200]))
                        return
                    served[i] += 1
            except Exception as e:  # a reset or a timeout: the storm dropped a connection
                failures.append((i, repr(e)))
            finally:
                c.close()

        threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        try:
            expected = "blue"
            for k in range(ROUNDS):
                # An edit (a harmless setting alternates, so every write is a change).
                mark = len(gw.records)
                tmp = gw.config_path + ".tmp"
                with open(tmp, "w") as f:
                    f.write(toml_dumps(doc(blue, green, "%ds" % (11 - k % 2))))
                os.rename(tmp, gw.config_path)
                rec = gw.wait_log(lambda r: r.get("msg") == "config applied", start_index=mark)
                self.assertIsNotNone(rec, "edit %d not applied; stderr:\n%s" % (k, gw.stderr_tail()))
                # A flip: when the call returns, every worker serves the new pool.
                reply = self.flip(gw)
                expected = "green" if expected == "blue" else "blue"
                self.assertEqual(reply["active"], expected)
                self.assertTrue(reply["all_workers"], reply)
                for _ in range(4):  # new connections, spread over both workers
                    c = RawClient(gw.addr)
                    try:
                        resp = c.request("GET", "/check/%d" % k)
                        self.assertEqual(resp.json()["upstream"], expected, "after flip %d" % k)
                    finally:
                        c.close()
                self.assertEqual(failures, [])
        finally:
            stop.set()
            for t in threads:
                t.join(harness.IO_TIMEOUT)
        self.assertEqual(failures, [])
        self.assertTrue(all(n > 0 for n in served), served)
        with urllib.request.urlopen("http://%s:%d/stats" % gw.admin,
                                    timeout=harness.IO_TIMEOUT) as r:
            stats = json.loads(r.read())
        self.assertEqual(stats["config_reloads_failed"], 0)
        self.assertGreaterEqual(stats["config_reloads_ok"], ROUNDS)
        self.assertEqual(stats["responses_5xx"], 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
