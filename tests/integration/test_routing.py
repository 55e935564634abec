"""Router: file order, first match wins; host exact and wildcard; path exact, prefix
and regex; methods; header presence and value; prefix rewrite; no route -> 404."""

import harness
from harness import EchoUpstream, GatewayTestCase, config

NAMES = ["api", "wild", "exact", "regex", "write", "canary", "present", "strip", "replace",
         "first", "second", "keep"]

ROUTES = [
    {"name": "api", "match": {"host": "api.example.com", "path_prefix": "/v1/"},
     "service": "api"},
    {"name": "wild", "match": {"host": "*.example.com"}, "service": "wild"},
    {"name": "exact", "match": {"path": "/exact"}, "service": "exact"},
    {"name": "regex", "match": {"path_regex": "/items/[0-9]+"}, "service": "regex"},
    {"name": "write", "match": {"path_prefix": "/write", "methods": ["POST", "PUT"]},
     "service": "write"},
    {"name": "canary", "match": {"path_prefix": "/hdr", "headers": {"X-Canary": "1"}},
     "service": "canary"},
    {"name": "present", "match": {"path_prefix": "/hdr", "headers": {"X-Present": True}},
     "service": "present"},
    {"name": "strip", "match": {"path_prefix": "/strip/"}, "prefix_rewrite": "/",
     "service": "strip"},
    {"name": "replace", "match": {"path_prefix": "/old/"}, "prefix_rewrite": "/new/",
     "service": "replace"},
    {"name": "first", "match": {"path_prefix": "/order"}, "service": "first"},
    {"name": "second", "match": {"path_prefix": "/order"}, "service": "second"},
    {"name": "keep", "match": {"path_prefix": "/keep/"}, "service": "keep"},
]


class Routing(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.ups = {n: cls.own(EchoUpstream(n)) for n in NAMES}
        services = {n: [u.address] for n, u in cls.ups.items()}
        cls.gw = cls.start_gateway(config(services, routes=ROUTES))

    def get(self, target, method="GET", host="plain.test", headers=None, body=b""):
        c = self.client()
        resp = c.request(method, target, headers=headers, host=host, body=body)
        if resp.status == 200:
            info = resp.json()
            return resp.status, info["upstream"], info["target"]
        return resp.status, None, None

    def assertRoute(self, expected, target, **kw):
        status, upstream, _ = self.get(target, **kw)
        self.assertEqual((status, upstream), (200, expected), "%s %r" % (target, kw))

    def assertNoRoute(self, target, **kw):
        status, upstream, _ = self.get(target, **kw)
        self.assertEqual(status, 404, "%s %r went to %s" % (target, kw, upstream))

    def test_host_exact_and_prefix(self):
        self.assertRoute("api", "/v1/users", host="api.example.com")
        self.assertRoute("api", "/v1/users", host="API.Example.COM")
        self.assertRoute("api", "/v1/users", host="api.example.com:8080")

    def test_host_exact_with_other_path_falls_through(self):
        # /v2 does not match "api", but api.example.com matches *.example.com
        self.assertRoute("wild", "/v2/users", host="api.example.com")

    def test_host_wildcard(self):
        self.assertRoute("wild", "/anything", host="www.example.com")
        self.assertRoute("wild", "/anything", host="a.b.example.com")

    def test_host_wildcard_excludes_apex_and_lookalikes(self):
        self.assertNoRoute("/nothing", host="example.com")
        self.assertNoRoute("/nothing", host="badexample.com")
        self.assertNoRoute("/nothing", host="example.com.evil.test")

    def test_path_exact(self):
        self.assertRoute("exact", "/exact")
        self.assertRoute("exact", "/exact?query=1")
        self.assertNoRoute("/exact/more")
        self.assertNoRoute("/exactly")

    def test_path_regex_full_match(self):
        self.assertRoute("regex", "/items/42")
        self.assertNoRoute("/items/42x")
        self.assertNoRoute("/prefix/items/42")
        self.assertNoRoute("/items/")

    def test_methods(self):
        self.assertRoute("write", "/write/x", method="POST", body=b"1")
        self.assertRoute("write", "/write/x", method="PUT", body=b"1")
        self.assertNoRoute("/write/x", method="GET")
        self.assertNoRoute("/write/x", method="DELETE")

    def test_header_value(self):
        self.assertRoute("canary", "/hdr", headers=[("X-Canary", "1")])
        self.assertRoute("canary", "/hdr", headers=[("x-canary", "1")])
        self.assertNoRoute("/hdr", headers=[("X-Canary", "2")])

    def test_header_presence(self):
        self.assertRoute("present", "/hdr", headers=[("X-Present", "anything")])
        self.assertRoute("present", "/hdr", headers=[("X-Canary", "0"), ("X-Present", "")])
        self.assertNoRoute("/hdr")

    def test_first_match_wins(self):
        self.assertRoute("first", "/order")
        self.assertRoute("first", "/order/deep")
        self.assertEqual(self.ups["second"].request_count(), 0)

    def test_prefix_strip(self):
        status, upstream, target = self.get("/strip/a/b?c=d")
        self.assertEqual((status, upstream, target), (200, "strip", "/a/b?c=d"))

    def test_prefix_replace(self):
        status, upstream, target = self.get("/old/thing?x=1")
        self.assertEqual((status, upstream, target), (200, "replace", "/new/thing?x=1"))

    def test_no_rewrite_keeps_path(self):
        status, upstream, target = self.get("/keep/a%20b?q=%2F")
        self.assertEqual((status, upstream, target), (200, "keep", "/keep/a%20b?q=%2F"))

    def test_no_route_404(self):
        c = self.client()
        resp = c.request("GET", "/no/such/route")
        self.assertEqual(resp.status, 404)
        self.assertLessEqual(len(resp.body), 1024)
        # the connection stays usable after a local 404
        if (resp.header("Connection") or "").lower() != "close":
            self.assertEqual(c.request("GET", "/exact").status, 200)

    def test_absolute_form_host_used_for_routing(self):
        c = self.client()
        c.send(b"GET http://api.example.com/v1/abs HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
        resp = c.read_response()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["upstream"], "api")


if __name__ == "__main__":
    harness.main()
