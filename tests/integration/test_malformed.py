"""Malformed and request-smuggling input: each case gets 400 and a closed connection,
and the upstream never receives a byte of it.

After each case a valid sentinel request goes through the same gateway on a fresh
connection; the upstream must have received exactly that sentinel and nothing else
since the case started."""

import harness
from harness import EchoUpstream, GatewayTestCase, config, read_response_or_close

H = b"Host: test.local\r\n"

# name -> raw bytes sent in one write
CASES = {
    # request smuggling
    "cl_and_te": b"POST /s HTTP/1.1\r\n" + H +
                 b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_and_cl": b"POST /s HTTP/1.1\r\n" + H +
                 b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "cl_twice_different": b"POST /s HTTP/1.1\r\n" + H +
                          b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "cl_list_different": b"POST /s HTTP/1.1\r\n" + H + b"Content-Length: 1, 2\r\n\r\nab",
    "cl_negative": b"POST /s HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n",
    "cl_not_a_number": b"POST /s HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n",
    "cl_plus_sign": b"POST /s HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello",
    "cl_hex": b"POST /s HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nhello",
    "cl_overflow": b"POST /s HTTP/1.1\r\n" + H +
                   b"Content-Length: 99999999999999999999999\r\n\r\n",
    "te_gzip": b"POST /s HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\nxxxx",
    "te_chunked_then_gzip": b"POST /s HTTP/1.1\r\n" + H +
                            b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "te_xchunked": b"POST /s HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te_chunked_twice_headers_then_identity": b"POST /s HTTP/1.1\r\n" + H +
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
    "chunk_size_invalid": b"POST /s HTTP/1.1\r\n" + H +
                          b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk_size_negative": b"POST /s HTTP/1.1\r\n" + H +
                           b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
    "chunk_size_overflow": b"POST /s HTTP/1.1\r\n" + H +
                           b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n",
    "chunk_missing_crlf": b"POST /s HTTP/1.1\r\n" + H +
                          b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    # header syntax
    "obs_fold": b"GET /s HTTP/1.1\r\n" + H + b"X-A: 1\r\n  continued\r\n\r\n",
    "obs_fold_tab": b"GET /s HTTP/1.1\r\n" + H + b"X-A: 1\r\n\tcontinued\r\n\r\n",
    "bare_cr_in_header_value": b"GET /s HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n",
    "bare_lf_line_endings": b"GET /s HTTP/1.1\n" + b"Host: test.local\n\n",
    "bare_lf_in_header_block": b"GET /s HTTP/1.1\r\n" + H + b"X-A: 1\nX-B: 2\r\n\r\n",
    "bare_cr_in_request_line": b"GET /s\r HTTP/1.1\r\n" + H + b"\r\n",
    "space_before_colon": b"GET /s HTTP/1.1\r\n" + H + b"X-A : 1\r\n\r\n",
    "space_in_header_name": b"GET /s HTTP/1.1\r\n" + H + b"X Y: 1\r\n\r\n",
    "empty_header_name": b"GET /s HTTP/1.1\r\n" + H + b": 1\r\n\r\n",
    "header_without_colon": b"GET /s HTTP/1.1\r\n" + H + b"NoColonHere\r\n\r\n",
    "nul_in_header_value": b"GET /s HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n",
    "control_char_in_header_value": b"GET /s HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n",
    "del_in_header_value": b"GET /s HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n",
    "nul_in_header_name": b"GET /s HTTP/1.1\r\n" + H + b"X-\x00A: 1\r\n\r\n",
    # Host
    "missing_host_http11": b"GET /s HTTP/1.1\r\nX-A: 1\r\n\r\n",
    "two_host_headers": b"GET /s HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
    "host_with_space": b"GET /s HTTP/1.1\r\nHost: a b.example\r\n\r\n",
    # request line
    "request_line_garbage": b"GARBAGE\r\n\r\n",
    "request_line_extra_token": b"GET /s HTTP/1.1 extra\r\n" + H + b"\r\n",
    "request_line_bad_version": b"GET /s HTTP/1.x\r\n" + H + b"\r\n",
    "request_line_lowercase_version": b"GET /s http/1.1\r\n" + H + b"\r\n",
    "request_line_space_in_target": b"GET /a b HTTP/1.1\r\n" + H + b"\r\n",
    "request_line_control_in_target": b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n",
    "binary_garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",
}

# Cases where RFC 9112 lets a server choose between 400 and another 4xx/5xx code.
ALLOWED_STATUS = {
    "cl_overflow": (400, 413),
    "te_gzip": (400, 501),
    "te_xchunked": (400, 501),
    "te_chunked_then_gzip": (400, 501),
    "te_chunked_twice_headers_then_identity": (400, 501),
    "request_line_bad_version": (400, 505),
    "request_line_lowercase_version": (400, 505),
}


class Malformed(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = cls.own(EchoUpstream("recorder"))
        cls.gw = cls.start_gateway(config({"recorder": [cls.echo.address]}))
        cls.sentinels = 0

    def check_case(self, name, raw):
        _, before_bytes, before_raw = self.echo.snapshot()
        before_requests = self.echo.request_count()
        c = self.client()
        c.send(raw)
        resp, closed_early = read_response_or_close(c)
        allowed = ALLOWED_STATUS.get(name, (400,))
        self.assertIsNotNone(resp, "%s: connection closed without any response" % name)
        self.assertIn(resp.status, allowed,
                      "%s: got %s, want %s" % (name, resp.status, allowed))
        if not closed_early:
            closed, extra = c.wait_closed()
            self.assertTrue(closed, "%s: connection not closed after %s" % (name, resp.status))
            self.assertEqual(extra, b"", "%s: bytes after the error response" % name)
        # The sentinel: a good request through the same gateway.
        type(self).sentinels += 1
        target = "/sentinel-%s-%d" % (name, self.sentinels)
        good = self.client().request("GET", target)
        self.assertEqual(good.status, 200)
        self.assertEqual(good.json()["target"], target)
        _, after_bytes, after_raw = self.echo.snapshot()
        new_raw = after_raw[len(before_raw):]
        self.assertTrue(new_raw.startswith(("GET %s HTTP/1.1\r\n" % target).encode()),
                        "%s: upstream received bytes of the malformed request: %r"
                        % (name, new_raw[:300]))
        self.assertEqual(self.echo.request_count(), before_requests + 1,
                         "%s: upstream received extra requests" % name)
        self.assertEqual(new_raw.count(b"HTTP/1.1\r\n"), 1, new_raw[:600])

    def test_valid_request_still_works(self):
        resp = self.client().request("GET", "/valid")
        self.assertEqual(resp.status, 200)

    def test_pipelined_good_then_bad(self):
        """A good request followed by a smuggled one on the same connection: the good
        one is answered, the bad one gets 400 and only the good one reaches upstream."""
        before = self.echo.request_count()
        c = self.client()
        c.send(harness.build_request("GET", "/good-first") + CASES["cl_and_te"])
        first = c.read_response()
        self.assertEqual(first.status, 200)
        self.assertEqual(first.json()["target"], "/good-first")
        second, closed_early = read_response_or_close(c)
        self.assertIsNotNone(second, "no response to the smuggled request")
        self.assertEqual(second.status, 400)
        self.assertEqual(self.echo.request_count(), before + 1)
        self.assertEqual(self.echo.last()["target"], "/good-first")


def _make(name, raw):
    def test(self):
        self.check_case(name, raw)
    test.__doc__ = "%s: %r" % (name, raw[:80])
    return test


for _name, _raw in CASES.items():
    setattr(Malformed, "test_" + _name, _make(_name, _raw))


if __name__ == "__main__":
    harness.main()
