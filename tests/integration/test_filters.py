"""Filter chain through the real binary: request_id, headers, rewrite, redirect,
direct_response; the chain for all routes before a route's own; the response phase in
reverse order; local replies carrying the request id; config errors with file:line."""

import base64
import os
import re
import signal

import harness
from harness import EchoUpstream, GatewayTestCase, config, run_gateway

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

ROUTES = [
    {"name": "hdrs", "match": {"path_prefix": "/hdrs"}, "service": "app",
     "filters": [{"type": "headers",
                  "request_set": {"X-Route": "${route}", "X-Client": "${client_ip}",
                                  "X-Id": "${request_id}", "X-Host": "${host}",
                                  "X-Replaced": "new"},
                  "request_add": {"X-Added": "a ${method} $$5"},
                  "request_remove": ["X-Secret"],
                  "response_set": {"X-Served-By": "gw-${route}"},
                  "response_remove": ["X-Upstream-Internal"]}]},
    {"name": "prefix", "match": {"path_prefix": "/old/"}, "service": "app",
     "filters": [{"type": "rewrite", "prefix": "/old/", "replacement": "/new/"}]},
    {"name": "regex", "match": {"path_prefix": "/users/"}, "service": "app",
     "filters": [{"type": "rewrite", "regex": "^/users/([0-9]+)$",
                  "replacement": "/u/\\1/profile"}]},
    {"name": "moved", "match": {"path_prefix": "/moved"}, "service": "app",
     "filters": [{"type": "redirect", "location": "https://${host}${path}", "status": 301}]},
    {"name": "direct", "match": {"path_prefix": "/direct"}, "service": "app",
     "filters": [{"type": "direct_response", "status": 418, "body": "short and stout\n",
                  "content_type": "text/plain"}]},
    {"name": "order", "match": {"path_prefix": "/order"}, "service": "app",
     "filters": [{"type": "headers", "request_set": {"X-Step": "1"},
                  "response_set": {"X-Resp": "first"}},
                 {"type": "headers", "request_set": {"X-Step": "2"},
                  "response_set": {"X-Resp": "second"}}]},
    {"name": "down", "match": {"path_prefix": "/down"}, "service": "down"},
    {"name": "plain", "match": {"path_prefix": "/"}, "service": "app"},
]


def request_header(info, name):
    return harness.header_get(info["headers"], name)


class Filters(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.app = cls.own(EchoUpstream("app"))
        cls.app.extra_headers = [("X-Upstream-Internal", "secret"), ("X-Request-Id", "upstream")]
        doc = config({"app": [cls.app.address], "down": ["127.0.0.1:%d" % harness.free_port()]},
                     routes=ROUTES)
        # The chain for all routes: every request gets an id.
        doc["filters"] = [{"type": "request_id"}]
        cls.gw = cls.start_gateway(doc)

    def get(self, target, headers=None, method="GET", host="test.local"):
        return self.client().request(method, target, headers=headers, host=host)

    def test_request_id_generated_and_the_same_both_ways(self):
        resp = self.get("/plain")
        self.assertEqual(resp.status, 200)
        rid = resp.header("X-Request-Id")
        self.assertRegex(rid, UUID)  # the gateway's, not the upstream's "upstream"
        self.assertEqual(request_header(resp.json(), "X-Request-Id"), rid)
        self.assertEqual(resp.header_all("X-Request-Id"), [rid])
        self.assertNotEqual(self.get("/plain").header("X-Request-Id"), rid)

    def test_request_id_valid_incoming_kept_invalid_replaced(self):
        resp = self.get("/plain", headers=[("X-Request-Id", "abc-123.DEF")])
        self.assertEqual(resp.header("X-Request-Id"), "abc-123.DEF")
        self.assertEqual(request_header(resp.json(), "X-Request-Id"), "abc-123.DEF")
        for bad in ["has space", "x" * 129, "quote\"d", ""]:
            resp = self.get("/plain", headers=[("X-Request-Id", bad)])
            self.assertRegex(resp.header("X-Request-Id"), UUID, bad)
            ids = [v for k, v in resp.json()["headers"] if k.lower() == "x-request-id"]
            self.assertEqual(ids, [resp.header("X-Request-Id")], bad)

    def test_headers_edit_request_and_response(self):
        resp = self.get("/hdrs/x", host="api.test:8080",
                        headers=[("X-Secret", "s1"), ("X-Replaced", "old1"),
                                 ("X-Replaced", "old2"), ("X-Added", "client")])
        self.assertEqual(resp.status, 200)
        info = resp.json()
        names = [k.lower() for k, _ in info["headers"]]
        self.assertNotIn("x-secret", names)
        self.assertEqual(request_header(info, "X-Route"), "hdrs")
        self.assertEqual(request_header(info, "X-Client"), "127.0.0.1")
        self.assertEqual(request_header(info, "X-Id"), resp.header("X-Request-Id"))
        self.assertEqual(request_header(info, "X-Host"), "api.test:8080")
        self.assertEqual([v for k, v in info["headers"] if k.lower() == "x-replaced"], ["new"])
        self.assertEqual([v for k, v in info["headers"] if k.lower() == "x-added"],
                         ["client", "a GET $5"])
        self.assertEqual(resp.header("X-Served-By"), "gw-hdrs")
        self.assertIsNone(resp.header("X-Upstream-Internal"))
        self.assertIsNotNone(self.get("/plain").header("X-Upstream-Internal"))

    def test_rewrite_prefix_keeps_query(self):
        resp = self.get("/old/a/b?q=1&r=2")
        self.assertEqual(resp.json()["target"], "/new/a/b?q=1&r=2")

    def test_rewrite_regex(self):
        self.assertEqual(self.get("/users/42?x=y").json()["target"], "/u/42/profile?x=y")
        # No match: unchanged.
        self.assertEqual(self.get("/users/abc").json()["target"], "/users/abc")

    def test_redirect(self):
        before = self.app.request_count()
        resp = self.get("/moved/page?a=1", host="www.test")
        self.assertEqual(resp.status, 301)
        self.assertEqual(resp.header("Location"), "https://www.test/moved/page?a=1")
        body = resp.json()
        self.assertEqual(body["status"], 301)
        self.assertEqual(body["request_id"], resp.header("X-Request-Id"))
        self.assertEqual(self.app.request_count(), before)

    def test_direct_response(self):
        before = self.app.request_count()
        c = self.client()
        resp = c.request("GET", "/direct")
        self.assertEqual(resp.status, 418)
        self.assertEqual(resp.body, b"short and stout\n")
        self.assertEqual(resp.header("Content-Type"), "text/plain")
        self.assertRegex(resp.header("X-Request-Id"), UUID)
        # Keep-alive: the same connection serves the next request.
        self.assertEqual(c.request("GET", "/plain").status, 200)
        head = c.request("HEAD", "/direct")
        self.assertEqual((head.status, head.body), (418, b""))
        self.assertEqual(self.app.request_count(), before + 1)

    def test_chain_order(self):
        resp = self.get("/order")
        # Request phase in list order: the second filter's set wins.
        self.assertEqual(request_header(resp.json(), "X-Step"), "2")
        # Response phase in reverse order: the first filter runs last and wins.
        self.assertEqual(resp.header("X-Resp"), "first")

    def test_proxy_local_reply_carries_request_id(self):
        resp = self.get("/down", headers=[("X-Request-Id", "trace-77")])
        self.assertEqual(resp.status, 502)
        self.assertEqual(resp.json()["request_id"], "trace-77")
        self.assertEqual(resp.header("X-Request-Id"), "trace-77")


class AccessFilters(GatewayTestCase):
    """cors, ip_access (through trusted_proxies) and body_limit."""

    @classmethod
    def setUpClass(cls):
        cls.app = cls.own(EchoUpstream("app"))
        routes = [
            {"name": "cors", "match": {"path_prefix": "/cors"}, "service": "app",
             "filters": [{"type": "cors", "allow_origins": ["https://app.test"],
                          "allow_methods": ["GET", "put"],
                          "allow_headers": ["Content-Type", "X-Token"],
                          "expose_headers": ["X-Request-Id"], "allow_credentials": True,
                          "max_age": "10m"}]},
            {"name": "cors-any", "match": {"path_prefix": "/any"}, "service": "app",
             "filters": [{"type": "cors", "allow_origins": ["*"]}]},
            {"name": "allow", "match": {"path_prefix": "/allow"}, "service": "app",
             "filters": [{"type": "ip_access", "allow": ["10.0.0.0/8", "2001:db8::/32"],
                          "deny": ["10.66.0.0/16"]}]},
            {"name": "limit", "match": {"path_prefix": "/limit"}, "service": "app",
             "filters": [{"type": "body_limit", "max": "1KiB"}]},
            {"name": "plain", "match": {"path_prefix": "/"}, "service": "app"},
        ]
        doc = config({"app": [cls.app.address]}, routes=routes,
                     forwarding={"trusted_proxies": ["127.0.0.1"]})
        cls.gw = cls.start_gateway(doc)

    def get(self, target, headers=None, method="GET", body=b""):
        return self.client().request(method, target, headers=headers, body=body)

    def test_cors_preflight_answered_locally(self):
        before = self.app.request_count()
        resp = self.get("/cors/x", method="OPTIONS",
                        headers=[("Origin", "https://app.test"),
                                 ("Access-Control-Request-Method", "PUT")])
        self.assertEqual(resp.status, 204)
        self.assertEqual(resp.body, b"")
        self.assertEqual(resp.header("Access-Control-Allow-Origin"), "https://app.test")
        self.assertEqual(resp.header("Access-Control-Allow-Methods"), "GET, PUT")
        self.assertEqual(resp.header("Access-Control-Allow-Headers"), "Content-Type, X-Token")
        self.assertEqual(resp.header("Access-Control-Allow-Credentials"), "true")
        self.assertEqual(resp.header("Access-Control-Max-Age"), "600")
        self.assertIn("Origin", resp.header("Vary"))
        self.assertEqual(self.app.request_count(), before)

    def test_cors_preflight_refused(self):
        for origin, method in [("https://evil.test", "GET"), ("https://app.test", "DELETE")]:
            resp = self.get("/cors/x", method="OPTIONS",
                            headers=[("Origin", origin),
                                     ("Access-Control-Request-Method", method)])
            self.assertEqual(resp.status, 403, (origin, method))
            self.assertIsNone(resp.header("Access-Control-Allow-Origin"))

    def test_cors_simple_request(self):
        resp = self.get("/cors/x", headers=[("Origin", "https://app.test")])
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.header("Access-Control-Allow-Origin"), "https://app.test")
        self.assertEqual(resp.header("Access-Control-Expose-Headers"), "X-Request-Id")
        other = self.get("/cors/x", headers=[("Origin", "https://evil.test")])
        self.assertEqual(other.status, 200)
        self.assertIsNone(other.header("Access-Control-Allow-Origin"))
        none = self.get("/cors/x")
        self.assertIsNone(none.header("Access-Control-Allow-Origin"))
        anyone = self.get("/any", headers=[("Origin", "https://whoever.test")])
        self.assertEqual(anyone.header("Access-Control-Allow-Origin"), "*")

    def test_ip_access_uses_the_trusted_proxy_client(self):
        # The peer 127.0.0.1 is a trusted proxy: the client is the nearest untrusted
        # X-Forwarded-For entry.
        cases = [([("X-Forwarded-For", "10.1.2.3")], 200),
                 ([("X-Forwarded-For", "10.1.2.3, 127.0.0.1")], 200),
                 ([("X-Forwarded-For", "10.1.2.3, 192.168.0.1")], 403),
                 ([("X-Forwarded-For", "10.66.1.1")], 403),
                 ([("X-Forwarded-For", "2001:db8::7")], 200),
                 ([("X-Forwarded-For", "not-an-ip")], 403),
                 ([], 403)]
        for headers, want in cases:
            resp = self.get("/allow", headers=headers)
            self.assertEqual(resp.status, want, headers)
            if want == 403:
                self.assertEqual(resp.json()["error"], "client address not allowed")

    def test_body_limit_declared(self):
        before = self.app.request_count()
        resp = self.get("/limit", method="POST", body=b"x" * 2000)
        self.assertEqual(resp.status, 413)
        self.assertEqual(self.app.request_count(), before)
        self.assertEqual(self.get("/limit", method="POST", body=b"x" * 1024).status, 200)
        # The listener's limit still applies elsewhere; this one is per route.
        self.assertEqual(self.get("/plain", method="POST", body=b"x" * 2000).status, 200)

    def test_body_limit_chunked_streaming(self):
        c = self.client()
        c.send(harness.build_request("POST", "/limit",
                                     headers=[("Transfer-Encoding", "chunked")]))
        try:
            c.send(harness.chunked_body(b"y" * 3000, sizes=(512,)))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway may answer and close before the last chunk
        resp, _ = harness.read_response_or_close(c)
        self.assertIsNotNone(resp)
        self.assertEqual(resp.status, 413)
        self.assertEqual(resp.header("Connection"), "close")
        ok = self.client()
        ok.send(harness.build_request("POST", "/limit",
                                      headers=[("Transfer-Encoding", "chunked")]))
        ok.send(harness.chunked_body(b"y" * 1000, sizes=(100,)))
        self.assertEqual(ok.read_response().status, 200)


class RateLimit(GatewayTestCase):
    """Local rate limits hold for the whole process: two workers, one budget."""

    @classmethod
    def setUpClass(cls):
        cls.app = cls.own(EchoUpstream("app"))
        routes = [
            {"name": "ip", "match": {"path_prefix": "/ip"}, "service": "app",
             "filters": [{"type": "rate_limit", "rate": "1/h", "burst": 4}]},
            {"name": "hdr", "match": {"path_prefix": "/hdr"}, "service": "app",
             "filters": [{"type": "rate_limit", "rate": "1/h", "burst": 1,
                          "key": "header:X-Api-Key"}]},
            {"name": "open", "match": {"path_prefix": "/"}, "service": "app",
             "filters": [{"type": "rate_limit", "rate": "1000/s", "key": "route"}]},
        ]
        cls.gw = cls.start_gateway(config({"app": [cls.app.address]}, routes=routes, workers=2))

    def test_burst_then_429_across_workers(self):
        # A new connection per request: the kernel spreads them over both workers.
        statuses = []
        for _ in range(8):
            resp = self.client().request("GET", "/ip")
            statuses.append(resp.status)
            if resp.status == 200:
                self.assertEqual(resp.header("RateLimit-Limit"), "4")
                self.assertIsNotNone(resp.header("RateLimit-Remaining"))
            else:
                self.assertEqual(resp.status, 429)
                self.assertEqual(resp.json()["error"], "rate limit exceeded")
                self.assertGreaterEqual(int(resp.header("Retry-After")), 1)
                self.assertEqual(resp.header("RateLimit-Remaining"), "0")
                self.assertGreater(int(resp.header("RateLimit-Reset")), 0)
        self.assertEqual(statuses, [200] * 4 + [429] * 4)

    def test_header_key_separates_buckets(self):
        ok = [self.client().request("GET", "/hdr", headers=[("X-Api-Key", k)]).status
              for k in ("alice", "bob")]
        self.assertEqual(ok, [200, 200])
        again = self.client().request("GET", "/hdr", headers=[("X-Api-Key", "alice")])
        self.assertEqual(again.status, 429)

    def test_not_limiting_adds_headers(self):
        resp = self.client().request("GET", "/anything")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.header("RateLimit-Limit"), "1000")


class ApiKeys(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.app = cls.own(EchoUpstream("app"))
        gwdir = harness.tmp_dir()
        with open(os.path.join(gwdir, "keys.txt"), "w") as f:
            f.write("# name key\ncarol k-carol-from-file\n")
        routes = [{"name": "api", "match": {"path_prefix": "/"}, "service": "app",
                   "filters": [{"type": "auth_api_key", "keys": {"alice": "k-alice"},
                                "key_file": os.path.join(gwdir, "keys.txt"),
                                "query": "api_key"}]}]
        cls.gw = cls.start_gateway(config({"app": [cls.app.address]}, routes=routes))

    def get(self, target, headers=None):
        return self.client().request("GET", target, headers=headers)

    def test_header_key(self):
        resp = self.get("/x", headers=[("X-Api-Key", "k-alice"), ("X-Api-Key-Name", "root")])
        self.assertEqual(resp.status, 200)
        info = resp.json()
        names = [k.lower() for k, _ in info["headers"]]
        self.assertNotIn("x-api-key", names)  # the key never goes upstream
        self.assertEqual([v for k, v in info["headers"] if k.lower() == "x-api-key-name"],
                         ["alice"])  # the client's own claim is replaced

    def test_key_file_and_query(self):
        resp = self.get("/x?a=1&api_key=k-carol-from-file&b=2")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["target"], "/x?a=1&b=2")
        self.assertEqual(request_header(resp.json(), "X-Api-Key-Name"), "carol")

    def test_refused(self):
        for headers, message in [([], "missing API key"),
                                 ([("X-Api-Key", "k-alicE")], "invalid API key"),
                                 ([("X-Api-Key", "x" * 8000)], "invalid API key")]:
            resp = self.get("/x", headers=headers)
            self.assertEqual(resp.status, 401)
            self.assertEqual(resp.json()["error"], message)
            self.assertIn("ApiKey", resp.header("WWW-Authenticate"))


def basic_hash(password, salt="0123456789abcdef"):
    import hashlib as _h
    return "sha256:%s:%s" % (salt, _h.sha256((salt + password).encode()).hexdigest())


class AuthBasic(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.app = cls.own(EchoUpstream("app"))
        routes = [{"name": "basic", "match": {"path_prefix": "/"}, "service": "app",
                   "filters": [{"type": "auth_basic", "realm": "ops",
                                "users": {"alice": basic_hash("correct horse"),
                                          "bob": basic_hash("pw:with:colons", "s2")}}]}]
        cls.gw = cls.start_gateway(config({"app": [cls.app.address]}, routes=routes))

    def call(self, credentials=None, raw=None, headers=()):
        h = list(headers)
        if credentials is not None:
            raw = base64.b64encode(credentials.encode()).decode()
        if raw is not None:
            h.append(("Authorization", "Basic " + raw))
        return self.client().request("GET", "/x", headers=h)

    def test_good_credentials(self):
        for creds, user in [("alice:correct horse", "alice"), ("bob:pw:with:colons", "bob")]:
            resp = self.call(creds, headers=[("X-Auth-User", "mallory")])
            self.assertEqual(resp.status, 200, creds)
            info = resp.json()
            self.assertEqual([v for k, v in info["headers"] if k.lower() == "x-auth-user"],
                             [user])
            self.assertNotIn("authorization", [k.lower() for k, _ in info["headers"]])

    def test_refused(self):
        cases = [(None, None), ("alice:wrong", None), ("carol:correct horse", None),
                 ("alice", None), (None, "!!notbase64!!"), (None, "")]
        for creds, raw in cases:
            resp = self.call(creds, raw)
            self.assertEqual(resp.status, 401, (creds, raw))
            self.assertEqual(resp.header("WWW-Authenticate"),
                             'Basic realm="ops", charset="UTF-8"')


class FilterReload(GatewayTestCase):
    """A reload rebuilds every chain; rate-limit buckets of a filter that stays in place
    with the same settings survive it."""

    def doc(self, extra_filters):
        routes = [{"name": "r", "match": {"path_prefix": "/"}, "service": "app",
                   "filters": [{"type": "rate_limit", "rate": "1/h", "burst": 2}]
                   + extra_filters}]
        return config({"app": [self.app.address]}, routes=routes)

    def test_reload_rebuilds_chain_and_keeps_buckets(self):
        self.app = self.upstream(EchoUpstream("app"))
        gw = self.gateway(self.doc([]))
        c = self.client(gw.addr)
        self.assertEqual([c.request("GET", "/").status for _ in range(2)], [200, 200])
        mark = len(gw.records)
        tmp = gw.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(harness.toml_dumps(self.doc(
                [{"type": "headers", "response_set": {"X-Reloaded": "yes"}}])))
        os.rename(tmp, gw.config_path)
        gw.send_signal(signal.SIGHUP)
        self.assertIsNotNone(gw.wait_log(lambda r: r.get("msg") == "config applied",
                                         start_index=mark), gw.stderr_tail())
        resp = self.client(gw.addr).request("GET", "/")
        self.assertEqual(resp.status, 429)  # the bucket survived the reload
        # The new headers filter comes after the limiter that answered, so it does not
        # see this reply.
        self.assertIsNone(resp.header("X-Reloaded"))
        # Changed settings make a new bucket; the new filter now runs.
        mark = len(gw.records)
        with open(tmp, "w") as f:
            doc = self.doc([{"type": "headers", "response_set": {"X-Reloaded": "yes"}}])
            doc["routes"][0]["filters"][0]["burst"] = 3
            f.write(harness.toml_dumps(doc))
        os.rename(tmp, gw.config_path)
        gw.send_signal(signal.SIGHUP)
        self.assertIsNotNone(gw.wait_log(lambda r: r.get("msg") == "config applied",
                                         start_index=mark), gw.stderr_tail())
        resp = self.client(gw.addr).request("GET", "/")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.header("X-Reloaded"), "yes")


class FilterConfigErrors(GatewayTestCase):

    BASE = """\
workers = 1
[admin]
listen = ""
[[listeners]]
listen = "127.0.0.1:0"
[[routes]]
name = "r"
service = "s"
filters = [
  FILTER
]
[services.s]
pools.main.endpoints = ["127.0.0.1:9"]
"""

    def check(self, filter_text):
        tmp = harness.tmp_dir()
        path = os.path.join(tmp, "gateway.toml")
        text = self.BASE.replace("FILTER", filter_text)
        with open(path, "w") as f:
            f.write(text)
        out = run_gateway(["--config", path, "--check"])
        return out, "gateway.toml:10:", out.stderr.decode("utf-8", "replace")

    def assertRejected(self, filter_text, *words):
        out, where, stderr = self.check(filter_text)
        self.assertEqual(out.returncode, 1, stderr)
        lines = [l for l in stderr.splitlines() if where in l]
        self.assertTrue(lines, "want %r in:\n%s" % (where, stderr))
        for w in words:
            self.assertTrue(any(w in l for l in lines), "want %r in:\n%s" % (w, stderr))

    def test_valid(self):
        out, _, stderr = self.check('{ type = "request_id" }, { type = "rewrite", prefix = "/a", '
                                    'replacement = "/b" }')
        self.assertEqual(out.returncode, 0, stderr)

    def test_unknown_type_suggests(self):
        self.assertRejected('{ type = "request_ids" }', "unknown filter type", "request_id")

    def test_missing_type(self):
        self.assertRejected('{ header = "X" }', "type")

    def test_unknown_key(self):
        self.assertRejected('{ type = "request_id", headr = "X-Id" }', "headr")

    def test_wrong_types(self):
        self.assertRejected('{ type = "redirect", location = 5 }', "location", "string")
        self.assertRejected('{ type = "direct_response", status = "200" }', "status", "integer")
        self.assertRejected('{ type = "headers", request_set = ["X-A"] }', "request_set")
        self.assertRejected('"request_id"', "table")

    def test_bad_values(self):
        self.assertRejected('{ type = "headers", request_set = { "Bad Name" = "v" } }',
                            "Bad Name")
        self.assertRejected('{ type = "headers", request_set = { "Content-Length" = "1" } }',
                            "Content-Length")
        self.assertRejected('{ type = "headers", request_set = { "X-A" = "${nope}" } }',
                            "unknown variable")
        self.assertRejected('{ type = "headers", request_set = { "X-A" = "a\\r\\nb" } }',
                            "control")
        self.assertRejected('{ type = "rewrite", regex = "(", replacement = "/" }', "regex")
        self.assertRejected('{ type = "rewrite", regex = "^/(a)$", replacement = "/\\\\2" }',
                            "replacement")
        self.assertRejected('{ type = "redirect", location = "/x", status = 304 }', "status")
        self.assertRejected('{ type = "headers" }', "nothing to do")
        self.assertRejected('{ type = "cors", allow_origins = ["app.test"] }', "origin")
        self.assertRejected('{ type = "cors" }', "allow_origins")
        self.assertRejected('{ type = "ip_access", allow = ["10.0.0.0/33"] }', "10.0.0.0/33")
        self.assertRejected('{ type = "body_limit", max = "lots" }', "size")
        self.assertRejected('{ type = "body_limit", max = true }', "size")
        self.assertRejected('{ type = "rate_limit", rate = "100" }', "rate")
        self.assertRejected('{ type = "auth_api_key" }', "no keys")
        self.assertRejected('{ type = "auth_basic", users = { a = "plaintext" } }', "sha256")
        self.assertRejected('{ type = "auth_api_key", key_file = "/nonexistent/k" }', "key_file")
        self.assertRejected('{ type = "rate_limit", rate = "5/s", key = "cookie" }', "key")
        self.assertRejected('{ type = "rate_limit", rate = "5/s", burst = 0 }', "burst")


if __name__ == "__main__":
    harness.main()
