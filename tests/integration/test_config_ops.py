"""Config operations: `include` (errors name the included file; a change to an
included file reloads), GET /config, POST /config/diff and `--check NEW --diff RUNNING`
(what a reload would change and how many connections it would drain), the admin bearer
token, drain without a reconnect storm, and old snapshots not held by idle
connections."""

import json
import os
import signal
import urllib.request

import harness
from harness import EchoUpstream, Gateway, GatewayTestCase, config, run_gateway, toml_dumps


def two_pools(blue, green, active="blue", **kw):
    return config({"app": {"active": active,
                           "pools": {"blue": {"endpoints": [blue.address]},
                                     "green": {"endpoints": [green.address]}}}},
                  admin="127.0.0.1:0", **kw)


def listener_addr(gw, name):
    records = [r for r in gw.records if r.get("msg") == "listening" and r.get("listener") == name]
    return harness.split_hostport(records[-1]["address"])


def check(args):
    """Runs `gateway ARGS` to completion; returns (exit code, stdout, stderr) as text."""
    proc = run_gateway(args)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


class ConfigOps(GatewayTestCase):

    def setUp(self):
        self.blue = self.upstream(EchoUpstream("blue"))
        self.green = self.upstream(EchoUpstream("green"))

    def admin(self, gw, method, path, body=None, token=None):
        data = body if body is not None else (b"" if method in ("POST", "PUT") else None)
        req = urllib.request.Request("http://%s:%d%s" % (gw.admin[0], gw.admin[1], path),
                                     method=method, data=data)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=harness.IO_TIMEOUT) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def replace(self, path, text):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)

    def wait_applied(self, gw, mark):
        rec = gw.wait_log(lambda r: r.get("msg") == "config applied", start_index=mark)
        self.assertIsNotNone(rec, "no reload; stderr:\n" + gw.stderr_tail())

    def who(self, client, path="/who"):
        resp = client.request("GET", path)
        self.assertEqual(resp.status, 200, resp.body)
        return resp.json()["upstream"]

    # --- include -------------------------------------------------------------------

    def include_gateway(self):
        doc = two_pools(self.blue, self.green)
        # Included routes come after the main file's (first match wins): no catch-all here.
        doc["routes"] = [{"name": "main", "match": {"path_prefix": "/main"}, "service": "app"}]
        text = 'include = ["routes.d/*.toml"]\n' + toml_dumps(doc)
        gw = Gateway(config_text=text, name="include")
        self.addCleanup(self._stop_checked, gw)
        os.makedirs(os.path.join(os.path.dirname(gw.config_path), "routes.d"), exist_ok=True)
        gw.start()
        return gw, os.path.join(os.path.dirname(gw.config_path), "routes.d")

    def test_included_routes_load_and_a_new_included_file_reloads(self):
        gw, routes_dir = self.include_gateway()
        c = self.client(gw.addr)
        self.assertEqual(c.request("GET", "/green-only").status, 404)
        mark = len(gw.records)
        # A new file in the included directory: a route to a new single-pool service.
        self.replace(os.path.join(routes_dir, "extra.toml"),
                     '[[routes]]\nname = "extra"\nmatch = { path_prefix = "/green-only" }\n'
                     'service = "greens"\n\n[services.greens.pools.g]\n'
                     'endpoints = ["%s"]\n' % self.green.address)
        self.wait_applied(gw, mark)
        self.assertEqual(self.who(c, "/green-only"), "green")
        self.assertEqual(self.who(c, "/main/x"), "blue")
        status, body = self.admin(gw, "GET", "/config")
        self.assertEqual(status, 200)
        self.assertEqual(len(body["files"]), 2, body["files"])
        self.assertTrue(body["files"][1].endswith("routes.d/extra.toml"))

    def test_error_in_included_file_names_it_and_old_config_serves(self):
        gw, routes_dir = self.include_gateway()
        mark = len(gw.records)
        self.replace(os.path.join(routes_dir, "bad.toml"),
                     '[[routes]]\nname = "bad"\nmatch = { path_prefx = "/x" }\nservice = "app"\n')
        rec = gw.wait_log(lambda r: r.get("msg") == "config reload failed; the running config stays",
                          start_index=mark)
        self.assertIsNotNone(rec, gw.stderr_tail())
        self.assertIn("routes.d/bad.toml:3:", rec["error"])
        self.assertIn("path_prefx", rec["error"])
        self.assertEqual(self.who(self.client(gw.addr), "/main/x"), "blue")
        status, body = self.admin(gw, "GET", "/config")
        self.assertFalse(body["last_reload"]["ok"])
        self.assertIn("bad.toml:3", body["last_reload"]["error"])

    def test_check_refuses_a_setting_set_in_two_files(self):
        d = harness.tmp_dir()
        main = os.path.join(d, "dup-main.toml")
        with open(main, "w") as f:
            f.write('include = ["dup-extra.toml"]\n' + toml_dumps(two_pools(self.blue, self.green)))
        with open(os.path.join(d, "dup-extra.toml"), "w") as f:
            f.write("workers = 2\n")
        code, out, err = check(["--check", main])
        self.assertEqual(code, 1)
        self.assertIn("dup-extra.toml:1:", err)
        self.assertIn('"workers" is already set at %s:' % main, err)

    # --- GET /config, diff ---------------------------------------------------------

    def test_get_config_shows_hash_and_flips(self):
        gw = self.gateway(two_pools(self.blue, self.green))
        status, before = self.admin(gw, "GET", "/config")
        self.assertEqual(status, 200)
        self.assertEqual(len(before["hash"]), 16)
        self.assertEqual(before["config"]["services"]["app"]["active"], "blue")
        self.assertEqual(self.admin(gw, "POST", "/services/app/flip")[0], 200)
        status, after = self.admin(gw, "GET", "/config")
        self.assertEqual(after["config"]["services"]["app"]["active"], "green")
        self.assertEqual(after["hash"], before["hash"])  # the files did not change
        self.assertGreater(after["version"], before["version"])

    def test_diff_shows_changes_and_connections_to_drain(self):
        doc = two_pools(self.blue, self.green)
        doc["listeners"].append({"name": "old", "listen": "127.0.0.1:0"})
        gw = self.gateway(doc)
        held = self.client(listener_addr(gw, "old"))
        self.assertEqual(self.who(held), "blue")
        new = two_pools(self.blue, self.green, active="green")
        status, body = self.admin(gw, "POST", "/config/diff", toml_dumps(new).encode())
        self.assertEqual(status, 200, body)
        changes = {(c["kind"], c["name"], c["change"]) for c in body["diff"]["changes"]}
        self.assertIn(("listener", "old", "removed"), changes)
        self.assertIn(("service", "app", "changed"), changes)
        self.assertEqual(body["diff"]["switched_services"], ["app"])
        self.assertEqual(body["diff"]["drained_listeners"], ["old"])
        self.assertEqual(body["connections_to_drain"], 1)
        # Against the file on disk (unchanged): nothing.
        status, same = self.admin(gw, "POST", "/config/diff")
        self.assertEqual(same["diff"]["changes"], [])
        # An invalid candidate: 422 with file:line errors; nothing else happens.
        status, bad = self.admin(gw, "POST", "/config/diff", b"workers = \"lots\"\n")
        self.assertEqual(status, 422)
        self.assertIn(":1:", bad["errors"][0])
        self.assertEqual(self.who(held), "blue")

    def test_check_diff_cli(self):
        d = harness.tmp_dir()
        running, new = os.path.join(d, "running.toml"), os.path.join(d, "new.toml")
        with open(running, "w") as f:
            f.write(toml_dumps(two_pools(self.blue, self.green)))
        doc = two_pools(self.blue, self.green, active="green")
        doc["limits"]["idle_timeout"] = "5s"
        with open(new, "w") as f:
            f.write(toml_dumps(doc))
        code, out, err = check(["--check", new, "--diff", running])
        self.assertEqual(code, 0, err)
        self.assertIn("~ service app: active: blue -> green", out)
        self.assertIn("~ setting limits: idle_timeout", out)
        self.assertIn("service app sends new requests to another pool", out)
        self.assertIn("no changes", check(["--check", running, "--diff", running])[1])

    # --- admin token ---------------------------------------------------------------

    def test_admin_token(self):
        doc = two_pools(self.blue, self.green)
        doc["admin"]["token"] = "s3cret-token"
        gw = self.gateway(doc)
        self.assertEqual(self.admin(gw, "GET", "/stats")[0], 401)
        self.assertEqual(self.admin(gw, "GET", "/stats", token="wrong-token!")[0], 401)
        self.assertEqual(self.admin(gw, "POST", "/services/app/flip")[0], 401)
        self.assertEqual(self.who(self.client(gw.addr)), "blue")  # the refused flip did nothing
        self.assertEqual(self.admin(gw, "GET", "/stats", token="s3cret-token")[0], 200)
        self.assertEqual(self.admin(gw, "GET", "/health")[0], 200)  # probes need no token
        self.assertEqual(self.admin(gw, "GET", "/ready")[0], 200)

    def test_admin_on_public_address_needs_a_token(self):
        doc = two_pools(self.blue, self.green)
        doc["admin"]["listen"] = "0.0.0.0:0"
        path = os.path.join(harness.tmp_dir(), "public-admin.toml")
        with open(path, "w") as f:
            f.write(toml_dumps(doc))
        code, out, err = check(["--check", path])
        self.assertEqual(code, 1)
        self.assertIn("needs a bearer token", err)
        self.assertRegex(err, r"public-admin\.toml:\d+:")

    # --- drain and snapshots ---------------------------------------------------------

    def test_removed_listener_drains_without_cutting_an_idle_connection(self):
        doc = two_pools(self.blue, self.green, limits={"drain_spread": "0s"})
        doc["listeners"].append({"name": "old", "listen": "127.0.0.1:0"})
        gw = self.gateway(doc)
        idle = self.client(listener_addr(gw, "old"))
        self.assertEqual(self.who(idle), "blue")
        mark = len(gw.records)
        self.replace(gw.config_path, toml_dumps(two_pools(self.blue, self.green, active="green",
                                                           limits={"drain_spread": "0s"})))
        self.wait_applied(gw, mark)
        # The idle connection was not cut under a request that may be on the wire: its
        # next request is answered (on the new config), with Connection: close.
        resp = idle.request("GET", "/after")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["upstream"], "green")
        self.assertEqual(harness.header_get(resp.headers, "connection", "").lower(), "close")
        self.assertTrue(idle.wait_closed()[0])
        status, stats = self.admin(gw, "GET", "/stats")
        self.assertGreaterEqual(stats["drains_started"], 1)

    def test_sigterm_answers_an_idle_connection_with_connection_close(self):
        gw = self.gateway(two_pools(self.blue, self.green,
                                    limits={"drain_spread": "0s", "drain_timeout": "20s"}))
        idle = self.client(gw.addr)
        self.assertEqual(self.who(idle), "blue")
        mark = len(gw.records)
        gw.send_signal(signal.SIGTERM)
        self.assertIsNotNone(gw.wait_log(lambda r: r.get("msg") == "draining", start_index=mark))
        resp = idle.request("GET", "/during-drain")
        self.assertEqual(resp.status, 200)
        self.assertEqual(harness.header_get(resp.headers, "connection", "").lower(), "close")
        self.assertTrue(idle.wait_closed()[0])
        self.assertEqual(gw.wait_exit(), 0)

    def test_idle_connections_do_not_hold_old_snapshots(self):
        gw = self.gateway(two_pools(self.blue, self.green))
        idle = [self.client(gw.addr) for _ in range(3)]
        for c in idle:
            self.assertEqual(self.who(c), "blue")
        for n in range(3):
            mark = len(gw.records)
            self.assertEqual(self.admin(gw, "POST", "/services/app/flip")[0], 200)
            self.wait_applied(gw, mark)
        status, stats = self.admin(gw, "GET", "/stats")
        self.assertEqual(stats["snapshots_retained"], 0, stats)
        for c in idle:
            self.assertEqual(self.who(c), "green")


if __name__ == "__main__":
    import unittest
    unittest.main()
