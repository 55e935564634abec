"""Access logs ([access_log]): one JSON line per request with the promised fields (or a
configured subset), the Common and Combined Log Formats, stdout, SIGUSR1 reopening the
file after logrotate renamed it, and config errors with file:line:col."""

import json
import os
import re
import signal
import urllib.request

import harness
from harness import IO_TIMEOUT, EchoUpstream, GatewayTestCase, config, run_gateway, toml_dumps

ALL_FIELDS = ["time", "request_id", "client", "method", "path", "protocol", "status",
              "bytes_in", "bytes_out", "duration_ms", "upstream_duration_ms", "route",
              "service", "pool", "endpoint", "tls_version", "sni", "user_agent", "referer",
              "host", "trace_id"]

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    # only whole lines: a write may be in progress
    return [line.decode() for line in data.split(b"\n")[:-1]]


class AccessLog(GatewayTestCase):

    def setUp(self):
        self.echo = self.upstream(EchoUpstream("api"))
        self.dir = harness.tmp_dir()
        self.path = os.path.join(self.dir, "access.log")

    def start(self, access_log, workers=1):
        doc = config({"api": {"pools": {"blue": {"endpoints": [self.echo.address]}}}},
                     routes=[{"name": "api", "match": {"path_prefix": "/api/"},
                              "service": "api"}],
                     admin="127.0.0.1:0", workers=workers)
        doc["access_log"] = access_log
        return self.gateway(doc)

    def wait_lines(self, path, n):
        self.assertTrue(harness.wait_until(lambda: len(read_lines(path)) >= n),
                        "expected %d lines in %s, have %r" % (n, path, read_lines(path)))
        return read_lines(path)

    def test_json_lines_carry_every_field(self):
        gw = self.start({"path": self.path})
        c = self.client(gw.addr)
        self.assertEqual(c.request("GET", "/api/a?x=1", headers=[
            ("User-Agent", "test-agent/1.0"), ("Referer", "http://ref.example/"),
            ("traceparent", TRACEPARENT), ("X-Request-Id", "req-42")]).status, 200)
        self.assertEqual(c.request("POST", "/api/b", body=b"hello").status, 200)
        self.assertEqual(c.request("GET", "/elsewhere").status, 404)
        lines = self.wait_lines(self.path, 3)
        self.assertEqual(len(lines), 3, lines)
        records = [json.loads(line) for line in lines]
        for r in records:
            self.assertEqual(list(r.keys()), ALL_FIELDS)
            self.assertRegex(r["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertEqual(r["client"], "127.0.0.1")
            self.assertEqual(r["protocol"], "HTTP/1.1")
            self.assertEqual(r["host"], "test.local")
            self.assertGreaterEqual(r["duration_ms"], 0)
            self.assertGreater(r["bytes_in"], 0)
            self.assertGreater(r["bytes_out"], 0)
            self.assertEqual(r["tls_version"], "")
        first, second, third = records
        self.assertEqual((first["method"], first["path"], first["status"]), ("GET", "/api/a?x=1", 200))
        self.assertEqual((first["route"], first["service"], first["pool"], first["endpoint"]),
                         ("api", "api", "blue", self.echo.address))
        self.assertEqual(first["user_agent"], "test-agent/1.0")
        self.assertEqual(first["referer"], "http://ref.example/")
        self.assertEqual(first["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736")
        self.assertEqual(first["request_id"], "req-42")
        self.assertGreaterEqual(first["upstream_duration_ms"], 0)
        self.assertLessEqual(first["upstream_duration_ms"], first["duration_ms"])
        self.assertEqual((second["method"], second["status"]), ("POST", 200))
        self.assertEqual(second["trace_id"], "")
        # the body is counted in bytes_in
        self.assertGreater(second["bytes_in"], 5)
        self.assertEqual((third["status"], third["route"], third["pool"]), (404, "", ""))
        self.assertIsNone(third["upstream_duration_ms"])
        # the access log counters
        with urllib.request.urlopen("http://%s:%d/metrics" % gw.admin, timeout=IO_TIMEOUT) as r:
            text = r.read().decode()
        self.assertIn("gateway_access_log_lines_total 3\n", text)
        self.assertIn("gateway_access_log_dropped_total 0\n", text)

    def test_json_field_list(self):
        gw = self.start({"path": self.path, "fields": ["status", "path", "trace_id"]})
        c = self.client(gw.addr)
        self.assertEqual(c.request("GET", "/api/f", headers=[("traceparent", TRACEPARENT)]).status,
                         200)
        lines = self.wait_lines(self.path, 1)
        self.assertEqual(json.loads(lines[0]), {"status": 200, "path": "/api/f",
                                                 "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"})
        self.assertTrue(lines[0].startswith('{"status":200,"path":'), lines[0])

    def test_common_and_combined_formats(self):
        common = os.path.join(self.dir, "common.log")
        gw = self.start({"path": common, "format": "common"})
        c = self.client(gw.addr)
        self.assertEqual(c.request("GET", "/api/c", headers=[("User-Agent", "ua")]).status, 200)
        line = self.wait_lines(common, 1)[0]
        self.assertRegex(line, r'^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d '
                               r'\+0000\] "GET /api/c HTTP/1\.1" 200 \d+$')
        combined = os.path.join(self.dir, "combined.log")
        gw2 = self.start({"path": combined, "format": "combined"})
        c2 = self.client(gw2.addr)
        self.assertEqual(c2.request("GET", "/api/d", headers=[("User-Agent", 'say "hi"')]).status,
                         200)
        line = self.wait_lines(combined, 1)[0]
        self.assertRegex(line, r'^127\.0\.0\.1 - - \[[^\]]+\] "GET /api/d HTTP/1\.1" 200 \d+ '
                               r'"-" "say \\x22hi\\x22"$')

    def test_stdout(self):
        gw = self.start({"path": "stdout", "fields": ["method", "path"]})
        c = self.client(gw.addr)
        self.assertEqual(c.request("GET", "/api/out").status, 200)
        want = b'{"method":"GET","path":"/api/out"}\n'
        self.assertTrue(harness.wait_until(lambda: want in b"".join(gw.stdout_chunks)),
                        b"".join(gw.stdout_chunks))

    def test_disabled(self):
        gw = self.start({"enabled": False, "path": self.path})
        c = self.client(gw.addr)
        self.assertEqual(c.request("GET", "/api/x").status, 200)
        with urllib.request.urlopen("http://%s:%d/metrics" % gw.admin, timeout=IO_TIMEOUT) as r:
            self.assertIn("gateway_access_log_lines_total 0\n", r.read().decode())
        self.assertFalse(os.path.exists(self.path))

    def test_sigusr1_reopens_after_rename(self):
        gw = self.start({"path": self.path}, workers=2)
        c = self.client(gw.addr)
        self.assertEqual(c.request("GET", "/api/before").status, 200)
        self.wait_lines(self.path, 1)
        rotated = self.path + ".1"
        os.rename(self.path, rotated)
        gw.send_signal(signal.SIGUSR1)

        def reopened():
            with urllib.request.urlopen("http://%s:%d/metrics" % gw.admin,
                                        timeout=IO_TIMEOUT) as r:
                m = re.search(r"^gateway_access_log_reopens_total (\d+)$", r.read().decode(), re.M)
            return m is not None and int(m.group(1)) == 2  # every worker
        self.assertTrue(harness.wait_until(reopened), "the workers did not reopen the log")
        for i in range(4):  # new connections: both workers are likely to serve some
            self.assertEqual(self.client(gw.addr).request("GET", "/api/after%d" % i).status, 200)
        lines = self.wait_lines(self.path, 4)
        self.assertEqual(sorted(json.loads(line)["path"] for line in lines),
                         ["/api/after%d" % i for i in range(4)])
        self.assertEqual([json.loads(line)["path"] for line in read_lines(rotated)],
                         ["/api/before"])

    def test_bytes_in_is_the_parsed_head_plus_payload(self):
        # bytes_in is the head as re-serialised from what was parsed (README) plus the
        # body without chunk framing: for heads sent in that canonical form it is the
        # wire count for Content-Length bodies and the wire count minus framing for
        # chunked ones.
        gw = self.start({"path": self.path})
        c = harness.RawClient(gw.addr)
        self.addCleanup(c.sock.close)
        head = b"POST /api/cl HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
        c.send(head + b"hello")
        self.assertEqual(c.read_response().status, 200)
        head2 = b"POST /api/ch HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        c.send(head2 + b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n")
        self.assertEqual(c.read_response().status, 200)
        lines = [json.loads(line) for line in self.wait_lines(self.path, 2)]
        self.assertEqual([(e["path"], e["bytes_in"]) for e in lines],
                         [("/api/cl", len(head) + 5), ("/api/ch", len(head2) + 8)])

    def local_reply_line(self, gw):
        lines = self.wait_lines(self.path, 1)
        self.assertEqual(len(lines), 1, lines)
        entry = json.loads(lines[0])
        self.assertEqual(entry["client"], "127.0.0.1")
        self.assertGreater(entry["bytes_out"], 0)
        self.assertEqual(entry["route"], "")
        return entry

    def test_malformed_request_gets_one_line(self):
        gw = self.start({"path": self.path})
        c = harness.RawClient(gw.addr)
        self.addCleanup(c.sock.close)
        c.send(b"GET /api/x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
        self.assertEqual(c.read_head()[1], 400)
        entry = self.local_reply_line(gw)
        self.assertEqual(entry["status"], 400)
        # nothing more is logged for it (e.g. once the connection closes)
        self.assertEqual(self.client(gw.addr).request("GET", "/api/ok").status, 200)
        lines = self.wait_lines(self.path, 2)
        self.assertEqual([json.loads(line)["status"] for line in lines], [400, 200])

    def test_header_timeout_gets_one_line(self):
        doc = config({"api": [self.echo.address]}, admin="127.0.0.1:0",
                     listener_limits={"header_read_timeout": "1s"})
        doc["access_log"] = {"path": self.path}
        gw = self.gateway(doc)
        c = harness.RawClient(gw.addr)
        self.addCleanup(c.sock.close)
        c.send(b"GET /api/slow HTTP/1.1\r\nHost: a\r\n")  # the head never ends
        self.assertEqual(c.read_head()[1], 408)
        entry = self.local_reply_line(gw)
        self.assertEqual(entry["status"], 408)

    def test_local_reply_in_common_format(self):
        gw = self.start({"path": self.path, "format": "common"})
        c = harness.RawClient(gw.addr)
        self.addCleanup(c.sock.close)
        c.send(b"NOT HTTP AT ALL\r\n\r\n")
        self.assertEqual(c.read_head()[1], 400)
        lines = self.wait_lines(self.path, 1)
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r'^127\.0\.0\.1 - - \[[^]]+\] "[^"]*" 400 \d+')

    def test_config_errors_name_file_line_and_column(self):
        doc = config({"api": [self.echo.address]})
        doc["access_log"] = {"format": "jsn", "fields": ["status", "statuss"]}
        path = os.path.join(self.dir, "bad.toml")
        with open(path, "w") as f:
            f.write(toml_dumps(doc))
        proc = run_gateway(["--check", path])
        err = proc.stderr.decode() + proc.stdout.decode()
        self.assertNotEqual(proc.returncode, 0)
        self.assertRegex(err, re.escape(path) + r':\d+:\d+: .*"format" must be one of json, '
                                                r'common, combined \(got "jsn"\)')
        self.assertRegex(err, re.escape(path) + r':\d+:\d+: .*unknown field "statuss" '
                                                r'\(did you mean "status"\?\)')


if __name__ == "__main__":
    import unittest
    unittest.main()
