"""Side by side with nginx and HAProxy: every case of test_smuggling.py, sent through
the gateway, nginx and HAProxy, each in front of its own recording upstream.

The gateway must be at least as strict as both. Wherever nginx or HAProxy refuse a
message (an error status, or the connection closed with no response), the gateway
refuses it too and forwards nothing for it. The reverse is allowed: the gateway may
refuse what they pass on. The same holds for responses (ResponseStrictness): a scripted
upstream answers each case with its own bytes, and wherever nginx or HAProxy answer the
client with a 5xx (or close), so must the gateway; it must never hang, and a body cut
short must never reach the client as a complete 200. What the upstream must never
receive (a smuggled request, a malformed one) is test_smuggling.py's business and is checked there for the gateway;
here it is recorded for all three.

nginx and HAProxy run as Debian ships them, proxying with upstream keep-alive and
otherwise default parsing options (nginx: `ignore_invalid_headers on`,
`underscores_in_headers off`; HAProxy: no `accept-invalid-http-request`), with the
gateway's limits (8 KiB heads, 1 MiB bodies). Tables of what each did are printed when
each class ends, and appended to $STRICTNESS_TABLE when that is set:

    STRICTNESS_TABLE=/tmp/strictness.md GATEWAY_BIN=... python3 -m unittest test_strictness
"""

import os
import shutil
import socket
import subprocess
import sys

import harness
from harness import GatewayTestCase, RawClient, config, read_response_or_close

import test_smuggling as smuggling

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
# nginx and HAProxy may wait for bytes that never come (a body the gateway refuses
# outright); that is recorded as "wait", not refusal. Not a timing check: any bound
# long enough for a loopback answer gives the same table.
OTHER_TIMEOUT = 2.0
WAIT = "wait"
CLOSED = "closed"

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 1m;
    large_client_header_buffers 4 8k;
    upstream recorder {{
        server {upstream};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://recorder;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
"""

HAPROXY_CONF = """\
global
    maxconn 1000
    tune.bufsize 16384
defaults
    mode http
    timeout connect 5s
    timeout client 20s
    timeout server 20s
    timeout http-request 5s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server recorder {upstream}
"""


class OtherProxy:
    """nginx or HAProxy as a child process on a free loopback port."""

    def __init__(self, name, command, conf_text):
        self.name = name
        self.dir = harness.tmp_dir()
        self.port = harness.free_port()
        self.addr = ("127.0.0.1", self.port)
        conf = os.path.join(self.dir, name + ".conf")
        with open(conf, "w") as f:
            f.write(conf_text.format(dir=self.dir, port=self.port))
        self.log = open(os.path.join(self.dir, name + ".log"), "wb")
        self.proc = subprocess.Popen(command(conf), stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        # No readiness event from a foreign binary: poll its port until it accepts.
        if not harness.wait_until(lambda: self.proc.poll() is not None or self._accepts(),
                                  harness.STARTUP_TIMEOUT) or self.proc.poll() is not None:
            self.close()
            with open(os.path.join(self.dir, name + ".log"), "rb") as f:
                raise RuntimeError("%s did not start: %r" % (name, f.read()[-2000:]))

    def _accepts(self):
        try:
            socket.create_connection(self.addr, timeout=1).close()
            return True
        except OSError:
            return False

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


def start_other_proxies(cls, upstream, haproxy_upstream=None):
    """nginx (cls.nginx) in front of `upstream` and HAProxy (cls.haproxy) in front of
    `haproxy_upstream` (the same by default), owned by the test class."""
    for binary in (NGINX, HAPROXY):
        if not os.access(binary, os.X_OK):
            raise RuntimeError("%s is missing: scripts/setup.sh installs it" % binary)
    cls.nginx = cls.own(OtherProxy(
        "nginx", lambda conf: [NGINX, "-p", os.path.dirname(conf), "-c", conf],
        NGINX_CONF.replace("{upstream}", upstream)))
    cls.haproxy = cls.own(OtherProxy(
        "haproxy", lambda conf: [HAPROXY, "-db", "-f", conf],
        HAPROXY_CONF.replace("{upstream}", haproxy_upstream or upstream)))


def write_table(title, table):
    """Prints a class's table, and appends it to $STRICTNESS_TABLE when that is set."""
    text = "%s\n\n%s\n" % (title, table)
    sys.stderr.write("\n" + text)
    path = os.environ.get("STRICTNESS_TABLE")
    if path:
        with open(path, "a") as f:
            f.write(text)


def refused(outcome):
    return outcome == CLOSED or (isinstance(outcome, int) and outcome >= 400)


def refused_response(outcome):
    """For an upstream response: the client got a 5xx, or the connection closed bare."""
    return outcome == CLOSED or (isinstance(outcome, int) and outcome >= 500)


class Strictness(GatewayTestCase):
    results = {}  # case name -> {proxy: (outcome, upstream requests, notes)}

    @classmethod
    def setUpClass(cls):
        # One recording upstream per proxy: what one proxy forwards can then never be
        # counted for another, even when it reaches the upstream late (an upstream
        # connection's thread recording after the sentinel, on a loaded machine).
        cls.ups = {proxy: cls.own(smuggling.RecordingUpstream())
                   for proxy in ("gateway", "nginx", "haproxy")}
        cls.gw = cls.start_gateway(config(
            {"recorder": [cls.ups["gateway"].address]},
            limits={"max_header_bytes": "8KiB", "max_body": "1MiB",
                    "header_read_timeout": "5s", "idle_timeout": "20s"}))
        start_other_proxies(cls, cls.ups["nginx"].address, cls.ups["haproxy"].address)
        cls.sentinels = 0

    @classmethod
    def tearDownClass(cls):
        write_table("## Requests", cls.table())
        super().tearDownClass()

    def run_case(self, proxy, addr, name, raw, timeout):
        """Sends one case through one proxy; returns (outcome, requests the upstream
        got for it, notes)."""
        up = self.ups[proxy]
        marks = up.marks()
        c = RawClient(addr, timeout=timeout)
        try:
            try:
                c.send(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before the whole (large) case was sent
            try:
                resp, _ = read_response_or_close(c)
                if resp is not None and name.startswith("pipelined_"):
                    resp, _ = read_response_or_close(c)  # the verdict on the bad one
                outcome = CLOSED if resp is None else resp.status
            except (socket.timeout, ValueError):
                outcome = WAIT
        finally:
            c.close()
        # A sentinel on a new connection: once it is answered, what the proxy forwarded
        # for the case has reached the upstream before it (one proxy worker, in order).
        type(self).sentinels += 1
        target = "/sentinel-%s-%d" % (name, self.sentinels)
        notes = []
        s = RawClient(addr, timeout=harness.IO_TIMEOUT)
        try:
            if s.request("GET", target).status != 200:
                notes.append("sentinel failed")
        except (OSError, ValueError, harness.Incomplete):
            notes.append("sentinel failed")
        finally:
            s.close()
        received = []
        for index, data in sorted(up.new_bytes(marks).items()):
            try:
                reqs, tail = smuggling.strict_requests(data)
            except smuggling.Malformed as e:
                notes.append("upstream got no strict HTTP/1.1 request (%s)" % e)
                continue
            if tail:
                notes.append("incomplete upstream request")
            received += reqs
        mine = [r["target"] for r in received if not r["target"].startswith("/sentinel-")]
        if any(t.startswith("/smuggled") for t in mine):
            notes.append("/smuggled forwarded")
        return outcome, len(mine), notes

    def check_case(self, name, raw):
        gw = self.run_case("gateway", self.gw.addr, name, raw, harness.IO_TIMEOUT)
        others = {
            "nginx": self.run_case("nginx", self.nginx.addr, name, raw, OTHER_TIMEOUT),
            "haproxy": self.run_case("haproxy", self.haproxy.addr, name, raw, OTHER_TIMEOUT),
        }
        self.results[name] = dict(gateway=gw, **others)
        # In a pipelined case the good first request is forwarded by all.
        allowed = 1 if name.startswith("pipelined_") else 0
        for other, (outcome, _, _) in others.items():
            if refused(outcome):
                self.assertTrue(refused(gw[0]), "%s: %s refuses it (%s), the gateway answers %s"
                                % (name, other, outcome, gw[0]))
                self.assertLessEqual(gw[1], allowed, "%s: %s refuses it, the gateway forwards %d"
                                     " request(s)" % (name, other, gw[1]))

    @classmethod
    def table(cls):
        def cell(result):
            outcome, forwarded, notes = result
            text = "%s, %d up" % (outcome, forwarded)
            return text + ("; " + "; ".join(notes) if notes else "")

        lines = ["| case | gateway | nginx | HAProxy |", "|---|---|---|---|"]
        counts = {"gateway": 0, "nginx": 0, "haproxy": 0}
        stricter = {"nginx": 0, "haproxy": 0}
        for name in smuggling.CASES:
            r = cls.results.get(name)
            if not r:
                continue
            for proxy in counts:
                counts[proxy] += refused(r[proxy][0])
            for other in stricter:
                stricter[other] += refused(r["gateway"][0]) and not refused(r[other][0])
            lines.append("| %s | %s | %s | %s |" % (name, cell(r["gateway"]), cell(r["nginx"]),
                                                    cell(r["haproxy"])))
        summary = ("%d cases. Refused (error status or closed): gateway %d, nginx %d, "
                   "HAProxy %d. Refused by the gateway and passed by nginx: %d; by HAProxy: "
                   "%d.\n\n" % (len(cls.results), counts["gateway"], counts["nginx"],
                                counts["haproxy"], stricter["nginx"], stricter["haproxy"]))
        return summary + "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# The response side: an upstream that answers each path with bytes of its own choosing,
# then closes. "Refused" there is a 5xx from the proxy (or the client connection closed
# with no response): the gateway must refuse every response nginx or HAProxy refuse.

def _resp(head, body=b""):
    return b"HTTP/1.1 " + head + b"\r\n\r\n" + body


RESPONSES = {
    "valid_cl": _resp(b"200 OK\r\nContent-Length: 5", b"hello"),
    "valid_chunked": _resp(b"200 OK\r\nTransfer-Encoding: chunked", b"5\r\nhello\r\n0\r\n\r\n"),
    "valid_close_delimited": _resp(b"200 OK", b"hello"),
    "valid_http10": b"HTTP/1.0 200 OK\r\n\r\nhello",
    "valid_no_reason": b"HTTP/1.1 200 \r\nContent-Length: 5\r\n\r\nhello",
    "interim_103_then_200": b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" +
                            _resp(b"200 OK\r\nContent-Length: 5", b"hello"),
    "cl_and_te": _resp(b"200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked",
                       b"5\r\nhello\r\n0\r\n\r\n"),
    "cl_duplicate_different": _resp(b"200 OK\r\nContent-Length: 5\r\nContent-Length: 6", b"hello!"),
    "cl_duplicate_same": _resp(b"200 OK\r\nContent-Length: 5\r\nContent-Length: 5", b"hello"),
    "cl_list": _resp(b"200 OK\r\nContent-Length: 5, 5", b"hello"),
    "cl_negative": _resp(b"200 OK\r\nContent-Length: -1", b"hello"),
    "cl_plus": _resp(b"200 OK\r\nContent-Length: +5", b"hello"),
    "cl_hex": _resp(b"200 OK\r\nContent-Length: 0x5", b"hello"),
    "cl_space_before_colon": _resp(b"200 OK\r\nContent-Length : 5", b"hello"),
    "cl_obs_fold": _resp(b"200 OK\r\nContent-Length:\r\n 5", b"hello"),
    "te_xchunked": _resp(b"200 OK\r\nTransfer-Encoding: xchunked", b"5\r\nhello\r\n0\r\n\r\n"),
    "te_chunked_identity": _resp(b"200 OK\r\nTransfer-Encoding: chunked, identity",
                                 b"5\r\nhello\r\n0\r\n\r\n"),
    "te_gzip_chunked": _resp(b"200 OK\r\nTransfer-Encoding: gzip, chunked",
                             b"5\r\nhello\r\n0\r\n\r\n"),
    "te_two_fields": _resp(b"200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
                           b"5\r\nhello\r\n0\r\n\r\n"),
    "te_http10": b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "te_space_before_colon": _resp(b"200 OK\r\nTransfer-Encoding : chunked",
                                   b"5\r\nhello\r\n0\r\n\r\n"),
    "chunk_size_invalid": _resp(b"200 OK\r\nTransfer-Encoding: chunked", b"zz\r\nhello\r\n0\r\n\r\n"),
    "chunk_lf_only": _resp(b"200 OK\r\nTransfer-Encoding: chunked", b"5\nhello\n0\n\n"),
    "chunk_data_longer": _resp(b"200 OK\r\nTransfer-Encoding: chunked", b"3\r\nhello\r\n0\r\n\r\n"),
    "chunk_ext_ctl": _resp(b"200 OK\r\nTransfer-Encoding: chunked", b"5;a=\x01\r\nhello\r\n0\r\n\r\n"),
    "status_two_digits": b"HTTP/1.1 20 OK\r\nContent-Length: 5\r\n\r\nhello",
    "status_four_digits": b"HTTP/1.1 2000 OK\r\nContent-Length: 5\r\n\r\nhello",
    "status_letters": b"HTTP/1.1 2x0 OK\r\nContent-Length: 5\r\n\r\nhello",
    "version_http2": b"HTTP/2 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "version_http11_lowercase": b"http/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "version_missing": b"200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "not_http": b"hello, this is not HTTP\r\n\r\n",
    "head_bare_lf": b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
    "head_bare_cr": b"HTTP/1.1 200 OK\rContent-Length: 5\r\n\r\nhello",
    "header_obs_fold": _resp(b"200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 5", b"hello"),
    "header_nul_value": _resp(b"200 OK\r\nX-A: a\x00b\r\nContent-Length: 5", b"hello"),
    "header_no_colon": _resp(b"200 OK\r\nX-A 1\r\nContent-Length: 5", b"hello"),
    "header_name_space_inside": _resp(b"200 OK\r\nX A: 1\r\nContent-Length: 5", b"hello"),
    "header_huge": _resp(b"200 OK\r\nX-A: " + b"a" * 70000 + b"\r\nContent-Length: 5", b"hello"),
    "unrequested_101": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\n\r\nhello",
    "body_shorter_than_cl": _resp(b"200 OK\r\nContent-Length: 50", b"hello"),
    "chunked_cut_short": _resp(b"200 OK\r\nTransfer-Encoding: chunked", b"5\r\nhello\r\n"),
    "nothing": b"",
}


def scripted_handler(server, conn, r, index):
    req = harness.read_request(r)
    if req is None:
        return
    name = req["target"].rsplit("/", 1)[-1]
    conn.sendall(RESPONSES.get(name, _resp(b"200 OK\r\nContent-Length: 2", b"ok")))
    harness.close_quietly(conn)


class ResponseStrictness(GatewayTestCase):
    results = {}  # case name -> {proxy: (outcome, complete, body)}

    @classmethod
    def setUpClass(cls):
        cls.up = cls.own(harness.RawUpstream(scripted_handler, "scripted"))
        cls.gw = cls.start_gateway(config({"scripted": [cls.up.address]}))
        start_other_proxies(cls, cls.up.address)

    @classmethod
    def tearDownClass(cls):
        write_table("## Responses", cls.table())
        super().tearDownClass()

    def fetch(self, addr, name, timeout):
        c = RawClient(addr, timeout=timeout)
        try:
            c.send(harness.build_request("GET", "/case/" + name))
            try:
                resp, _ = read_response_or_close(c)
            except (socket.timeout, ValueError):
                return WAIT, False, b""
            if resp is None:
                return CLOSED, False, b""
            return resp.status, resp.complete, resp.body
        finally:
            c.close()

    def check_response(self, name):
        gw = self.fetch(self.gw.addr, name, harness.IO_TIMEOUT)
        others = {"nginx": self.fetch(self.nginx.addr, name, OTHER_TIMEOUT),
                  "haproxy": self.fetch(self.haproxy.addr, name, OTHER_TIMEOUT)}
        self.results[name] = dict(gateway=gw, **others)
        # Never a hang: the gateway answers or closes within the timeouts.
        self.assertNotEqual(gw[0], WAIT, name)
        refused_by_gw = refused_response(gw[0])
        if name.startswith(("valid_", "interim_")):
            self.assertEqual((gw[0], gw[1], gw[2]), (200, True, b"hello"), name)
        elif name in ("body_shorter_than_cl", "chunked_cut_short"):
            # The head went out; the client must be able to tell the body is cut short.
            self.assertFalse(gw[0] == 200 and gw[1], "%s: the client saw a complete 200" % name)
        else:
            # Every other case is broken framing or syntax: the gateway refuses it,
            # whatever nginx and HAProxy do, with a 502. Each answer is one small send,
            # which loopback delivers in one read: the head has not gone out when the
            # broken body is found, so even a bad chunk gets a 502, not a bare close.
            self.assertTrue(refused_by_gw, "%s: the gateway passes %s on" % (name, gw[0]))
            self.assertEqual(gw[0], 502, name)
        for other, (outcome, _, _) in others.items():
            if refused_response(outcome):
                self.assertTrue(refused_by_gw,
                                "%s: %s refuses the response (%s), the gateway passes %s on"
                                % (name, other, outcome, gw[0]))

    @classmethod
    def table(cls):
        def cell(result):
            outcome, complete, body = result
            if not isinstance(outcome, int):
                return outcome
            return "%d%s, body %r" % (outcome, "" if complete else " (cut short)", body[:20])

        lines = ["| upstream response | gateway | nginx | HAProxy |", "|---|---|---|---|"]
        counts = {"gateway": 0, "nginx": 0, "haproxy": 0}
        for name in RESPONSES:
            r = cls.results.get(name)
            if r:
                for proxy in counts:
                    counts[proxy] += refused_response(r[proxy][0])
                lines.append("| %s | %s | %s | %s |" % (name, cell(r["gateway"]), cell(r["nginx"]),
                                                        cell(r["haproxy"])))
        summary = ("%d upstream responses. Refused (5xx to the client, or closed): gateway %d, "
                   "nginx %d, HAProxy %d.\n\n" % (len(cls.results), counts["gateway"],
                                                   counts["nginx"], counts["haproxy"]))
        return summary + "\n".join(lines) + "\n"


for _name in RESPONSES:
    setattr(ResponseStrictness, "test_" + _name,
            (lambda n: lambda self: self.check_response(n))(_name))


def _make(name, raw):
    def test(self):
        self.check_case(name, raw)
    test.__doc__ = "%s: %r" % (name, raw[:80])
    return test


for _name, _spec in smuggling.CASES.items():
    setattr(Strictness, "test_" + _name, _make(_name, _spec[0]))


if __name__ == "__main__":
    harness.main()
