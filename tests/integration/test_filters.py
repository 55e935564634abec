"""Filter chain through the real binary: request_id, headers, rewrite, redirect,
direct_response; the chain for all routes before a route's own; the response phase in
reverse order; local replies carrying the request id; config errors with file:line."""

import os
import re

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


if __name__ == "__main__":
    harness.main()
