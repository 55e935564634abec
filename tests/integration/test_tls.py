"""TLS termination: SNI picks the certificate (exact, wildcard, unknown -> default),
ALPN, versions, session resumption across workers, client certificates (mTLS), the
certificate reloading while a connection stays open, and bad input on a TLS port
(plain HTTP, garbage, a stalled handshake) ending that connection cleanly and counted.
Certificates are made at test time by scripts/make_test_certs.sh (openssl CLI)."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import urllib.request

import harness
from harness import IO_TIMEOUT, EchoUpstream, GatewayTestCase, RawClient, config

cert = harness.test_cert


def tls_table(**extra):
    table = {"certificates": [
        {"cert": cert("localhost.pem"), "key": cert("localhost.key")},
        {"cert": cert("api.pem"), "key": cert("api.key"),
         "server_names": ["api.example.com", "*.api.example.com"]},
    ]}
    table.update(extra)
    return table


def tls_doc(echo, workers=2, **tls_extra):
    listeners = [{"name": "main", "listen": "127.0.0.1:0", "tls": tls_table(**tls_extra)}]
    return config({"echo": [echo.address]}, listeners=listeners, workers=workers,
                  admin="127.0.0.1:0")


def s_client(addr, *args, request=None, timeout=IO_TIMEOUT):
    """Runs openssl s_client; returns (exit code, stdout + stderr). With `request` the
    bytes are sent and s_client waits for the server to close (-ign_eof)."""
    cmd = ["openssl", "s_client", "-connect", "%s:%d" % addr] + list(args)
    if request is not None:
        cmd.append("-ign_eof")
    p = subprocess.run(cmd, input=request or b"", capture_output=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def subject_cn(output):
    for line in output.splitlines():
        if line.startswith("subject="):
            return line.split("CN = ", 1)[-1].strip()
    return None


def curl(url, *args, timeout=IO_TIMEOUT):
    """curl; returns (exit code, status, body)."""
    cmd = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", str(int(timeout))]
    p = subprocess.run(cmd + list(args) + [url], capture_output=True, timeout=timeout + 5)
    body, _, status = p.stdout.rpartition(b"\n")
    return p.returncode, int(status or 0), body


def stats(gw):
    with urllib.request.urlopen("http://%s:%d/stats" % gw.admin, timeout=IO_TIMEOUT) as r:
        return json.loads(r.read())


def wait_stat(gw, name, at_least):
    return harness.wait_until(lambda: stats(gw)[name] >= at_least)


CLOSE_REQUEST = b"GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


class TlsClient(RawClient):
    """RawClient over TLS (Python's ssl), verifying against the test CA."""

    def __init__(self, addr, server_hostname="localhost", context=None, **kw):
        self.server_hostname = server_hostname
        self.context = context
        super().__init__(addr, **kw)

    def connect(self):
        super().connect()
        ctx = self.context
        if ctx is None:
            ctx = ssl.create_default_context(cafile=cert("ca.pem"))
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.server_hostname)
        self.r = harness.BufferedSocket(self.sock)
        return self


class Termination(GatewayTestCase):
    """One gateway (2 workers, two certificates) for the read-only checks."""

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))
        cls.gw = cls.start_gateway(tls_doc(cls.echo, handshake_timeout="1s"))

    def url(self, path="/", host="localhost"):
        return "https://%s:%d%s" % (host, self.gw.addr[1], path)

    def test_curl_https_request_reaches_upstream_as_https(self):
        code, status, body = curl(self.url("/hello"), "--cacert", cert("ca.pem"))
        self.assertEqual((code, status), (0, 200), body)
        req = json.loads(body)
        self.assertEqual(req["target"], "/hello")
        self.assertEqual(harness.header_get(req["headers"], "X-Forwarded-Proto"), "https")
        # Without the CA the certificate is not trusted: curl refuses.
        code, _, _ = curl(self.url("/hello"))
        self.assertNotEqual(code, 0)

    def test_sni_picks_certificate(self):
        cases = [("localhost", "localhost"), ("api.example.com", "api.example.com"),
                 ("v2.api.example.com", "api.example.com"),  # wildcard
                 ("API.Example.COM", "api.example.com")]     # names are case-insensitive
        for name, want in cases:
            _, out = s_client(self.gw.addr, "-servername", name)
            self.assertEqual(subject_cn(out), want, "SNI %s:\n%s" % (name, out))
        # A wildcard covers one label only: a.b.api.example.com gets the default.
        _, out = s_client(self.gw.addr, "-servername", "a.b.api.example.com")
        self.assertEqual(subject_cn(out), "localhost")
        # curl verifies the name against the chosen certificate.
        code, status, _ = curl(self.url("/", "api.example.com"), "--cacert", cert("ca.pem"),
                               "--resolve", "api.example.com:%d:127.0.0.1" % self.gw.addr[1])
        self.assertEqual((code, status), (0, 200))

    def test_unknown_or_missing_sni_gets_default_certificate_and_is_counted(self):
        before = stats(self.gw)["tls_sni_unknown"]
        _, out = s_client(self.gw.addr, "-servername", "unknown.example.org")
        self.assertEqual(subject_cn(out), "localhost")
        self.assertTrue(wait_stat(self.gw, "tls_sni_unknown", before + 1))
        _, out = s_client(self.gw.addr, "-noservername")
        self.assertEqual(subject_cn(out), "localhost")

    def test_alpn(self):
        _, out = s_client(self.gw.addr, "-servername", "localhost", "-alpn", "h2,http/1.1")
        self.assertIn("ALPN protocol: http/1.1", out)
        _, out = s_client(self.gw.addr, "-servername", "localhost", "-alpn", "h2")
        self.assertIn("No ALPN negotiated", out)
        self.assertIn("Verify return code", out)  # the handshake still completed

    def test_tls_versions(self):
        for flag, version in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            code, out = s_client(self.gw.addr, flag, "-servername", "localhost",
                                 request=CLOSE_REQUEST)
            self.assertEqual(code, 0, out)
            self.assertIn("Protocol  : " + version, out)
            self.assertIn("HTTP/1.1 200", out)
        code, out = s_client(self.gw.addr, "-tls1_1")
        self.assertNotEqual(code, 0, "TLS 1.1 must be refused")

    def test_resumption_across_workers(self):
        sess = os.path.join(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")), "sess.pem")
        before = stats(self.gw)
        code, out = s_client(self.gw.addr, "-tls1_3", "-servername", "localhost",
                             "-sess_out", sess, request=CLOSE_REQUEST)
        self.assertEqual(code, 0, out)
        self.assertIn("New, TLSv1.3", out)
        after = stats(self.gw)
        made_on = [a - b for a, b in zip(after["tls_handshakes_by_worker"],
                                         before["tls_handshakes_by_worker"])]
        self.assertEqual(sorted(made_on), [0, 1], made_on)
        other = made_on.index(0)
        # The kernel spreads connections over the workers' sockets by the client port:
        # resume until one lands on the other worker (each attempt must resume).
        for attempt in range(40):
            before = stats(self.gw)
            code, out = s_client(self.gw.addr, "-tls1_3", "-servername", "localhost",
                                 "-sess_in", sess, request=CLOSE_REQUEST)
            self.assertEqual(code, 0, out)
            self.assertIn("Reused, TLSv1.3", out, "attempt %d" % attempt)
            self.assertIn("HTTP/1.1 200", out)
            after = stats(self.gw)
            if after["tls_resumed_by_worker"][other] > before["tls_resumed_by_worker"][other]:
                break
        else:
            self.fail("no resumption landed on worker %d in 40 attempts" % other)
        # A resumed connection gets a fresh ticket, which resumes again (a chain).
        chained = sess + ".next"
        code, out = s_client(self.gw.addr, "-tls1_3", "-servername", "localhost",
                             "-sess_in", sess, "-sess_out", chained, request=CLOSE_REQUEST)
        self.assertIn("Reused, TLSv1.3", out)
        _, out = s_client(self.gw.addr, "-tls1_3", "-servername", "localhost",
                          "-sess_in", chained, request=CLOSE_REQUEST)
        self.assertIn("Reused, TLSv1.3", out)
        # TLS 1.2 tickets resume too.
        sess12 = sess + ".12"
        s_client(self.gw.addr, "-tls1_2", "-servername", "localhost", "-sess_out", sess12,
                 request=CLOSE_REQUEST)
        _, out = s_client(self.gw.addr, "-tls1_2", "-servername", "localhost",
                          "-sess_in", sess12, request=CLOSE_REQUEST)
        self.assertIn("Reused, TLSv1.2", out)

    def test_plain_http_on_tls_port(self):
        before = stats(self.gw)["tls_plain_http"]
        c = self.client(self.gw.addr)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = c.read_response()
        self.assertEqual(resp.status, 400)
        self.assertIn(b"plain HTTP request was sent to an HTTPS port", resp.body)
        closed, _ = c.wait_closed()
        self.assertTrue(closed)
        self.assertTrue(wait_stat(self.gw, "tls_plain_http", before + 1))
        self.assert_still_serving()

    def test_garbage_on_tls_port(self):
        before = stats(self.gw)["tls_handshake_failures"]
        c = self.client(self.gw.addr)
        c.send(b"\x16\x03\x01\x00\x05garbage-garbage-garbage\r\n" * 4)
        closed, _ = c.wait_closed()
        self.assertTrue(closed)
        self.assertTrue(wait_stat(self.gw, "tls_handshake_failures", before + 1))
        self.assert_still_serving()

    def test_stalled_handshake_is_closed_at_the_timeout(self):
        before = stats(self.gw)["tls_handshake_timeouts"]
        # Half a ClientHello: a record header that promises more than is sent.
        c = self.client(self.gw.addr)
        c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20)
        # Other connections are served while it stalls.
        self.assert_still_serving()
        closed, _ = c.wait_closed(timeout=IO_TIMEOUT)
        self.assertTrue(closed, "a stalled handshake was not closed")
        self.assertTrue(wait_stat(self.gw, "tls_handshake_timeouts", before + 1))
        # A connection that sends nothing at all is closed by the same clock.
        idle = self.client(self.gw.addr)
        self.assertTrue(idle.wait_closed(timeout=IO_TIMEOUT)[0])

    def test_keep_alive_and_clean_close(self):
        c = TlsClient(self.gw.addr)
        self.addCleanup(c.close)
        for i in range(3):
            resp = c.request("GET", "/ka/%d" % i, host="localhost")
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.json()["target"], "/ka/%d" % i)
        # Connection: close -> the gateway ends with close_notify: unwrap() succeeds.
        resp = c.request("GET", "/last", headers=[("Connection", "close")], host="localhost")
        self.assertEqual(resp.status, 200)
        c.sock.settimeout(IO_TIMEOUT)
        self.assertEqual(c.sock.recv(10), b"")  # close_notify reads as a clean EOF
        c.sock.unwrap()

    def test_session_ticket_rides_with_the_first_response_and_resumes(self):
        # A TLS 1.3 server's ticket waits for its first write (the response) rather than
        # taking a write of its own: it must still arrive, and resume.
        ctx = ssl.create_default_context(cafile=cert("ca.pem"))
        c = TlsClient(self.gw.addr, context=ctx)
        self.addCleanup(c.close)
        resp = c.request("GET", "/ticket", host="localhost")
        self.assertEqual(resp.status, 200)
        self.assertEqual(c.sock.version(), "TLSv1.3")
        session = c.sock.session
        self.assertTrue(session is not None and session.has_ticket)
        raw = socket.create_connection(self.gw.addr, timeout=IO_TIMEOUT)
        again = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        self.addCleanup(again.close)
        self.assertTrue(again.session_reused)
        again.sendall(CLOSE_REQUEST)
        data = harness.BufferedSocket(again).read_to_eof()
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])

    def test_client_hello_in_two_writes(self):
        # The server's handshake waits its turn only once: a ClientHello whose second half
        # arrives in a later read still completes the handshake and the request.
        ctx = ssl.create_default_context(cafile=cert("ca.pem"))
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with self.assertRaises(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        sock = socket.create_connection(self.gw.addr, timeout=IO_TIMEOUT)
        self.addCleanup(sock.close)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(hello[:60])
        sock.sendall(hello[60:])

        def pump():  # sends what the client wrote, feeds it what the server sent
            pending = outgoing.read()
            if pending:
                sock.sendall(pending)
            data = sock.recv(65536)
            if not data:
                raise EOFError("the gateway closed the connection")
            incoming.write(data)

        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pump()
        tls.write(CLOSE_REQUEST)
        response = b""
        while True:  # to the gateway's close_notify (an empty read), after the response
            try:
                data = tls.read(65536)
            except ssl.SSLWantReadError:
                pump()
                continue
            if not data:
                break
            response += data
        self.assertTrue(response.startswith(b"HTTP/1.1 200"), response[:100])
        self.assertIn(b'"target": "/x"', response)

    def test_large_body_both_ways(self):
        c = TlsClient(self.gw.addr)
        self.addCleanup(c.close)
        body = os.urandom(3 << 20)
        resp = c.request("POST", "/upload", body=body, host="localhost",
                         headers=[("X-Echo-Body-Size", str(5 << 20))])
        self.assertEqual(resp.status, 200)
        self.assertEqual(len(resp.body), 5 << 20)
        self.assertEqual(resp.body[:65536], harness._PATTERN_BLOCK)

    def assert_still_serving(self):
        code, status, body = curl(self.url("/still"), "--cacert", cert("ca.pem"))
        self.assertEqual((code, status), (0, 200), body)


class ClientCertificates(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("echo"))

    def start(self, mode):
        return self.gateway(tls_doc(self.echo, workers=1, client_ca=cert("ca.pem"),
                                    client_auth=mode))

    def url(self, gw, path="/"):
        return "https://localhost:%d%s" % (gw.addr[1], path)

    def test_required(self):
        gw = self.start("required")
        ca = ("--cacert", cert("ca.pem"))
        spoof = ("-H", "X-Client-Cert-Subject: CN=admin", "-H", "x-client-cert-sha256: 00")
        code, status, body = curl(self.url(gw, "/m"), *ca, "--cert", cert("client.pem"),
                                  "--key", cert("client.key"), *spoof)
        self.assertEqual((code, status), (0, 200), body)
        headers = json.loads(body)["headers"]
        self.assertEqual(harness.header_all(headers, "X-Client-Cert-Subject"), ["CN=test client"])
        fingerprint = subprocess.run(
            ["openssl", "x509", "-in", cert("client.pem"), "-noout", "-fingerprint", "-sha256"],
            capture_output=True, check=True).stdout.decode().split("=", 1)[1].strip()
        self.assertEqual(harness.header_all(headers, "X-Client-Cert-Sha256"),
                         [fingerprint.replace(":", "").lower()])
        # No certificate, or one from another CA: refused, counted; others unaffected.
        code, _, _ = curl(self.url(gw), *ca)
        self.assertNotEqual(code, 0)
        code, _, _ = curl(self.url(gw), *ca, "--cert", cert("other-client.pem"),
                          "--key", cert("other-client.key"))
        self.assertNotEqual(code, 0)
        self.assertTrue(wait_stat(gw, "tls_client_cert_failures", 2))
        code, status, _ = curl(self.url(gw), *ca, "--cert", cert("client.pem"),
                               "--key", cert("client.key"))
        self.assertEqual((code, status), (0, 200))

    def test_optional(self):
        gw = self.start("optional")
        ca = ("--cacert", cert("ca.pem"))
        # Without a certificate: served, and forged identity headers are removed.
        code, status, body = curl(self.url(gw), *ca, "-H", "X-Client-Cert-Subject: CN=admin")
        self.assertEqual((code, status), (0, 200), body)
        headers = json.loads(body)["headers"]
        self.assertIsNone(harness.header_get(headers, "X-Client-Cert-Subject"))
        code, status, body = curl(self.url(gw), *ca, "--cert", cert("client.pem"),
                                  "--key", cert("client.key"))
        self.assertEqual((code, status), (0, 200), body)
        self.assertEqual(harness.header_get(json.loads(body)["headers"], "X-Client-Cert-Subject"),
                         "CN=test client")
        # A certificate that does not verify is refused even when optional.
        code, _, _ = curl(self.url(gw), *ca, "--cert", cert("other-client.pem"),
                          "--key", cert("other-client.key"))
        self.assertNotEqual(code, 0)
        self.assertTrue(wait_stat(gw, "tls_client_cert_failures", 1))


class TlsEchoUpstream(EchoUpstream):
    """EchoUpstream behind TLS (Python's ssl) with the test CA's localhost certificate
    (names localhost and 127.0.0.1). `client_ca`: require a client certificate."""

    def __init__(self, name="tls-echo", client_ca=None):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert("localhost.pem"), cert("localhost.key"))
        if client_ca:
            self.ctx.load_verify_locations(client_ca)
            self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.peer_subjects = []
        super().__init__(name)

    def handle(self, conn, index):
        tls = self.ctx.wrap_socket(conn, server_side=True)
        peer = tls.getpeercert()
        if peer:
            self.peer_subjects.append(dict(x[0] for x in peer["subject"]))
        try:
            super().handle(tls, index)
        finally:
            tls.close()


class UpstreamTls(GatewayTestCase):

    def doc(self, up, tls):
        pool = {"endpoints": [up.address], "tls": tls}
        return config({"secure": {"pools": {"main": pool}}}, workers=1, admin="127.0.0.1:0")

    def test_verified_upstream_keep_alive(self):
        up = self.upstream(TlsEchoUpstream())
        gw = self.gateway(self.doc(up, {"ca_file": cert("ca.pem")}))
        c = self.client(gw.addr)
        for i in range(3):
            resp = c.request("GET", "/up/%d" % i)
            self.assertEqual(resp.status, 200, resp.body)
            self.assertEqual(resp.json()["target"], "/up/%d" % i)
        self.assertEqual(up.connections, 1, "the TLS upstream connection was not reused")
        # Large bodies through the upstream TLS connection, both ways.
        body = os.urandom(1 << 20)
        resp = c.request("POST", "/big", body=body, headers=[("X-Echo-Body-Size", str(2 << 20))])
        self.assertEqual((resp.status, len(resp.body)), (200, 2 << 20))

    def test_sni_name_and_client_certificate(self):
        up = self.upstream(TlsEchoUpstream(client_ca=cert("ca.pem")))
        gw = self.gateway(self.doc(up, {"ca_file": cert("ca.pem"), "sni": "localhost",
                                        "cert": cert("client.pem"), "key": cert("client.key")}))
        resp = self.client(gw.addr).request("GET", "/mtls-up")
        self.assertEqual(resp.status, 200, resp.body)
        self.assertEqual(up.peer_subjects[-1].get("commonName"), "test client")

    def test_wrong_ca_is_502_and_counted(self):
        up = self.upstream(TlsEchoUpstream())
        gw = self.gateway(self.doc(up, {"ca_file": cert("other-ca.pem")}))
        resp = self.client(gw.addr).request("GET", "/untrusted")
        self.assertEqual(resp.status, 502)
        self.assertIn(b"upstream TLS handshake failed", resp.body)
        self.assertEqual(up.request_count(), 0)
        self.assertTrue(wait_stat(gw, "tls_upstream_handshake_failures", 1))

    def test_name_mismatch_is_502_and_verify_false_skips_checks(self):
        up = self.upstream(TlsEchoUpstream())
        gw = self.gateway(self.doc(up, {"ca_file": cert("ca.pem"), "sni": "api.example.com"}))
        self.assertEqual(self.client(gw.addr).request("GET", "/").status, 502)
        gw2 = self.gateway(self.doc(up, {"ca_file": cert("other-ca.pem"), "verify": False}),
                           name="noverify")
        self.assertEqual(self.client(gw2.addr).request("GET", "/").status, 200)


class RedirectToHttps(GatewayTestCase):

    def test_plain_listener_redirects_with_308(self):
        echo = self.upstream(EchoUpstream("echo"))
        listeners = [
            {"name": "main", "listen": "127.0.0.1:0", "tls": tls_table()},
            {"name": "plain", "listen": "127.0.0.1:0", "redirect_to_https": 8443},
            {"name": "plain443", "listen": "127.0.0.1:0", "redirect_to_https": True},
        ]
        gw = self.gateway(config({"echo": [echo.address]}, listeners=listeners, workers=1))
        c = self.client(gw.listeners["plain"])
        resp = c.request("GET", "/a/b?x=1", host="example.com:8080")
        self.assertEqual(resp.status, 308)
        self.assertEqual(resp.header("Location"), "https://example.com:8443/a/b?x=1")
        self.assertEqual(resp.body, b"")
        # Keep-alive: the same connection gets the next redirect.
        resp = c.request("HEAD", "/c", host="[::1]:80")
        self.assertEqual((resp.status, resp.header("Location")), (308, "https://[::1]:8443/c"))
        resp = self.client(gw.listeners["plain443"]).request("GET", "/", host="example.com")
        self.assertEqual(resp.header("Location"), "https://example.com/")
        # A request with a body is redirected; a short body is read and dropped and the
        # connection kept, a long one (over 64 KiB) is not read and the connection closes.
        c = self.client(gw.listeners["plain"])
        resp = c.request("POST", "/form", body=b"x" * 1000, host="example.com")
        self.assertEqual(resp.status, 308)
        self.assertIsNone(resp.header("Connection"))
        resp = c.request("GET", "/next", host="example.com")
        self.assertEqual((resp.status, resp.header("Location")), (308, "https://example.com:8443/next"))
        c.send(harness.build_request("POST", "/big", host="example.com",
                                     headers=[("Content-Length", "100000")]))
        resp = c.read_response()
        self.assertEqual(resp.status, 308)
        self.assertEqual(resp.header("Connection"), "close")
        self.assertTrue(c.wait_closed()[0])
        self.assertEqual(echo.request_count(), 0, "a redirected request reached the upstream")


class CertificateReload(GatewayTestCase):

    def test_swap_keeps_open_connection_and_refuses_bad_cert(self):
        echo = self.upstream(EchoUpstream("echo"))
        work = tempfile.mkdtemp(prefix="gw-swap-", dir=os.environ.get("TEST_TMPDIR"))
        live_cert = os.path.join(work, "live.pem")
        live_key = os.path.join(work, "live.key")
        shutil.copy(cert("localhost.pem"), live_cert)
        shutil.copy(cert("localhost.key"), live_key)
        listeners = [{"name": "main", "listen": "127.0.0.1:0",
                      "tls": {"certificates": [{"cert": live_cert, "key": live_key}]}}]
        gw = self.gateway(config({"echo": [echo.address]}, listeners=listeners, workers=2,
                                 admin="127.0.0.1:0"))
        kept = TlsClient(gw.addr)
        self.addCleanup(kept.close)
        self.assertEqual(kept.request("GET", "/before", host="localhost").status, 200)
        _, out = s_client(gw.addr, "-servername", "localhost")
        self.assertEqual(subject_cn(out), "localhost")

        # Replace the files (as cert-manager or certbot would: write, then rename).
        mark = len(gw.records)
        for src, dst in ((cert("api.pem"), live_cert), (cert("api.key"), live_key)):
            shutil.copy(src, dst + ".tmp")
            os.rename(dst + ".tmp", dst)
        rec = gw.wait_log(lambda r: r.get("msg") == "config reloaded", start_index=mark,
                          timeout=IO_TIMEOUT)
        self.assertIsNotNone(rec, "changing the certificate files did not reload")
        _, out = s_client(gw.addr, "-servername", "localhost")
        self.assertEqual(subject_cn(out), "api.example.com")
        # The connection opened before the swap is still open and served.
        self.assertEqual(kept.request("GET", "/after", host="localhost").status, 200)

        # A key that does not match the certificate: refused, the file named, old cert kept.
        mark = len(gw.records)
        shutil.copy(cert("localhost.key"), live_key + ".tmp")
        os.rename(live_key + ".tmp", live_key)
        rec = gw.wait_log(lambda r: r.get("msg", "").startswith("config reload failed"),
                          start_index=mark, timeout=IO_TIMEOUT)
        self.assertIsNotNone(rec, "a mismatched key was not reported")
        self.assertIn(live_key, rec["error"])
        self.assertIn("does not match", rec["error"])
        _, out = s_client(gw.addr, "-servername", "localhost")
        self.assertEqual(subject_cn(out), "api.example.com")
        self.assertEqual(kept.request("GET", "/still", host="localhost").status, 200)


if __name__ == "__main__":
    harness.main()


class HalfCloseInTheResponsesTurn(GatewayTestCase):
    """The client's FIN reaches the gateway in the same loop turn as the end of the
    upstream's response (the gateway is stopped while both arrive, upstream first). The
    response must still go out, and the connection must close after it: kept, it would
    sit idle with its EOF already read (over TLS never read again) until idle_timeout,
    and a draining worker would leave its loop with it still open."""

    def test_fin_with_the_response_end_closes_after_the_response(self):
        asked, release, sent = threading.Event(), threading.Event(), threading.Event()

        def held(server, conn, reader, index):
            reader.read_until(b"\r\n\r\n")
            asked.set()
            release.wait(IO_TIMEOUT)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            sent.set()
            try:
                conn.recv(1)  # hold the connection until the gateway lets it go
            except OSError:
                pass

        up = self.upstream(harness.RawUpstream(held, "held"))
        listeners = [{"name": "main", "listen": "127.0.0.1:0", "tls": tls_table()}]
        gw = self.gateway(config({"held": [up.address]}, listeners=listeners,
                                 limits={"idle_timeout": "60s"}))

        # TLS over memory BIOs, so that the TCP socket can be half-closed while the TLS
        # state stays to decrypt the response.
        raw = socket.create_connection(gw.addr, timeout=IO_TIMEOUT)
        self.addCleanup(raw.close)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ssl.create_default_context(cafile=cert("ca.pem")).wrap_bio(
            incoming, outgoing, server_hostname="localhost")
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())
                data = raw.recv(65536)
                self.assertTrue(data, "the gateway closed during the handshake")
                incoming.write(data)
        raw.sendall(outgoing.read())
        tls.write(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        raw.sendall(outgoing.read())
        self.assertTrue(asked.wait(IO_TIMEOUT), "the request did not reach the upstream")

        gw.send_signal(signal.SIGSTOP)
        self.addCleanup(gw.send_signal, signal.SIGCONT)
        release.set()
        self.assertTrue(sent.wait(IO_TIMEOUT))
        raw.shutdown(socket.SHUT_WR)  # the FIN, after the response's last byte
        gw.send_signal(signal.SIGCONT)

        # Everything until the gateway closes; a kept connection times out here.
        received = b""
        while True:
            data = raw.recv(65536)
            if not data:
                break
            received += data
        incoming.write(received)
        plain = b""
        while True:
            try:
                chunk = tls.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
            if not chunk:
                break
            plain += chunk
        self.assertTrue(plain.startswith(b"HTTP/1.1 200 OK\r\n"), plain)
        self.assertTrue(plain.endswith(b"\r\n\r\nok"), plain)


class CutShortToHttp10Client(GatewayTestCase):
    """An HTTP/1.0 client gets a chunked upstream body until the connection closes, so
    only the way it closes can tell it that the upstream died halfway: no close_notify
    (and a TCP reset), where a whole body ends with close_notify."""

    def test_cut_body_ends_without_close_notify(self):
        def handler(server, conn, reader, index):
            req = harness.read_request(reader)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5\r\nhello\r\n")
            if req["target"] == "/whole":
                conn.sendall(b"0\r\n\r\n")
                reader.read_some(1)  # until the gateway closes this connection
            harness.close_quietly(conn)

        up = self.upstream(harness.RawUpstream(handler, "cut"))
        listeners = [{"name": "main", "listen": "127.0.0.1:0", "tls": tls_table()}]
        gw = self.gateway(config({"cut": [up.address]}, listeners=listeners))

        def fetch(target):
            ctx = ssl.create_default_context(cafile=cert("ca.pem"))
            sock = ctx.wrap_socket(socket.create_connection(gw.addr, timeout=harness.IO_TIMEOUT),
                                   server_hostname="localhost", suppress_ragged_eofs=False)
            self.addCleanup(sock.close)
            sock.sendall(b"GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % target.encode())
            data = b""
            try:
                while True:
                    piece = sock.recv(65536)
                    if not piece:
                        return data, None  # close_notify: the body is whole
                    data += piece
            except (ssl.SSLError, ConnectionResetError) as e:
                return data, e

        data, error = fetch("/whole")
        self.assertIsNone(error)
        self.assertTrue(data.endswith(b"\r\n\r\nhello"), data)
        data, error = fetch("/cut")
        self.assertIsNotNone(error, "a cut-short body ended like a whole one")
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"), data)
        # curl (OpenSSL) as the client: a whole body is a success, a cut one a receive error.
        url = "https://localhost:%d" % gw.addr[1]
        code, status, body = curl(url + "/whole", "--http1.0", "--cacert", cert("ca.pem"))
        self.assertEqual((code, status, body), (0, 200, b"hello"))
        code, status, body = curl(url + "/cut", "--http1.0", "--cacert", cert("ca.pem"))
        self.assertEqual((code, status), (56, 200), body)  # 56: failure receiving data


class BrokenBodyInTheHeadsRead(GatewayTestCase):
    """An upstream body that fails to parse in the read that brought its head gets a 502
    over TLS too: the head staged as plaintext is dropped, as over plain TCP
    (test_strictness.ResponseStrictness), rather than the connection closing bare."""

    def test_bad_chunk_in_the_first_read_is_502(self):
        def bad(server, conn, reader, index):
            reader.read_until(b"\r\n\r\n")
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"zz\r\nhello\r\n0\r\n\r\n")  # one send: one read at the gateway
            harness.close_quietly(conn)

        up = self.upstream(harness.RawUpstream(bad, "bad"))
        listeners = [{"name": "main", "listen": "127.0.0.1:0", "tls": tls_table()}]
        gw = self.gateway(config({"bad": [up.address]}, listeners=listeners,
                                 admin="127.0.0.1:0"))
        code, status, body = curl("https://localhost:%d/x" % gw.addr[1], "--cacert", cert("ca.pem"))
        self.assertEqual((code, status), (0, 502), body)
        self.assertIn(b"invalid response from upstream", body)
        # Counted once, as the 502 the client got: the upstream's dropped 200 is not.
        counts = [harness.metric(gw, "gateway_downstream_responses_total", '{class="%s"}' % c)
                  for c in ("2xx", "5xx")]
        self.assertEqual(counts, [0, 1])
