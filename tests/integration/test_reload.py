"""Hot reload: editing the TOML file (atomic rename, as editors do), SIGHUP and
POST /config/reload publish a new config to every worker; a bad file changes
nothing; a blue-green flip moves new requests at once while a request in flight
finishes where it started, and keep-alive client connections stay open."""

import json
import os
import signal
import urllib.request

import harness
from harness import EchoUpstream, GatewayTestCase, RawClient, config, toml_dumps


def blue_green_doc(blue, green, active, workers=2, extra_listener=None, admin="127.0.0.1:0"):
    services = {"app": {"active": active,
                        "pools": {"blue": {"endpoints": [blue.address]},
                                  "green": {"endpoints": [green.address]}}}}
    listeners = [{"name": "main", "listen": "127.0.0.1:0"}]
    if extra_listener:
        listeners.append(extra_listener)
    return config(services, listeners=listeners, workers=workers, admin=admin)


class Reload(GatewayTestCase):

    def setUp(self):
        self.blue = self.upstream(EchoUpstream("blue"))
        self.green = self.upstream(EchoUpstream("green"))

    def write_config(self, gw, doc=None, text=None):
        """Replaces the file the way editors do: write a temp file, rename over."""
        tmp = gw.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text if text is not None else toml_dumps(doc))
        os.rename(tmp, gw.config_path)

    def wait_reload(self, gw, start, ok=True):
        msg = "config applied" if ok else "config reload failed; the running config stays"
        record = gw.wait_log(lambda r: r.get("msg") == msg, start_index=start)
        self.assertIsNotNone(record, "no %r log line; stderr:\n%s" % (msg, gw.stderr_tail()))
        return record

    def upstream_of(self, gw, client=None):
        c = client or self.client(gw.addr)
        resp = c.request("GET", "/who")
        self.assertEqual(resp.status, 200)
        return resp.json()["upstream"]

    def admin(self, gw, method, path, body=None):
        data = body if body is not None else (b"" if method in ("POST", "PUT") else None)
        req = urllib.request.Request("http://%s:%d%s" % (gw.admin[0], gw.admin[1], path),
                                     method=method, data=data)
        try:
            with urllib.request.urlopen(req, timeout=harness.IO_TIMEOUT) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def test_file_edit_flips_blue_to_green_and_keeps_connections(self):
        gw = self.gateway(blue_green_doc(self.blue, self.green, "blue"))
        kept = self.client(gw.addr)
        self.assertEqual(self.upstream_of(gw, kept), "blue")
        port_before = gw.addr
        mark = len(gw.records)
        self.write_config(gw, blue_green_doc(self.blue, self.green, "green"))
        self.wait_reload(gw, mark)
        # The same keep-alive connection now reaches green: the flip dropped nothing.
        self.assertEqual(self.upstream_of(gw, kept), "green")
        # Every worker has the new config: many new connections all land on green.
        for _ in range(20):
            self.assertEqual(self.upstream_of(gw), "green")
        # The unchanged listener kept its socket and port.
        listening = [r for r in gw.records[mark:]
                     if r.get("msg") == "listening" and r.get("listener") == "main"]
        self.assertEqual(harness._connectable(listening[-1]["address"]), port_before)

    def test_bad_edit_is_refused_and_old_config_keeps_serving(self):
        gw = self.gateway(blue_green_doc(self.blue, self.green, "blue"))
        mark = len(gw.records)
        text = toml_dumps(blue_green_doc(self.blue, self.green, "purple"))
        self.write_config(gw, text=text)
        record = self.wait_reload(gw, mark, ok=False)
        # file:line: reason, pointing at the `active` line.
        line = next(i + 1 for i, l in enumerate(text.splitlines()) if l.startswith("active"))
        self.assertIn("%s:%d:" % (gw.config_path, line), record["error"])
        self.assertIn("purple", record["error"])
        self.assertEqual(self.upstream_of(gw), "blue")
        status, stats = self.admin(gw, "GET", "/stats")
        self.assertEqual(status, 200)
        self.assertEqual(stats["config_reloads_failed"], 1)
        self.assertFalse(stats["last_reload_ok"])
        self.assertIn("purple", stats["last_reload_error"])
        # A syntax error is refused the same way.
        mark = len(gw.records)
        self.write_config(gw, text=text.replace("[admin]", "[admin"))
        self.wait_reload(gw, mark, ok=False)
        self.assertEqual(self.upstream_of(gw), "blue")

    def test_sighup_and_admin_reload(self):
        gw = self.gateway(blue_green_doc(self.blue, self.green, "blue"))
        # SIGHUP reloads at once (the file watcher would wait for its debounce, then
        # see that the running config already has this text, and do nothing).
        mark = len(gw.records)
        self.write_config(gw, blue_green_doc(self.blue, self.green, "green"))
        gw.send_signal(signal.SIGHUP)
        self.wait_reload(gw, mark)
        reloads = [r for r in gw.records[mark:] if r.get("msg") == "config reloaded"]
        self.assertEqual([r.get("trigger") for r in reloads], ["SIGHUP"])
        self.assertEqual(self.upstream_of(gw), "green")
        status, body = self.admin(gw, "POST", "/config/reload")
        self.assertEqual((status, body["ok"]), (200, True))
        status, _ = self.admin(gw, "GET", "/config/reload")
        self.assertEqual(status, 405)

    def test_in_flight_request_finishes_on_the_old_pool(self):
        gw = self.gateway(blue_green_doc(self.blue, self.green, "blue"))
        slow = self.client(gw.addr)
        slow.send(harness.build_request("GET", "/slow", headers=[("X-Echo-Hold", "1")]))
        self.assertTrue(self.blue.held.wait(harness.IO_TIMEOUT))
        mark = len(gw.records)
        self.write_config(gw, blue_green_doc(self.blue, self.green, "green"))
        self.wait_reload(gw, mark)
        self.assertEqual(self.upstream_of(gw), "green")
        self.blue.release()
        resp = slow.read_response()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["upstream"], "blue")

    def test_kubernetes_style_symlink_swap_is_noticed(self):
        # A ConfigMap volume: gateway.toml -> ..data/gateway.toml, ..data -> a timestamped
        # directory; an update writes a new directory and swaps ..data atomically.
        gw = self.gateway(blue_green_doc(self.blue, self.green, "blue"), start=False)
        base = os.path.dirname(gw.config_path)
        os.makedirs(os.path.join(base, "v1"))
        os.rename(gw.config_path, os.path.join(base, "v1", "gateway.toml"))
        os.symlink("v1", os.path.join(base, "..data"))
        os.symlink(os.path.join("..data", "gateway.toml"), gw.config_path)
        gw.start()
        self.assertEqual(self.upstream_of(gw), "blue")
        os.makedirs(os.path.join(base, "v2"))
        with open(os.path.join(base, "v2", "gateway.toml"), "w") as f:
            f.write(toml_dumps(blue_green_doc(self.blue, self.green, "green")))
        mark = len(gw.records)
        os.symlink("v2", os.path.join(base, "..data_tmp"))
        os.rename(os.path.join(base, "..data_tmp"), os.path.join(base, "..data"))
        self.wait_reload(gw, mark)
        self.assertEqual(self.upstream_of(gw), "green")
        status, stats = self.admin(gw, "GET", "/stats")
        self.assertEqual((status, stats["last_reload_ok"]), (200, True))
        self.assertTrue(stats["last_reload_attempt"].endswith("Z"))

    def test_websocket_tunnel_survives_reloads_and_flips(self):
        ws = self.upstream(harness.RawUpstream(harness.upgrade_echo_handler, "ws"))
        services = lambda active: {"app": {"active": active, "pools": {
            "blue": {"endpoints": [ws.address]}, "green": {"endpoints": [self.green.address]}}}}
        doc = lambda active: config(services(active), workers=2, admin="127.0.0.1:0")
        gw = self.gateway(doc("blue"))
        c = self.client(gw.addr)
        c.send(harness.build_request("GET", "/ws", headers=[
            ("Connection", "Upgrade"), ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]))
        self.assertEqual(c.read_response().status, 101)
        for i, active in enumerate(["green", "blue", "green"]):
            mark = len(gw.records)
            self.write_config(gw, doc(active))
            self.wait_reload(gw, mark)
            msg = b"message %d after flip to %s" % (i, active.encode())
            c.send(msg)
            got = b""
            while len(got) < len(msg):
                got += c.r.read_some()
            self.assertEqual(got, msg.upper())
        # New requests follow the flips meanwhile.
        self.assertEqual(self.upstream_of(gw), "green")

    def test_admin_api_flip_is_persisted_until_the_file_changes(self):
        gw = self.gateway(blue_green_doc(self.blue, self.green, "blue"))
        kept = self.client(gw.addr)
        self.assertEqual(self.upstream_of(gw, kept), "blue")
        mark = len(gw.records)
        status, body = self.admin(gw, "POST", "/services/app/flip")
        self.assertEqual((status, body["ok"], body["previous"], body["active"]),
                         (200, True, "blue", "green"))
        self.wait_reload(gw, mark)
        self.assertEqual(self.upstream_of(gw, kept), "green")
        state = gw.config_path + ".state"
        self.assertTrue(os.path.exists(state))
        status, services = self.admin(gw, "GET", "/services")
        self.assertEqual(services["services"]["app"]["active"], "green")
        self.assertTrue(services["services"]["app"]["flipped_by_api"])
        # Errors: unknown pool, unknown service, wrong method.
        status, body = self.admin(gw, "PUT", "/services/app/active", b"purple")
        self.assertEqual((status, body["ok"]), (404, False))
        self.assertIn("purple", body["error"])
        status, _ = self.admin(gw, "POST", "/services/nope/flip")
        self.assertEqual(status, 404)
        status, _ = self.admin(gw, "GET", "/services/app/flip")
        self.assertEqual(status, 405)

        # A restart keeps the flip.
        self.assertEqual(gw.stop(), 0)
        again = self.gateway(None, start=False)
        again.config_path = gw.config_path
        again.start()
        self.assertEqual(self.upstream_of(again), "green")
        self.assertIsNotNone(again.wait_log(
            lambda r: r.get("msg") == "active pool set by an earlier admin API flip"))

        # PUT back to the file's pool clears the state file.
        mark = len(again.records)
        status, body = self.admin(again, "PUT", "/services/app/active?pool=blue")
        self.assertEqual((status, body["active"]), (200, "blue"))
        self.wait_reload(again, mark)
        self.assertEqual(self.upstream_of(again), "blue")
        self.assertFalse(os.path.exists(state))

        # Flip again, then edit `active` in the file: the file wins, the state goes.
        mark = len(again.records)
        self.admin(again, "POST", "/services/app/flip")
        self.wait_reload(again, mark)
        self.assertEqual(self.upstream_of(again), "green")
        mark = len(again.records)
        self.write_config(again, blue_green_doc(self.blue, self.green, "green"))
        self.wait_reload(again, mark)
        self.assertIsNotNone(again.wait_log(
            lambda r: r.get("msg", "").startswith("the config file changed the active pool"),
            start_index=mark))
        self.assertFalse(os.path.exists(state))
        self.assertEqual(self.upstream_of(again), "green")

    def test_listeners_added_and_removed(self):
        gw = self.gateway(blue_green_doc(self.blue, self.green, "blue",
                                         extra_listener={"name": "old", "listen": "127.0.0.1:0"}))
        old_addr = gw.listeners["old"]
        self.assertEqual(self.upstream_of(gw, self.client(old_addr)), "blue")
        mark = len(gw.records)
        self.write_config(gw, blue_green_doc(self.blue, self.green, "blue",
                                             extra_listener={"name": "new",
                                                             "listen": "127.0.0.1:0"}))
        self.wait_reload(gw, mark)
        new = [r for r in gw.records[mark:]
               if r.get("msg") == "listening" and r.get("listener") == "new"]
        self.assertTrue(new)
        new_addr = harness._connectable(new[-1]["address"])
        self.assertEqual(self.upstream_of(gw, self.client(new_addr)), "blue")
        # The removed listener no longer accepts.
        with self.assertRaises(OSError):
            RawClient(old_addr, timeout=harness.IO_TIMEOUT).request("GET", "/")


if __name__ == "__main__":
    import unittest
    unittest.main()
