"""A 20-second version of the fault soak (tests/integration/soak.py; the 5-minute
run is bench/soak.sh): steady client load on a 2-worker gateway while upstreams are
killed and restarted, hang, reset, send garbage or an unsolicited extra response, and
the config is reloaded and flipped. Every request must get its own answer or a 5xx;
afterwards the gateway answers, its fds and RSS are back near the baseline, and it
exits 0 on SIGTERM."""

import json
import os
import threading
import unittest

import harness
import soak

DURATION = float(os.environ.get("GATEWAY_SOAK_SECONDS", "20"))


class Soak(unittest.TestCase):

    def test_checker_sees_a_response_from_another_request(self):
        """The client's check is not vacuous: straight to an upstream that appends an
        unsolicited response, the next request on the connection reads it and the
        client reports a violation."""
        up = soak.SoakUpstream("extra")
        self.addCleanup(up.kill)
        up.mode = "extra"
        stats = soak.Stats()
        stop = threading.Event()
        t = threading.Thread(target=soak.client_loop,
                             args=(("127.0.0.1", up.port), stats, stop, 1, 0), daemon=True)
        t.start()
        self.assertTrue(harness.wait_until(lambda: stats.violation_count > 0))
        stop.set()
        t.join(harness.IO_TIMEOUT)
        self.assertIn("another request's answer", stats.violations[0])

    def test_fault_soak(self):
        ok, summary = soak.run(duration=DURATION, clients=12, log=print)
        print("soak summary: " + json.dumps(summary, indent=1))
        self.assertTrue(ok, "\n".join(summary.get("problems", [])))
        self.assertGreater(summary["requests_ok"], 0)
        self.assertGreater(summary["events"]["kills"], 0)


if __name__ == "__main__":
    harness.main()
