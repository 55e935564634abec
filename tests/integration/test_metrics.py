"""Observability endpoints on the admin listener: GET /metrics (Prometheus text format
0.0.4, checked by `promtool check metrics` and scraped by a real Prometheus server),
GET /debug/workers and GET /debug/memory. promtool and prometheus come from the Debian
`prometheus` package (scripts/setup.sh)."""

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import harness
from harness import IO_TIMEOUT, SCALE, EchoUpstream, GatewayTestCase, config

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _unescape(value):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_metrics(text):
    """{(name, frozenset of (label, value)): float} for every sample line."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            raise AssertionError("not a sample line: %r" % line)
        labels = frozenset((k, _unescape(v)) for k, v in _LABEL.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), None)


def admin_get(gw, path):
    """(status, content type, body text)."""
    url = "http://%s:%d%s" % (gw.admin[0], gw.admin[1], path)
    with urllib.request.urlopen(url, timeout=IO_TIMEOUT) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def need(tool):
    path = shutil.which(tool)
    if path is None:
        raise AssertionError("%s not found: run scripts/setup.sh (Debian package prometheus)"
                             % tool)
    return path


class MetricsEndpoint(GatewayTestCase):

    def setUp(self):
        self.echo = self.upstream(EchoUpstream("api"))
        doc = config({"api": {"pools": {"blue": {"endpoints": [self.echo.address]}}}},
                     routes=[{"name": "api", "match": {"path_prefix": "/api/"},
                              "service": "api"},
                             {"name": 'we"ird\\route', "match": {"path_prefix": "/weird/"},
                              "service": "api"}],
                     admin="127.0.0.1:0", workers=2)
        self.gw = self.gateway(doc)

    def scrape(self):
        status, ctype, text = admin_get(self.gw, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        return text, parse_metrics(text)

    def settled_scrape(self):
        """A scrape taken once no request is in flight. A worker counts a request when its
        exchange ends, just after the last response byte went out, so a client can read the
        response before the counters move; the in-flight gauge drops after them."""
        settled = []

        def idle():
            _, samples = self.scrape()
            settled[:] = [samples]
            return value(samples, "gateway_downstream_requests_active") == 0
        self.assertTrue(harness.wait_until(idle), "requests still in flight")
        return settled[0]

    def test_counters_and_histograms_after_known_traffic(self):
        _, before = self.scrape()
        c = self.client(self.gw.addr)
        for i in range(5):
            self.assertEqual(c.request("GET", "/api/x%d" % i).status, 200)
        self.assertEqual(c.request("GET", "/nothing-here").status, 404)
        self.assertEqual(c.request("GET", "/api/fail", headers=[("X-Echo-Status", "503")]).status,
                         503)
        after = self.settled_scrape()

        def delta(name, **labels):
            return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

        self.assertEqual(delta("gateway_route_responses_total", route="api", service="api",
                               **{"class": "2xx"}), 5)
        self.assertEqual(delta("gateway_route_responses_total", route="api", service="api",
                               **{"class": "5xx"}), 1)
        self.assertEqual(delta("gateway_pool_responses_total", service="api", pool="blue",
                               **{"class": "2xx"}), 5)
        # the 404 matched no route: counted by class, in no route
        self.assertEqual(delta("gateway_downstream_responses_total", **{"class": "4xx"}), 1)
        self.assertEqual(delta("gateway_route_responses_total", route="api", service="api",
                               **{"class": "4xx"}), 0)
        self.assertEqual(delta("gateway_downstream_requests_total"), 7)
        for name in ("gateway_route_request_duration_seconds",
                     "gateway_route_upstream_duration_seconds"):
            self.assertEqual(delta(name + "_count", route="api", service="api"), 6, name)
            self.assertEqual(value(after, name + "_bucket", route="api", service="api", le="+Inf"),
                             value(after, name + "_count", route="api", service="api"))
            self.assertGreater(delta(name + "_sum", route="api", service="api"), 0)
        self.assertEqual(delta("gateway_pool_request_duration_seconds_count", service="api",
                               pool="blue"), 6)
        self.assertEqual(value(after, "gateway_pool_active", service="api", pool="blue"), 1)
        self.assertEqual(value(after, "gateway_endpoint_up", service="api", pool="blue",
                               endpoint=self.echo.address), 1)
        # the upstream pool, as the workers sampled it (every 250 ms): a poll, not a sleep
        def pool_sampled():
            _, s = self.scrape()
            created = value(s, "gateway_endpoint_connections_created_total",
                            endpoint=self.echo.address)
            idle = value(s, "gateway_endpoint_connections", endpoint=self.echo.address,
                         state="idle")
            return created is not None and created >= 1 and idle is not None and idle >= 1
        self.assertTrue(harness.wait_until(pool_sampled), "no upstream pool figures")
        _, pooled = self.scrape()
        self.assertEqual(value(pooled, "gateway_endpoint_connect_failures_total",
                               endpoint=self.echo.address), 0)
        self.assertEqual(value(pooled, "gateway_endpoint_connections", endpoint=self.echo.address,
                               state="active"), 0)
        self.assertGreater(delta("gateway_downstream_bytes_received_total"), 0)
        self.assertGreater(delta("gateway_downstream_bytes_sent_total"), 0)
        self.assertEqual(value(after, "gateway_downstream_requests_active"), 0)
        self.assertEqual(value(after, "gateway_workers"), 2)
        self.assertEqual(value(after, "gateway_config_version"), 1)
        self.assertEqual(value(after, "gateway_config_reloads_total", result="success"), 0)
        self.assertGreater(value(after, "gateway_process_resident_memory_bytes"), 0)
        self.assertGreater(value(after, "gateway_process_open_fds"), 0)
        self.assertGreaterEqual(value(after, "gateway_uptime_seconds"), 0)
        for worker in ("0", "1"):
            self.assertIsNotNone(value(after, "gateway_worker_loop_lag_seconds", worker=worker))
        # label values are escaped, and read back as written
        self.assertIsNotNone(value(after, "gateway_route_responses_total", route='we"ird\\route',
                                   service="api", **{"class": "2xx"}))

    def test_promtool_accepts_the_output(self):
        c = self.client(self.gw.addr)
        self.assertEqual(c.request("GET", "/weird/x").status, 200)
        text, _ = self.scrape()
        self.assertIn('route="we\\"ird\\\\route"', text)
        proc = subprocess.run([need("promtool"), "check", "metrics"], input=text.encode(),
                              capture_output=True, timeout=60 * SCALE)
        self.assertEqual(proc.returncode, 0,
                         "promtool check metrics:\n" + proc.stdout.decode() +
                         proc.stderr.decode())

    def test_a_prometheus_server_scrapes_the_gateway(self):
        c = self.client(self.gw.addr)
        for _ in range(3):
            self.assertEqual(c.request("GET", "/api/p").status, 200)
        workdir = harness.tmp_dir()
        port = harness.free_port()
        with open(os.path.join(workdir, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: gateway\n    static_configs:\n"
                    "      - targets: ['%s:%d']\n" % (self.gw.admin[0], self.gw.admin[1]))
        log = open(os.path.join(workdir, "prometheus.log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            [need("prometheus"), "--config.file=" + os.path.join(workdir, "prometheus.yml"),
             "--storage.tsdb.path=" + os.path.join(workdir, "data"),
             "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=workdir)

        def stop():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        self.addCleanup(stop)

        query = urllib.parse.urlencode(
            {"query": 'gateway_route_responses_total{route="api",class="2xx"}'})
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, query)
        found = []

        def arrived():
            if proc.poll() is not None:
                return True  # exited: reported below
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                return False  # not listening yet
            result = body.get("data", {}).get("result", [])
            if result:
                found.extend(result)
            return bool(result)

        harness.wait_until(arrived, timeout=90 * SCALE, interval=0.25)
        if not found:
            with open(os.path.join(workdir, "prometheus.log"), "rb") as f:
                tail = f.read()[-3000:].decode("utf-8", "replace")
            self.fail("no gateway metric reached Prometheus (exit code %s); its log:\n%s"
                      % (proc.poll(), tail))
        sample = found[0]
        self.assertEqual(sample["metric"]["job"], "gateway")
        self.assertEqual(float(sample["value"][1]), 3)


class FilterRejections(GatewayTestCase):

    def test_rate_limit_and_auth_rejections_by_filter(self):
        echo = self.upstream(EchoUpstream("api"))
        routes = [{"name": "limited", "match": {"path_prefix": "/limited/"}, "service": "api",
                   "filters": [{"type": "rate_limit", "rate": "1/h", "burst": 1}]},
                  {"name": "keyed", "match": {"path_prefix": "/keyed/"}, "service": "api",
                   "filters": [{"type": "auth_api_key", "keys": {"alice": "k-alice"}}]}]
        gw = self.gateway(config({"api": [echo.address]}, routes=routes, admin="127.0.0.1:0"))
        c = self.client(gw.addr)
        self.assertEqual(c.request("GET", "/limited/a").status, 200)
        self.assertEqual(c.request("GET", "/limited/b").status, 429)
        self.assertEqual(c.request("GET", "/limited/c").status, 429)
        self.assertEqual(c.request("GET", "/keyed/a").status, 401)
        self.assertEqual(c.request("GET", "/keyed/b", headers=[("X-Api-Key", "k-alice")]).status,
                         200)
        _, _, text = admin_get(gw, "/metrics")
        samples = parse_metrics(text)
        self.assertEqual(value(samples, "gateway_filter_replies_total", filter="rate_limit",
                               code="429"), 2)
        self.assertEqual(value(samples, "gateway_filter_replies_total", filter="auth_api_key",
                               code="401"), 1)
        self.assertEqual(value(samples, "gateway_route_responses_total", route="limited",
                               service="api", **{"class": "4xx"}), 2)


class DebugEndpoints(GatewayTestCase):

    def setUp(self):
        self.echo = self.upstream(EchoUpstream("api"))
        self.gw = self.gateway(config({"api": [self.echo.address]}, admin="127.0.0.1:0",
                                      workers=2))

    def workers(self):
        status, ctype, text = admin_get(self.gw, "/debug/workers")
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "application/json")
        return json.loads(text)["workers"]

    def test_workers_report_connections_requests_lag_and_handles(self):
        ws = self.workers()
        self.assertEqual([w["worker"] for w in ws], [0, 1])
        for w in ws:
            for key in ("connections", "requests_in_flight", "loop_lag_ms", "loop_lag_max_ms",
                        "handles", "requests"):
                self.assertIn(key, w)
            self.assertGreaterEqual(w["loop_lag_ms"], 0)
        busy = self.client(self.gw.addr)
        busy.send(harness.build_request("GET", "/hold", headers=[("X-Echo-Hold", "1")]))
        self.assertTrue(self.echo.held.wait(IO_TIMEOUT), "request never reached upstream")
        self.assertTrue(harness.wait_until(
            lambda: sum(w["requests_in_flight"] for w in self.workers()) == 1),
            "the held request is not in flight: %r" % self.workers())
        self.assertEqual(sum(w["connections"] for w in self.workers()), 1)
        # the lag timer samples the handle count (listener, async, timers, connections)
        self.assertTrue(harness.wait_until(lambda: all(w["handles"] > 0 for w in self.workers())))
        self.echo.release()
        self.assertEqual(busy.read_response().status, 200)
        self.assertTrue(harness.wait_until(
            lambda: sum(w["requests_in_flight"] for w in self.workers()) == 0))
        self.assertEqual(sum(w["requests"] for w in self.workers()), 1)

    def test_memory_reports_rss_allocator_and_workers(self):
        status, ctype, text = admin_get(self.gw, "/debug/memory")
        self.assertEqual(status, 200)
        body = json.loads(text)
        self.assertGreater(body["rss_bytes"], 0)
        self.assertEqual(body["malloc"]["allocator"], "glibc")
        if "ASAN_OPTIONS" in os.environ or "TSAN_OPTIONS" in os.environ:
            # AddressSanitizer and ThreadSanitizer replace malloc: glibc's statistics
            # are all zero then
            self.assertGreaterEqual(body["malloc"]["in_use_bytes"], 0)
        else:
            self.assertGreater(body["malloc"]["in_use_bytes"], 0)
            self.assertTrue(body["malloc"]["malloc_info_xml"].startswith("<malloc"))
        self.assertEqual(len(body["workers"]), 2)
        for w in body["workers"]:
            self.assertEqual(w["read_slab_bytes"], 65536)
            self.assertIn("exchanges_pooled", w)

    def test_idle_sessions_live_in_slabs_that_go_back_after_they_close(self):
        # 400 sessions need at least three 143-slot slabs, however the two workers
        # share them; once they close, each worker keeps one empty slab at most, and
        # the exchange and parser pools that served their requests empty.
        def memory_workers():
            status, _, text = admin_get(self.gw, "/debug/memory")
            self.assertEqual(status, 200)
            return json.loads(text)["workers"]
        slab = 64 * 1024
        clients = [self.client(self.gw.addr) for _ in range(400)]
        for c in clients:
            c.send(harness.build_request("GET", "/idle"))
        for c in clients:
            self.assertEqual(c.read_response().status, 200)
        def all_open():  # one sample of the gauges, taken after every session opened
            ws = memory_workers()
            return sum(w["sessions"] for w in ws) == 400 and ws
        self.assertTrue(harness.wait_until(all_open), "sessions: %r" % memory_workers())
        self.assertGreaterEqual(sum(w["session_slab_bytes"] for w in all_open()), 3 * slab)
        for c in clients:
            c.close()
        self.assertTrue(harness.wait_until(
            lambda: all(w["sessions"] == 0 and w["session_slab_bytes"] <= slab and
                        w["exchanges_pooled"] == 0 and w["parsers_pooled"] == 0
                        for w in memory_workers())),
            "after close: %r" % memory_workers())


def admin_call(gw, method, path, token=None):
    """(status, body text), also for error statuses."""
    url = "http://%s:%d%s" % (gw.admin[0], gw.admin[1], path)
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=IO_TIMEOUT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class HeapProfile(GatewayTestCase):
    """POST /debug/heap/dump. The default build has no jemalloc: the endpoint says so
    (scripts/heap_profile_check.sh checks a --config=jemalloc build)."""

    TOKEN = "heap-token"

    def setUp(self):
        self.echo = self.upstream(EchoUpstream("api"))
        doc = config({"api": [self.echo.address]}, admin="127.0.0.1:0")
        doc["admin"]["token"] = self.TOKEN
        self.gw = self.gateway(doc)

    def test_dump_needs_the_token_and_post(self):
        self.assertEqual(admin_call(self.gw, "POST", "/debug/heap/dump")[0], 401)
        self.assertEqual(admin_call(self.gw, "GET", "/debug/heap/dump", self.TOKEN)[0], 405)

    def test_dump_without_jemalloc_is_501_with_the_reason(self):
        status, text = admin_call(self.gw, "GET", "/debug/memory", self.TOKEN)
        self.assertEqual(status, 200)
        linked = json.loads(text)["jemalloc"] is not None
        status, text = admin_call(self.gw, "POST", "/debug/heap/dump", self.TOKEN)
        body = json.loads(text)
        if linked and os.environ.get("MALLOC_CONF", "").find("prof:true") >= 0:
            self.assertEqual(status, 200, body)
            self.assertGreater(os.path.getsize(body["path"]), 0)
        elif linked:
            self.assertEqual(status, 501)
            self.assertIn("MALLOC_CONF=prof:true", body["error"])
        else:
            self.assertEqual(status, 501)
            self.assertIn("--config=jemalloc", body["error"])


if __name__ == "__main__":
    import unittest
    unittest.main()
