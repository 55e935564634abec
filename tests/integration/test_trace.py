"""The trace filter through the real binary: W3C traceparent/tracestate as the upstream
(a recording echo server) receives them, sampling, config errors with file:line:col, and
the export of spans over OTLP/HTTP JSON to a recording collector (http.server)."""

import http.server
import json
import os
import re
import socket
import threading
import time
import urllib.request

import harness
from harness import IO_TIMEOUT, EchoUpstream, GatewayTestCase, RawUpstream, config, run_gateway

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


class Collector:
    """A recording OTLP/HTTP collector: keeps every POST (path, content type, JSON body)
    and answers 200 on a keep-alive connection."""

    def __init__(self):
        self.cond = threading.Condition()
        self.posts = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.cond:
                    outer.posts.append((self.path, self.headers.get("Content-Type"),
                                        json.loads(body)))
                    outer.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self):
        """Every span received, each with the service.name of its resource."""
        with self.cond:
            posts = list(self.posts)
        out = []
        for _, _, doc in posts:
            for rs in doc["resourceSpans"]:
                attrs = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
                for ss in rs["scopeSpans"]:
                    for span in ss["spans"]:
                        out.append(dict(span, service=attrs["service.name"]["stringValue"]))
        return out

    def wait_spans(self, count, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                n = sum(len(ss["spans"]) for _, _, doc in self.posts
                        for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])
                remaining = deadline - time.monotonic()
                if n >= count or remaining <= 0:
                    return n
                self.cond.wait(remaining)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def metric_values(gw, name):
    """{labels text: value} of every sample of `name` on /metrics."""
    url = "http://%s:%d/metrics" % gw.admin
    with urllib.request.urlopen(url, timeout=IO_TIMEOUT) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


def attributes(span):
    out = {}
    for a in span["attributes"]:
        (kind, value), = a["value"].items()
        out[a["key"]] = value
    return out


class TraceExport(GatewayTestCase):
    """Spans of traced requests reach a recording collector over OTLP/HTTP JSON."""

    @classmethod
    def setUpClass(cls):
        cls.app = cls.own(EchoUpstream("app"))
        cls.collector = cls.own(Collector())
        dead = socket.socket()  # a port nobody listens on: the upstream of /down
        dead.bind(("127.0.0.1", 0))
        dead_address = "127.0.0.1:%d" % dead.getsockname()[1]
        dead.close()
        routes = [
            {"name": "down", "match": {"path_prefix": "/down"}, "service": "down",
             "filters": [{"type": "trace"}]},
            {"name": "api", "match": {"path_prefix": "/"}, "service": "app",
             "filters": [{"type": "trace"}]},
        ]
        doc = config({"app": [cls.app.address], "down": [dead_address]}, routes=routes,
                     admin="127.0.0.1:0")
        doc["tracing"] = {"otlp_endpoint": cls.collector.address, "service_name": "edge",
                          "flush_interval": "50ms", "batch_size": 4}
        cls.gw = cls.start_gateway(doc)

    def send(self, target, headers=None):
        """(status, the traceparent the upstream received or None)."""
        resp = self.client(self.gw.addr).request("GET", target, headers=headers)
        if resp.status != 200:
            return resp.status, None
        parents = harness.header_all(resp.json()["headers"], "traceparent")
        return resp.status, TRACEPARENT.match(parents[0]).groups()

    def test_spans_of_traced_requests_are_exported(self):
        before = len(self.collector.spans())
        # Not sampled by the caller: no span (sent first, so it would arrive first).
        unsampled = "00-%032x-00f067aa0ba902b7-00" % 7
        status, _ = self.send("/x/unsampled", headers=[("traceparent", unsampled)])
        self.assertEqual(status, 200)
        expected = {}  # span id -> (trace id, parent span id or None, path, status)
        for i in range(3):
            incoming_trace = "%032x" % (0xabc000 + i)
            incoming_parent = "%016x" % (0xdef000 + i)
            status, (trace, span, flags) = self.send(
                "/x/%d?q=%d" % (i, i),
                headers=[("traceparent", "00-%s-%s-01" % (incoming_trace, incoming_parent))])
            self.assertEqual((status, trace, flags), (200, incoming_trace, "01"))
            expected[span] = (trace, incoming_parent, "/x/%d" % i, 200)
        for i in range(3):
            status, (trace, span, flags) = self.send("/y/%d" % i)
            expected[span] = (trace, None, "/y/%d" % i, 200)
        status, _ = self.send("/down/z")
        self.assertEqual(status, 502)
        want = before + len(expected) + 1
        self.assertEqual(self.collector.wait_spans(want), want)

        spans = self.collector.spans()[before:]
        by_id = {s["spanId"]: s for s in spans}
        for span_id, (trace, parent, path, status) in expected.items():
            s = by_id[span_id]
            self.assertEqual(s["traceId"], trace)
            self.assertEqual(s.get("parentSpanId"), parent)
            self.assertEqual(s["name"], "api")
            self.assertEqual(s["kind"], 2)
            self.assertEqual(s["service"], "edge")
            self.assertNotIn("status", s)
            self.assertLessEqual(int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"]))
            self.assertLess(abs(int(s["endTimeUnixNano"]) / 1e9 - time.time()), 3600)
            self.assertEqual(attributes(s), {
                "http.request.method": "GET", "url.path": path,
                "http.response.status_code": str(status), "server.address": self.app.address})
        down = [s for s in spans if s["name"] == "down"]
        self.assertEqual(len(down), 1)
        self.assertEqual(down[0]["status"], {"code": 2})
        self.assertIn(attributes(down[0])["http.response.status_code"], ("502", "503"))
        self.assertNotIn("%032x" % 7, [s["traceId"] for s in spans])
        with self.collector.cond:
            paths = {(p, t) for p, t, _ in self.collector.posts}
        self.assertEqual(paths, {("/v1/traces", "application/json")})
        # The collector kept the last batch before it answered: the counter follows the
        # answer, so poll it (with a deadline).
        deadline = time.monotonic() + IO_TIMEOUT
        while True:
            exported = metric_values(self.gw, "gateway_trace_spans_exported_total")[""]
            if exported >= want or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertGreaterEqual(exported, want)


class TraceExportReload(GatewayTestCase):

    def test_a_reload_moves_the_export_to_the_new_endpoint(self):
        app = self.upstream(EchoUpstream("app"))
        first = self.upstream(Collector())
        second = self.upstream(Collector())
        routes = [{"name": "api", "match": {"path_prefix": "/"}, "service": "app",
                   "filters": [{"type": "trace"}]}]
        doc = config({"app": [app.address]}, routes=routes, admin="127.0.0.1:0")
        doc["tracing"] = {"otlp_endpoint": first.address, "flush_interval": "20ms"}
        gw = self.gateway(doc)
        self.assertEqual(self.client(gw.addr).request("GET", "/one").status, 200)
        self.assertEqual(first.wait_spans(1), 1)

        doc["tracing"] = {"otlp_endpoint": second.address, "flush_interval": "20ms",
                          "service_name": "renamed"}
        tmp = gw.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(harness.toml_dumps(doc))
        os.rename(tmp, gw.config_path)
        req = urllib.request.Request("http://%s:%d/config/reload" % gw.admin, method="POST",
                                     data=b"")
        with urllib.request.urlopen(req, timeout=IO_TIMEOUT) as r:
            self.assertEqual(r.status, 200)
        for path in ("/two", "/three"):
            self.assertEqual(self.client(gw.addr).request("GET", path).status, 200)
        self.assertEqual(second.wait_spans(2), 2)
        self.assertEqual([s["service"] for s in second.spans()], ["renamed", "renamed"])
        self.assertEqual(len(first.spans()), 1)


def silent_collector(server, conn, r, index):
    """Accepts and reads, never answers."""
    while r.read_some():
        pass


class TraceExportToASilentCollector(GatewayTestCase):

    def test_requests_are_served_and_spans_dropped_and_counted(self):
        app = self.upstream(EchoUpstream("app"))
        collector = self.upstream(RawUpstream(silent_collector, name="silent"))
        routes = [{"name": "api", "match": {"path_prefix": "/"}, "service": "app",
                   "filters": [{"type": "trace"}]}]
        doc = config({"app": [app.address]}, routes=routes, admin="127.0.0.1:0")
        doc["tracing"] = {"otlp_endpoint": collector.address, "max_queue": 4,
                          "batch_size": 2, "flush_interval": "20ms",
                          "export_timeout": "100ms"}
        gw = self.gateway(doc)
        for i in range(12):
            resp = self.client(gw.addr).request("GET", "/r/%d" % i)
            self.assertEqual(resp.status, 200)
        self.assertTrue(collector.wait_for(lambda: collector.connections >= 1))
        deadline = time.monotonic() + IO_TIMEOUT
        while True:
            dropped = metric_values(gw, "gateway_trace_spans_dropped_total")
            failed = dropped.get('{reason="export_failed"}', 0)
            full = dropped.get('{reason="queue_full"}', 0)
            if (failed > 0 and full > 0) or time.monotonic() > deadline:
                break
            time.sleep(0.02)  # polling a counter with a deadline, not synchronising
        self.assertGreater(failed, 0)
        self.assertGreater(full, 0)
        self.assertEqual(metric_values(gw, "gateway_trace_spans_exported_total")[""], 0)
        # Still serving.
        self.assertEqual(self.client(gw.addr).request("GET", "/after").status, 200)


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


    def test_bad_otlp_endpoint_is_reported_at_the_value(self):
        path = os.path.join(harness.tmp_dir(), "gateway-otlp.toml")
        with open(path, "w") as f:
            f.write('[tracing]\notlp_endpoint = "collector:4318"\n'
                    '[[listeners]]\nlisten = "127.0.0.1:0"\n'
                    '[[routes]]\nservice = "s"\n'
                    '[services.s]\npools.main.endpoints = ["127.0.0.1:9"]\n')
        out = run_gateway(["--config", path, "--check"])
        self.assertEqual(out.returncode, 1)
        self.assertIn('gateway-otlp.toml:2:17: "otlp_endpoint" must be an IP address and port',
                      out.stderr.decode())


if __name__ == "__main__":
    harness.main()
