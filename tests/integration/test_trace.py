"""The trace filter through the real binary: W3C traceparent/tracestate as the upstream
(a recording echo server) receives them, sampling, and config errors with file:line:col."""

import os
import re

import harness
from harness import EchoUpstream, GatewayTestCase, config, run_gateway

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Trace(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.app = cls.own(EchoUpstream("app"))
        routes = [
            {"name": "unsampled", "match": {"path_prefix": "/unsampled"}, "service": "app",
             "filters": [{"type": "trace", "sample_rate": 0}]},
            {"name": "all", "match": {"path_prefix": "/"}, "service": "app",
             "filters": [{"type": "trace"}]},
        ]
        cls.gw = cls.start_gateway(config({"app": [cls.app.address]}, routes=routes))

    def upstream_saw(self, target, headers=None):
        """The traceparent (parsed) and the tracestate the upstream received."""
        resp = self.client(self.gw.addr).request("GET", target, headers=headers)
        self.assertEqual(resp.status, 200)
        info = resp.json()
        parents = harness.header_all(info["headers"], "traceparent")
        self.assertEqual(len(parents), 1, info["headers"])
        m = TRACEPARENT.match(parents[0])
        self.assertIsNotNone(m, parents[0])
        return m.groups(), harness.header_all(info["headers"], "tracestate")

    def test_new_trace_when_none_came_in(self):
        (trace, parent, flags), state = self.upstream_saw("/a")
        self.assertNotEqual(trace, "0" * 32)
        self.assertNotEqual(parent, "0" * 16)
        self.assertEqual(flags, "01")  # sample_rate defaults to 1
        self.assertEqual(state, [])
        (trace2, _, _), _ = self.upstream_saw("/a")
        self.assertNotEqual(trace2, trace)

    def test_valid_trace_kept_with_a_child_span(self):
        (trace, parent, flags), state = self.upstream_saw(
            "/b", headers=[("traceparent", INCOMING), ("tracestate", "congo=t61rcWkgMzE,rojo=1")])
        self.assertEqual(trace, "4bf92f3577b34da6a3ce929d0e0e4736")
        self.assertNotEqual(parent, "00f067aa0ba902b7")
        self.assertEqual(flags, "01")
        self.assertEqual(state, ["congo=t61rcWkgMzE,rojo=1"])

    def test_unsampled_caller_stays_unsampled(self):
        (trace, _, flags), _ = self.upstream_saw("/c", headers=[("traceparent", INCOMING[:-2] + "00")])
        self.assertEqual(trace, "4bf92f3577b34da6a3ce929d0e0e4736")
        self.assertEqual(flags, "00")

    def test_invalid_or_repeated_traceparent_starts_a_new_trace(self):
        for headers in ([("traceparent", INCOMING.upper())],
                        [("traceparent", "00-" + "0" * 32 + "-00f067aa0ba902b7-01")],
                        [("traceparent", INCOMING), ("traceparent", INCOMING)]):
            with self.subTest(headers=headers):
                (trace, _, flags), state = self.upstream_saw(
                    "/d", headers=headers + [("tracestate", "rojo=1")])
                self.assertNotEqual(trace, "4bf92f3577b34da6a3ce929d0e0e4736")
                self.assertNotEqual(trace, "0" * 32)
                self.assertEqual(flags, "01")
                self.assertEqual(state, [], "a tracestate of another trace went upstream")

    def test_sample_rate_zero(self):
        (_, _, flags), _ = self.upstream_saw("/unsampled")
        self.assertEqual(flags, "00")


class TraceConfig(GatewayTestCase):

    def test_bad_sample_rate_is_reported_at_the_value(self):
        path = os.path.join(harness.tmp_dir(), "gateway.toml")
        with open(path, "w") as f:
            f.write('[[listeners]]\nlisten = "127.0.0.1:0"\n'
                    '[[routes]]\nservice = "s"\n'
                    'filters = [{ type = "trace", sample_rate = 2 }]\n'
                    '[services.s]\npools.main.endpoints = ["127.0.0.1:9"]\n')
        out = run_gateway(["--config", path, "--check"])
        self.assertEqual(out.returncode, 1)
        self.assertIn('gateway.toml:5:44: filter "trace": "sample_rate" must be between 0 and 1',
                      out.stderr.decode())


if __name__ == "__main__":
    harness.main()
