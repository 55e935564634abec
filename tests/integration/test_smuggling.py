"""Request smuggling and malformed messages (RFC 9112 §6.1, §6.3 and the public
CL.TE / TE.CL / TE.TE research), checked with a recording upstream.

test_malformed.py already checks that a list of single bad heads gets 400 and that
the upstream receives none of it. This suite is about what the upstream actually
receives, byte for byte, and covers the cases that one does not: each case sends its
bytes on one client connection (most carry a smuggled second request,
"GET /smuggled", behind the first) and then checks that

  (a) the client gets the expected status(es) (an error, or 200 where the message is
      valid and must not be refused),
  (b) the bytes the upstream received, parsed strictly per upstream connection, are
      a sequence of well-formed HTTP/1.1 requests: at most one per client request,
      never one for /smuggled, and an incomplete trailing request only on an upstream
      connection that the gateway then closes (so nothing can be prefixed to the next
      request on a reused connection),
  (c) after a framing error the client connection is closed with no further bytes;
      after a valid request it stays usable (a follow-up request gets 200).

Every case finishes with a sentinel request on a new connection, which must arrive
upstream as exactly one request of its own."""

import re

import harness
from harness import (IO_TIMEOUT, BufferedSocket, EchoUpstream, GatewayTestCase, config,
                     read_request, read_response_or_close)

H = b"Host: test.local\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: test.local\r\n\r\n"

ERR = "err"     # expect an error status, then the connection closed
OK = "ok"       # expect 200 (or the listed statuses) and the connection kept open

# name -> (raw bytes, expected statuses of the first response, ERR/OK, upstream
#          requests expected from this case, optional check of the upstream requests)
CASES = {}


def case(name, raw, statuses, outcome, upstream=0, check=None):
    assert name not in CASES, name
    if isinstance(statuses, int):
        statuses = (statuses,)
    CASES[name] = (raw, statuses, outcome, upstream, check)


def post(headers, body=b"", version=b"HTTP/1.1", host=H, target=b"/s"):
    return b"POST " + target + b" " + version + b"\r\n" + host + headers + b"\r\n" + body


# -- CL.TE / TE.CL: both framings in one message (RFC 9112 §6.1: MUST be treated as
#    an error by a proxy, or TE wins and CL is dropped; this gateway refuses) --------
case("cl_te_classic", post(b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
                           b"0\r\n\r\nG" + SMUGGLED), 400, ERR)
case("te_cl_classic", post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                           b"5c\r\n" + SMUGGLED + b"\r\n0\r\n\r\n"), 400, ERR)
case("cl_te_zero_cl", post(b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
                           b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED), 400, ERR)
case("te_cl_http10", post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                          b"0\r\n\r\n" + SMUGGLED, version=b"HTTP/1.0"), 400, ERR)

# -- TE.TE: obfuscated Transfer-Encoding, one side might not see "chunked" ----------
for _name, _te in [
        ("te_xchunked_with_cl", b"Transfer-Encoding: xchunked\r\n"),
        ("te_chunked_identity", b"Transfer-Encoding: chunked, identity\r\n"),
        ("te_identity_chunked", b"Transfer-Encoding: identity, chunked\r\n"),
        ("te_chunked_chunked", b"Transfer-Encoding: chunked, chunked\r\n"),
        ("te_chunked_comma", b"Transfer-Encoding: chunked,\r\n"),
        ("te_quoted", b"Transfer-Encoding: \"chunked\"\r\n"),
        ("te_chunked_semicolon", b"Transfer-Encoding: chunked;q=1\r\n"),
        ("te_chunked_vtab", b"Transfer-Encoding: chunked\x0b\r\n"),
        ("te_chunked_nul", b"Transfer-Encoding: chunked\x00\r\n"),
        ("te_chunked_formfeed", b"Transfer-Encoding: \x0cchunked\r\n"),
        ("te_space_before_colon", b"Transfer-Encoding : chunked\r\n"),
        ("te_name_tab_before_colon", b"Transfer-Encoding\t: chunked\r\n"),
        ("te_obs_fold_value", b"Transfer-Encoding:\r\n chunked\r\n"),
        ("te_leading_space_line", b"X-A: 1\r\n Transfer-Encoding: chunked\r\n"),
        ("te_bare_lf_before", b"X-A: 1\nTransfer-Encoding: chunked\r\n"),
        ("te_name_lf_colon", b"Transfer-Encoding\n: chunked\r\n"),
        ("te_empty_value", b"Transfer-Encoding:\r\n"),
        ("te_two_fields_chunked_x", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n"),
        ("te_two_fields_x_chunked", b"Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n"),
        ("te_underscore_name", b"Transfer_Encoding: chunked\r\n"),
]:
    # With a Content-Length too: a hop that ignores the odd TE frames by CL (4 bytes,
    # "0\r\n\r" ...) and one that honours it sees a second request.
    if _name == "te_underscore_name":
        # Transfer_Encoding is a valid (unknown) field name: framed by CL, the body
        # is the 5 bytes "0\r\n\r\n" and the smuggled bytes are a real second request.
        # Send it without the smuggled one: 200, forwarded as is, CL framing.
        case(_name, post(_te + b"Content-Length: 5\r\n", b"0\r\n\r\n"), 200, OK, 1,
             lambda t, reqs: t.assertEqual(reqs[0]["body"], b"0\r\n\r\n"))
        continue
    case(_name, post(_te + b"Content-Length: 4\r\n", b"0\r\n\r\n" + SMUGGLED),
         (400, 501), ERR)
case("te_gzip_chunked_no_cl", post(b"Transfer-Encoding: gzip, chunked\r\n",
                                   b"0\r\n\r\n"), (400, 501), ERR)
case("te_in_http10_no_cl", post(b"Transfer-Encoding: chunked\r\n",
                                b"0\r\n\r\n" + SMUGGLED, version=b"HTTP/1.0"), 400, ERR)
# Valid spellings of chunked: case-insensitive, OWS around the value.
case("te_uppercase_chunked", post(b"Transfer-Encoding: CHUNKED\r\n",
                                  b"5\r\nhello\r\n0\r\n\r\n"), 200, OK, 1,
     lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))
# HTAB is OWS too, but around a framing field it is a TE.TE obfuscation on which hops
# disagree (nginx refuses it): refused.
case("te_tab_ows", post(b"Transfer-Encoding:\tchunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
     400, ERR)
# Trailing OWS is valid too (RFC 9110 §5.5), but llhttp refuses it: a false positive
# that is safe (400 and close, nothing forwarded).
case("te_trailing_ows", post(b"Transfer-Encoding: chunked \t\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
     (200, 400), None, 1, lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))

# -- Content-Length (RFC 9112 §6.3 item 5, RFC 9110 §8.6) -------------------------
case("cl_duplicate_conflicting_smuggle",
     post(b"Content-Length: 0\r\nContent-Length: 45\r\n", SMUGGLED), 400, ERR)
case("cl_duplicate_same", post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
     (200, 400), None, 1)
case("cl_list_same", post(b"Content-Length: 5, 5\r\n", b"hello"), (200, 400), None, 1)
case("cl_space_inside", post(b"Content-Length: 1 0\r\n", b"0123456789"), 400, ERR)
case("cl_trailing_garbage", post(b"Content-Length: 5x\r\n", b"hello"), 400, ERR)
case("cl_minus_zero", post(b"Content-Length: -0\r\n", b""), 400, ERR)
case("cl_decimal_point", post(b"Content-Length: 5.0\r\n", b"hello"), 400, ERR)
case("cl_empty", post(b"Content-Length:\r\n", SMUGGLED), 400, ERR)
case("cl_vtab", post(b"Content-Length: \x0b5\r\n", b"hello"), 400, ERR)
case("cl_space_before_colon", post(b"Content-Length : 5\r\n", b"hello"), 400, ERR)
case("cl_obs_fold", post(b"Content-Length:\r\n 5\r\n", b"hello"), 400, ERR)
case("cl_u64_wrap", post(b"Content-Length: 18446744073709551621\r\n", b"hello"),
     (400, 413), ERR)
case("cl_ows_valid", post(b"Content-Length:  5 \r\n", b"hello"), 200, OK, 1,
     lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))
case("cl_ows_tab", post(b"Content-Length: \t5 \r\n", b"hello"), 400, ERR)  # as te_tab_ows
case("cl_leading_tab", post(b"Content-Length:\t5\r\n", b"hello"), 400, ERR)
case("cl_trailing_tab", post(b"Content-Length: 5\t\r\n", b"hello"), 400, ERR)
case("cl_no_space", post(b"Content-Length:5\r\n", b"hello"), 200, OK, 1,
     lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))
case("cl_leading_zeros_valid", post(b"Content-Length: 0005\r\n", b"hello"), 200, OK, 1,
     lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))
case("post_without_length_is_empty",
     b"POST /s HTTP/1.1\r\n" + H + b"\r\n", 200, OK, 1,
     lambda t, reqs: t.assertEqual(reqs[0]["body"], b""))
case("get_with_cl_body", b"GET /s HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello",
     200, OK, 1, lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))

# -- Chunked body syntax (RFC 9112 §7.1) ------------------------------------------
CH = b"Transfer-Encoding: chunked\r\n"
case("chunk_lf_only_size_line", post(CH, b"5\nhello\r\n0\r\n\r\n" + SMUGGLED), 400, ERR)
case("chunk_lf_only_data_end", post(CH, b"5\r\nhello\n0\r\n\r\n" + SMUGGLED), 400, ERR)
case("chunk_lf_only_last", post(CH, b"5\r\nhello\r\n0\n\n" + SMUGGLED), 400, ERR)
case("chunk_bare_cr_data_end", post(CH, b"5\r\nhello\r0\r\n\r\n" + SMUGGLED), 400, ERR)
case("chunk_data_longer", post(CH, b"3\r\nhello\r\n0\r\n\r\n" + SMUGGLED), 400, ERR)
# 2^64-1: no overflow, the bytes after it are chunk data; past max_body (1 MiB): 413.
case("chunk_size_16_hex_digits", post(CH, b"ffffffffffffffff\r\n" + b"d" * (1100 << 10)),
     (400, 413), ERR)
case("chunk_size_wraps_to_small", post(CH, b"10000000000000005\r\nhello\r\n0\r\n\r\n"
                                       + SMUGGLED), (400, 413), ERR)
case("chunk_size_0x_prefix", post(CH, b"0x5\r\nhello\r\n0\r\n\r\n" + SMUGGLED), 400, ERR)
case("chunk_size_leading_space", post(CH, b" 5\r\nhello\r\n0\r\n\r\n" + SMUGGLED), 400, ERR)
case("chunk_size_plus", post(CH, b"+5\r\nhello\r\n0\r\n\r\n" + SMUGGLED), 400, ERR)
case("chunk_ext_ctl", post(CH, b"5;a=\x01\r\nhello\r\n0\r\n\r\n" + SMUGGLED), 400, ERR)
case("chunk_ext_bare_lf", post(CH, b"5;a\nb\r\nhello\r\n0\r\n\r\n" + SMUGGLED), 400, ERR)
case("chunk_last_missing_final_crlf_then_smuggle",
     post(CH, b"0\r\n" + SMUGGLED), (200, 400), None, 1)
case("chunk_ext_valid", post(CH, b"5;a;name=value\r\nhello\r\n0;y=z\r\n\r\n"), 200, OK, 1,
     lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))
# Also valid, but llhttp refuses an extension without a value after one with a value,
# and BWS before ";": false positives that are safe (400 and close).
case("chunk_ext_value_then_name", post(CH, b"5;name=value;x\r\nhello\r\n0\r\n\r\n"),
     (200, 400), None, 1, lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))
case("chunk_ext_bws", post(CH, b"5 ;x\r\nhello\r\n0\r\n\r\n"),
     (200, 400), None, 1, lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))
# A quoted-string extension value is valid (RFC 9112 §7.1.1); llhttp refuses it (safe).
case("chunk_ext_quoted", post(CH, b"5;name=\"v;\\\"x\"\r\nhello\r\n0\r\n\r\n"), (200, 400),
     None, 1, lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))
case("chunk_trailer_valid", post(CH, b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"),
     200, OK, 1, lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))
case("chunk_trailer_smuggled_cl",
     post(CH, b"5\r\nhello\r\n0\r\nContent-Length: 45\r\n\r\n"), 200, OK, 1,
     lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))

# -- Line endings, control bytes, obs-fold in the head ----------------------------
case("bare_cr_line_end", b"GET /s HTTP/1.1\r\n" + H + b"X-A: 1\r\r\n\r\n", 400, ERR)
case("bare_lf_request_line", b"GET /s HTTP/1.1\n" + H + b"\r\n", 400, ERR)
case("bare_lf_end_of_head", b"GET /s HTTP/1.1\r\n" + H + b"\n", 400, ERR)
case("cr_lf_lf_end_of_head",
     b"POST /s HTTP/1.1\r\n" + H + b"Content-Length: 45\r\n\n" + SMUGGLED, 400, ERR)
case("nul_in_method", b"G\x00T /s HTTP/1.1\r\n" + H + b"\r\n", 400, ERR)
case("nul_in_target", b"GET /s\x00x HTTP/1.1\r\n" + H + b"\r\n", 400, ERR)
case("obs_fold_host", b"GET /s HTTP/1.1\r\nHost: test.local\r\n evil.example\r\n\r\n",
     400, ERR)
case("header_name_8bit", b"GET /s HTTP/1.1\r\n" + H + b"X-\xff: 1\r\n\r\n", 400, ERR)
case("leading_crlf_before_request", b"\r\nGET /s HTTP/1.1\r\n" + H + b"\r\n",
     (200, 400), None, 1)

# -- Host and absolute-form (RFC 9112 §3.2) ----------------------------------------
def _only_host(value):
    def check(t, reqs):
        hosts = [v for k, v in reqs[0]["headers"] if k.lower() == "host"]
        t.assertEqual(hosts, [value], "upstream Host fields: %r" % hosts)
    return check


# RFC 9112 §3.2.2: the target's authority wins, but a client sends Host identical to
# it; two authorities in one request are refused (as HAProxy does). A default port on
# one side only is the same authority.
case("absolute_form_host_mismatch",
     b"GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n", 400, ERR)
case("absolute_form_host_default_port",
     b"GET http://A.example/x HTTP/1.1\r\nHost: a.example:80\r\n\r\n", 200, OK, 1,
     _only_host("A.example"))
case("absolute_form_host_other_port",
     b"GET http://a.example:8080/x HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, ERR)
case("absolute_form_no_host_http11", b"GET http://a.example/x HTTP/1.1\r\n\r\n",
     (200, 400), None, 1, _only_host("a.example"))
case("absolute_form_userinfo", b"GET http://u@a.example/x HTTP/1.1\r\n" + H + b"\r\n",
     400, ERR)
case("absolute_form_empty_authority", b"GET http:///x HTTP/1.1\r\n" + H + b"\r\n", 400, ERR)
case("host_and_second_host_lowercase",
     b"GET /s HTTP/1.1\r\nHost: a.example\r\nhost: b.example\r\n\r\n", 400, ERR)
case("host_list", b"GET /s HTTP/1.1\r\nHost: a.example, b.example\r\n\r\n", 400, ERR)
case("host_with_slash", b"GET /s HTTP/1.1\r\nHost: a.example/evil\r\n\r\n", 400, ERR)
case("host_with_at", b"GET /s HTTP/1.1\r\nHost: u@a.example\r\n\r\n", 400, ERR)
case("http10_without_host", b"GET /s HTTP/1.0\r\n\r\n", 200, ERR, 1)  # 1.0: then close

# -- Expect (RFC 9110 §10.1.1) ----------------------------------------------------
case("expect_unknown", post(b"Expect: 200-ok\r\nContent-Length: 5\r\n", b"hello"),
     417, ERR)
case("expect_100_continue_then_unknown",
     post(b"Expect: 100-continue\r\nExpect: foo\r\nContent-Length: 5\r\n", b"hello"),
     417, ERR)
case("expect_list_100_and_unknown",
     post(b"Expect: 100-continue, foo\r\nContent-Length: 5\r\n", b"hello"), 417, ERR)
case("expect_100_continue_case", post(b"Expect: 100-Continue\r\nContent-Length: 5\r\n",
                                      b"hello"), 200, OK, 1,
     lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))
case("expect_100_continue_no_body", b"GET /s HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\n\r\n",
     200, OK, 1)

# -- Upgrade: h2c (h2c smuggling, BishopFox 2020) ----------------------------------
# Tunnelled, an h2c upgrade lets the client speak HTTP/2 to the upstream itself, every
# later request past routes and filters. It goes upstream as a plain request instead
# (no Upgrade, no HTTP2-Settings) and the connection stays HTTP/1.1.
def _no_h2c_upgrade(t, reqs):
    names = [k.lower() for k, _ in reqs[0]["headers"]]
    t.assertNotIn("upgrade", names)
    t.assertNotIn("http2-settings", names)


WS_KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
for _name, _upgrade in [("upgrade_h2c", b"h2c"), ("upgrade_h2c_among_others", b"websocket, H2C")]:
    case(_name, b"GET /s HTTP/1.1\r\n" + H + b"Connection: Upgrade, HTTP2-Settings\r\n"
         b"Upgrade: " + _upgrade + b"\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n" + WS_KEY +
         b"\r\n", 200, OK, 1, _no_h2c_upgrade)
case("upgrade_h2c_settings_not_nominated",
     b"GET /s HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: h2c\r\n"
     b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", 200, OK, 1, _no_h2c_upgrade)

# A protocol the route does not list in `upgrades` (default ["websocket"]) is not
# tunnelled either: a tunnel takes every later byte past routes and filters.
def _no_upgrade(t, reqs):
    t.assertNotIn("upgrade", [k.lower() for k, _ in reqs[0]["headers"]])


case("upgrade_unlisted_protocol", b"GET /s HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\n"
     b"Upgrade: foo\r\n\r\n", 200, OK, 1, _no_upgrade)
# RFC 9110 §7.8: a server MUST ignore Upgrade in an HTTP/1.0 request.
case("upgrade_websocket_http10", b"GET /s HTTP/1.0\r\n" + H + b"Connection: keep-alive, Upgrade\r\n"
     b"Upgrade: websocket\r\n" + WS_KEY + b"\r\n", 200, OK, 1, _no_upgrade)
case("upgrade_websocket_and_unlisted", b"GET /s HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\n"
     b"Upgrade: websocket, foo\r\n" + WS_KEY + b"\r\n", 200, OK, 1, _no_upgrade)

# RFC 6455 §4.1: a WebSocket handshake has one Sec-WebSocket-Key (HAProxy checks too).
for _name, _upgrade in [("upgrade_websocket_without_key", b"websocket"),
                        ("upgrade_websocket_h2c_without_key", b"websocket, h2c")]:
    case(_name, b"GET /s HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: " + _upgrade +
         b"\r\n\r\n", 400, ERR)

# -- Request line (RFC 9112 §3) ---------------------------------------------------
case("method_lowercase", b"get /s HTTP/1.1\r\n" + H + b"\r\n", (400, 501), ERR)
case("method_unknown", b"FOO /s HTTP/1.1\r\n" + H + b"\r\n", (400, 405, 501), ERR)
case("method_with_slash", b"GE/T /s HTTP/1.1\r\n" + H + b"\r\n", (400, 501), ERR)
case("target_no_slash", b"GET s HTTP/1.1\r\n" + H + b"\r\n", 400, ERR)
case("target_asterisk_get", b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400, ERR)
case("target_8bit", b"GET /\xff HTTP/1.1\r\n" + H + b"\r\n", 400, ERR)
case("target_tab", b"GET /a\tb HTTP/1.1\r\n" + H + b"\r\n", 400, ERR)
case("two_spaces_after_method", b"GET  /s HTTP/1.1\r\n" + H + b"\r\n", 400, ERR)
case("tab_separator", b"GET\t/s\tHTTP/1.1\r\n" + H + b"\r\n", 400, ERR)
case("version_http2", b"GET /s HTTP/2.0\r\n" + H + b"\r\n", (400, 505), ERR)
case("version_http09_style", b"GET /s\r\n\r\n", (400, 505), ERR)
case("version_leading_zero", b"GET /s HTTP/01.1\r\n" + H + b"\r\n", (400, 505), ERR)
case("version_http12", b"GET /s HTTP/1.2\r\n" + H + b"\r\n", (200, 400, 505), None, 1)
case("connect_method", b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
     (400, 405), ERR)

# -- Over-long lines (limits below: 8 KiB of head) -----------------------------------
case("request_line_over_limit", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n",
     (400, 414, 431), ERR)
case("header_line_over_limit", b"GET /s HTTP/1.1\r\n" + H + b"X-Long: " + b"b" * 9000 +
     b"\r\n\r\n", (400, 431), ERR)
case("header_name_over_limit", b"GET /s HTTP/1.1\r\n" + H + b"X" * 9000 + b": 1\r\n\r\n",
     (400, 431), ERR)
# Chunk extensions are capped at 4 KiB per chunk-size line (llhttp has no limit).
case("chunk_ext_long", post(CH, b"5;" + b"e" * 100000 + b"\r\nhello\r\n0\r\n\r\n"), 400, ERR)
case("chunk_ext_4k", post(CH, b"5;" + b"e" * 4096 + b"\r\nhello\r\n0\r\n\r\n"), 200, OK, 1,
     lambda t, reqs: t.assertEqual(reqs[0]["body"], b"hello"))
case("chunk_size_line_long_zeros", post(CH, b"0" * 100 + b"5\r\nhello\r\n0\r\n\r\n"),
     (200, 400), None, 1)

# -- More from the public lists (PortSwigger's TE.TE and CL variants, the HTTP Garden,
#    "funky chunks" 2025): chunk lines, trailers, request line, Host shape ----------
def _body(expected):
    return lambda t, reqs: t.assertEqual(reqs[0]["body"], expected)


case("trailer_bare_lf", post(CH, b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n" + SMUGGLED), 400, ERR)
case("trailer_obs_fold", post(CH, b"5\r\nhello\r\n0\r\nX-T: 1\r\n 2\r\n\r\n" + SMUGGLED), 400, ERR)
case("trailer_obs_fold_empty_first_line",
     post(CH, b"5\r\nhello\r\n0\r\nX-T:\r\n 2\r\n\r\n" + SMUGGLED), 400, ERR)
case("trailer_te_chunked", post(CH, b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"),
     400, ERR)
case("chunk_size_bare_cr", post(CH, b"5\rhello\r\n0\r\n\r\n" + SMUGGLED), 400, ERR)
case("chunk_size_trailing_space", post(CH, b"5 \r\nhello\r\n0\r\n\r\n"), 400, ERR)
case("chunk_size_trailing_tab", post(CH, b"5\t\r\nhello\r\n0\r\n\r\n"), 400, ERR)
case("chunk_size_underscore", post(CH, b"0_5\r\nhello\r\n0\r\n\r\n" + SMUGGLED), 400, ERR)
case("chunk_ext_semicolon_only", post(CH, b"5;\r\nhello\r\n0\r\n\r\n"), 400, ERR)
case("chunk_ext_cr_in_value", post(CH, b"5;a=b\rc\r\nhello\r\n0\r\n\r\n" + SMUGGLED), 400, ERR)
case("chunk_data_cr_only_end", post(CH, b"5\r\nhello\r0\r\n\r\n" + SMUGGLED), 400, ERR)
case("chunk_zero_then_data", post(CH, b"0\r\nhello\r\n\r\n" + SMUGGLED), 400, ERR)
case("chunk_size_uppercase_hex", post(CH, b"A\r\nhellohello\r\n0\r\n\r\n"), 200, OK, 1,
     _body(b"hellohello"))
case("te_chunked_in_get", b"GET /s HTTP/1.1\r\n" + H + CH + b"\r\n5\r\nhello\r\n0\r\n\r\n",
     200, OK, 1, _body(b"hello"))
case("te_chunked_twice_two_lines",
     post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), 400, ERR)
case("cl_plus_sign", post(b"Content-Length: +5\r\n", b"hello"), 400, ERR)
case("cl_hex", post(b"Content-Length: 0x5\r\n", b"hello"), 400, ERR)
case("cl_list_different", post(b"Content-Length: 5, 6\r\n", b"hello!"), 400, ERR)
case("cl_nul_after", post(b"Content-Length: 5\x00\r\n", b"hello"), 400, ERR)
case("cl_name_nul", post(b"Content-Length\x00: 5\r\n", b"hello"), 400, ERR)
case("header_no_colon", b"GET /s HTTP/1.1\r\n" + H + b"X-A 1\r\n\r\n", 400, ERR)
case("header_empty_name", b"GET /s HTTP/1.1\r\n" + H + b": 1\r\n\r\n", 400, ERR)
case("header_value_del", b"GET /s HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n", 400, ERR)
case("header_value_8bit", b"GET /s HTTP/1.1\r\n" + H + b"X-A: caf\xc3\xa9\r\n\r\n", 200, OK, 1)
case("header_value_starts_with_colon", b"GET /s HTTP/1.1\r\n" + H + b"X-A:: 1\r\n\r\n", 200, OK, 1)
case("space_first_header_line", b"GET /s HTTP/1.1\r\n " + H + b"\r\n", 400, ERR)
case("version_lowercase", b"GET /s http/1.1\r\n" + H + b"\r\n", 400, ERR)
case("version_trailing_space", b"GET /s HTTP/1.1 \r\n" + H + b"\r\n", 400, ERR)
case("http10_keepalive_with_cl",
     b"POST /s HTTP/1.0\r\n" + H + b"Connection: keep-alive\r\nContent-Length: 5\r\n\r\nhello",
     200, OK, 1, _body(b"hello"))
# A fragment never reaches a server; a backslash is no URI character (and a backend that
# takes it for "/" sees another path than the one routed).
case("target_fragment", b"GET /a#b HTTP/1.1\r\n" + H + b"\r\n", 400, ERR)
case("target_absolute_fragment",
     b"GET http://a.example/a#b HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, ERR)
case("target_backslash", b"GET /public\\..\\admin HTTP/1.1\r\n" + H + b"\r\n", 400, ERR)
case("target_vtab", b"GET /a\x0bb HTTP/1.1\r\n" + H + b"\r\n", 400, ERR)
case("target_percent_encoded", b"GET /a%20b%23c%5C HTTP/1.1\r\n" + H + b"\r\n", 200, OK, 1)
case("target_absolute_ftp", b"GET ftp://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
     400, ERR)
case("target_options_asterisk", b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", (200, 404), OK, 1)
case("host_empty", b"GET /s HTTP/1.1\r\nHost:\r\n\r\n", 400, ERR)
case("host_empty_port", b"GET /s HTTP/1.1\r\nHost: a.example:\r\n\r\n", 200, OK, 1)
case("host_port_letters", b"GET /s HTTP/1.1\r\nHost: a.example:8a\r\n\r\n", 400, ERR)
case("host_ipv6_unclosed", b"GET /s HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, ERR)
case("host_space_inside", b"GET /s HTTP/1.1\r\nHost: a example\r\n\r\n", 400, ERR)
case("host_tab_ows", b"GET /s HTTP/1.1\r\nHost:\ta.example\r\n\r\n", 400, ERR)
case("host_percent_encoded", b"GET /s HTTP/1.1\r\nHost: a%2eexample\r\n\r\n", 200, OK, 1)
case("method_trace", b"TRACE /s HTTP/1.1\r\n" + H + b"\r\n", 405, ERR)
case("method_long", b"A" * 64 + b" /s HTTP/1.1\r\n" + H + b"\r\n", 400, ERR)
case("many_headers", b"GET /s HTTP/1.1\r\n" + H +
     b"".join(b"X-%d: v\r\n" % i for i in range(150)) + b"\r\n", 431, ERR)
# Connection cannot remove Content-Length: the body is read and forwarded, then the
# connection closes as asked.
case("connection_nominates_content_length",
     post(b"Connection: close, Content-Length\r\nContent-Length: 5\r\n", b"hello"), 200, ERR, 1,
     _body(b"hello"))
case("expect_100_with_body_sent_at_once",
     post(b"Expect: 100-continue\r\nContent-Length: 5\r\n", b"hello"), 200, OK, 1, _body(b"hello"))

# -- Pipelining: a valid request, then an invalid one --------------------------------
PIPE_GOOD = b"GET /good HTTP/1.1\r\n" + H + b"\r\n"
case("pipelined_good_then_cl_te",
     PIPE_GOOD + post(b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
                      b"0\r\n\r\nG" + SMUGGLED), (200,), ERR, 1)
case("pipelined_good_then_nul", PIPE_GOOD + b"\x00" + SMUGGLED, (200,), ERR, 1)
case("pipelined_good_then_bare_lf", PIPE_GOOD + b"GET /smuggled HTTP/1.1\nHost: x\n\n",
     (200,), ERR, 1)


# ---------------------------------------------------------------------------
# The recording upstream and a strict parser for what it received

TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
REQUEST_LINE = re.compile(rb"(" + TOKEN + rb") (/[\x21-\x7e]*|\*) HTTP/1\.1")
FIELD_LINE = re.compile(rb"(" + TOKEN + rb"):[ \t]*((?:[\x21-\x7e\x80-\xff]"
                        rb"(?:[\x20-\x7e\t\x80-\xff]*[\x21-\x7e\x80-\xff])?)?)[ \t]*")
CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})((?:[ \t]*;[^\x00-\x08\x0a-\x1f\x7f]*)?)")


class Malformed(Exception):
    pass


def strict_requests(data):
    """Splits bytes one upstream connection received into complete requests, by
    RFC 9112 strictly. Returns (requests, incomplete tail); raises Malformed."""
    requests = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return requests, data[pos:]
        lines = data[pos:end].split(b"\r\n")
        m = REQUEST_LINE.fullmatch(lines[0])
        if not m:
            raise Malformed("request line %r" % lines[0][:200])
        headers = []
        for line in lines[1:]:
            f = FIELD_LINE.fullmatch(line)
            if not f:
                raise Malformed("field line %r" % line[:200])
            headers.append((f.group(1).decode("latin-1"), f.group(2).decode("latin-1")))
        names = [k.lower() for k, _ in headers]
        if names.count("host") != 1:
            raise Malformed("%d Host fields" % names.count("host"))
        cls = [v for k, v in headers if k.lower() == "content-length"]
        tes = [v for k, v in headers if k.lower() == "transfer-encoding"]
        if cls and tes:
            raise Malformed("Content-Length and Transfer-Encoding")
        if len(cls) > 1 or len(tes) > 1:
            raise Malformed("repeated framing field")
        p = end + 4
        body = bytearray()
        if tes:
            if tes[0].lower() != "chunked":
                raise Malformed("Transfer-Encoding %r" % tes[0])
            while True:
                eol = data.find(b"\r\n", p)
                if eol < 0:
                    return requests, data[pos:]
                c = CHUNK_LINE.fullmatch(data[p:eol])
                if not c:
                    raise Malformed("chunk line %r" % data[p:eol][:100])
                size = int(c.group(1), 16)
                p = eol + 2
                if size == 0:
                    while True:  # trailer section
                        eol = data.find(b"\r\n", p)
                        if eol < 0:
                            return requests, data[pos:]
                        line = data[p:eol]
                        p = eol + 2
                        if not line:
                            break
                        if not FIELD_LINE.fullmatch(line):
                            raise Malformed("trailer line %r" % line[:100])
                    break
                if len(data) < p + size + 2:
                    return requests, data[pos:]
                body += data[p:p + size]
                if data[p + size:p + size + 2] != b"\r\n":
                    raise Malformed("chunk data not followed by CRLF")
                p += size + 2
        elif cls:
            if not re.fullmatch(r"[0-9]+", cls[0]):
                raise Malformed("Content-Length %r" % cls[0])
            n = int(cls[0])
            if len(data) < p + n:
                return requests, data[pos:]
            body += data[p:p + n]
            p += n
        requests.append({"method": m.group(1).decode(), "target": m.group(2).decode("latin-1"),
                         "headers": headers, "body": bytes(body)})
        pos = p
    return requests, b""


class RecordingUpstream(EchoUpstream):
    """EchoUpstream that keeps the raw bytes of each connection apart and knows
    which connections have ended."""

    def __init__(self, name="recorder"):
        super().__init__(name)
        self.streams = {}      # connection index -> bytearray of everything received
        self.ended = set()     # indexes whose connection has closed

    def handle(self, conn, index):
        stream = bytearray()
        with self.cond:
            self.streams[index] = stream

        def on_data(data):
            with self.cond:
                stream.extend(data)
            self._record(data)

        r = BufferedSocket(conn)
        r.on_data = on_data
        try:
            while True:
                req = read_request(r)
                if req is None:
                    return
                with self.cond:
                    self.requests.append(req)
                    self.cond.notify_all()
                if not self.respond(conn, req):
                    return
        finally:
            with self.cond:
                self.ended.add(index)
                self.cond.notify_all()

    def marks(self):
        with self.cond:
            return {i: len(s) for i, s in self.streams.items()}

    def new_bytes(self, marks):
        with self.cond:
            return {i: bytes(s[marks.get(i, 0):]) for i, s in self.streams.items()
                    if len(s) > marks.get(i, 0)}


class Smuggling(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.up = cls.own(RecordingUpstream())
        cls.gw = cls.start_gateway(config(
            {"recorder": [cls.up.address]},
            limits={"max_header_bytes": "8KiB", "max_body": "1MiB",
                    "header_read_timeout": "5s", "idle_timeout": "20s"}))
        cls.sentinels = 0

    def check_case(self, name, raw, statuses, outcome, upstream, check):
        marks = self.up.marks()
        c = self.client()
        try:
            c.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole (large) case was sent; the response is read
        responses = []
        if name.startswith("pipelined_"):
            first = c.read_response()
            self.assertIn(first.status, statuses, "%s: first response %s" % (name, first.status))
            resp, closed_early = read_response_or_close(c)
            self.assertIsNotNone(resp, "%s: no response to the bad request" % name)
            self.assertEqual(resp.status, 400, name)
            responses.append(first)
        else:
            resp, closed_early = read_response_or_close(c)
            self.assertIsNotNone(resp, "%s: closed without a response" % name)
            self.assertIn(resp.status, statuses,
                          "%s: got %s, want one of %s" % (name, resp.status, statuses))
        responses.append(resp)
        valid = resp.status == 200
        if outcome is None:
            outcome = OK if valid else ERR
        if outcome == ERR:
            if not closed_early:
                closed, extra = c.wait_closed()
                self.assertTrue(closed, "%s: connection open after %s" % (name, resp.status))
                self.assertEqual(extra, b"", "%s: bytes after the response: %r"
                                 % (name, extra[:200]))
        else:
            # The connection is still in sync: a follow-up request is answered.
            again = c.request("GET", "/again-%s" % name)
            self.assertEqual(again.status, 200, name)
            self.assertEqual(again.json()["target"], "/again-%s" % name)
        # The sentinel, on a new connection.
        type(self).sentinels += 1
        target = "/sentinel-%s-%d" % (name, self.sentinels)
        good = self.client().request("GET", target)
        self.assertEqual(good.status, 200)
        self.assertEqual(good.json()["target"], target)

        # What the upstream received since the case started, connection by connection.
        received = []
        for index, data in sorted(self.up.new_bytes(marks).items()):
            try:
                reqs, tail = strict_requests(data)
            except Malformed as e:
                self.fail("%s: upstream connection %d received a malformed request (%s): %r"
                          % (name, index, e, data[:600]))
            if tail:
                # An incomplete request is only acceptable if the gateway closes that
                # upstream connection (it can never be completed by later bytes).
                self.assertTrue(self.up.wait_for(lambda: index in self.up.ended, IO_TIMEOUT),
                                "%s: upstream connection %d holds an incomplete request "
                                "and stays open: %r" % (name, index, tail[:300]))
                self.assertNotIn(b"smuggled", tail.split(b"\r\n\r\n", 1)[0],
                                 "%s: a smuggled head reached the upstream" % name)
            received += reqs
        targets = [r["target"] for r in received]
        self.assertEqual([t for t in targets if t.startswith("/sentinel-")], [target],
                         "%s: upstream requests %r" % (name, targets))
        for t in targets:
            self.assertFalse(t.startswith("/smuggled"), "%s: smuggled request reached upstream: %r"
                             % (name, targets))
        mine = [r for r in received if not r["target"].startswith(("/sentinel-", "/again-"))]
        self.assertLessEqual(len(mine), upstream,
                             "%s: %d upstream requests for this case: %r"
                             % (name, len(mine), targets))
        if valid and not name.startswith("pipelined_"):
            self.assertEqual(len(mine), 1, "%s: answered 200 but upstream got %r"
                             % (name, targets))
            if check:
                check(self, mine)

    def test_strict_parser_self_check(self):
        reqs, tail = strict_requests(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
                                     b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
                                     b"\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /y HTTP/1.1\r\n")
        self.assertEqual([r["target"] for r in reqs], ["/", "/x"])
        self.assertEqual(reqs[1]["body"], b"abc")
        self.assertEqual(tail, b"GET /y HTTP/1.1\r\n")
        for bad in (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"3\r\nabcd\r\n"):
            with self.assertRaises(Malformed, msg=bad):
                strict_requests(bad)


def _make(name, spec):
    def test(self):
        self.check_case(name, *spec)
    test.__doc__ = "%s: %r" % (name, spec[0][:80])
    return test


for _name, _spec in CASES.items():
    setattr(Smuggling, "test_" + _name, _make(_name, _spec))


if __name__ == "__main__":
    harness.main()
