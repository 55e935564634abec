"""Command line: --version, --check (valid and invalid files, with file:line), the
shipped configs pass --check, and sidecar quick mode end to end."""

import glob
import os
import shutil
import subprocess

import harness
from harness import IO_TIMEOUT, EchoUpstream, Gateway, GatewayTestCase, run_gateway

VALID = """\
workers = 1

[admin]
listen = ""

[limits]
max_body = "1MiB"
header_read_timeout = "5s"

[[listeners]]
name = "main"
listen = "127.0.0.1:0"

[[routes]]
name = "all"
match = { path_prefix = "/" }
service = "app"

[services.app]
active = "main"
upstream_connect_timeout = "2s"

[services.app.pools.main]
endpoints = ["127.0.0.1:9"]
"""


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def line_of(text, needle):
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in config" % needle)


class Check(GatewayTestCase):

    def setUp(self):
        self.tmp = harness.tmp_dir()

    def check(self, text, name="gateway.toml"):
        path = write(self.tmp, name, text)
        out = run_gateway(["--config", path, "--check"])
        return out, path

    def assertErrorAt(self, out, path, line, word=None):
        stderr = out.stderr.decode("utf-8", "replace")
        self.assertNotEqual(out.returncode, 0, "--check accepted a bad file")
        want = "%s:%d:" % (os.path.basename(path), line)
        matching = [l for l in stderr.splitlines() if want in l]
        self.assertTrue(matching, "want %r in stderr:\n%s" % (want, stderr))
        if word:
            self.assertTrue(any(word in l for l in matching),
                            "want %r on the error line:\n%s" % (word, stderr))

    def test_version(self):
        out = run_gateway(["--version"])
        self.assertEqual(out.returncode, 0, out.stderr)
        text = (out.stdout + out.stderr).decode()
        self.assertRegex(text, r"\d+\.\d+")

    def test_check_valid(self):
        out, _ = self.check(VALID)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertIn("ok", (out.stdout + out.stderr).decode().lower())

    def test_check_minimal_file(self):
        out, _ = self.check('[[listeners]]\nname = "a"\nlisten = "127.0.0.1:0"\n\n'
                            '[[routes]]\nname = "r"\nmatch = { path_prefix = "/" }\n'
                            'service = "s"\n\n[services.s]\n'
                            'pools.main.endpoints = ["127.0.0.1:9"]\n')
        self.assertEqual(out.returncode, 0, out.stderr.decode())

    def test_check_unknown_key_top_level_table(self):
        text = VALID.replace('max_body = "1MiB"', 'max_bodyy = "1MiB"')
        out, path = self.check(text)
        self.assertErrorAt(out, path, line_of(text, "max_bodyy"), "max_bodyy")

    def test_check_unknown_key_in_route_match(self):
        text = VALID.replace('match = { path_prefix = "/" }', 'match = { hoost = "a", path_prefix = "/" }')
        out, path = self.check(text)
        self.assertErrorAt(out, path, line_of(text, "hoost"), "hoost")

    def test_check_unknown_key_in_service(self):
        text = VALID.replace('active = "main"', 'active = "main"\nlb_policy = "random"')
        out, path = self.check(text)
        self.assertErrorAt(out, path, line_of(text, "lb_policy"), "lb_policy")

    def test_check_bad_service_reference(self):
        text = VALID.replace('service = "app"', 'service = "nope"')
        out, path = self.check(text)
        self.assertErrorAt(out, path, line_of(text, 'service = "nope"'), "nope")

    def test_check_bad_active_pool(self):
        text = VALID.replace('active = "main"', 'active = "blue"')
        out, path = self.check(text)
        self.assertErrorAt(out, path, line_of(text, 'active = "blue"'))

    def test_check_bad_duration(self):
        text = VALID.replace('header_read_timeout = "5s"', 'header_read_timeout = "5 parsecs"')
        out, path = self.check(text)
        self.assertErrorAt(out, path, line_of(text, "parsecs"))

    def test_check_bad_listen_address(self):
        text = VALID.replace('listen = "127.0.0.1:0"', 'listen = "127.0.0.1:99999"')
        out, path = self.check(text)
        self.assertErrorAt(out, path, line_of(text, "99999"))

    def test_check_bad_regex(self):
        text = VALID.replace('match = { path_prefix = "/" }', 'match = { path_regex = "/(unclosed" }')
        out, path = self.check(text)
        self.assertErrorAt(out, path, line_of(text, "unclosed"))

    def test_check_reports_every_error(self):
        text = VALID.replace('max_body = "1MiB"', 'max_bodyy = "1MiB"') \
                    .replace('service = "app"', 'service = "nope"')
        out, path = self.check(text)
        self.assertErrorAt(out, path, line_of(text, "max_bodyy"))
        self.assertErrorAt(out, path, line_of(text, 'service = "nope"'))

    def test_check_toml_syntax_error(self):
        text = VALID.replace('name = "all"', 'name = "all')
        out, path = self.check(text)
        self.assertErrorAt(out, path, line_of(text, 'name = "all'))

    def test_check_missing_file(self):
        out = run_gateway(["--config", os.path.join(self.tmp, "missing.toml"), "--check"])
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("missing.toml", out.stderr.decode())

    def test_serving_refuses_invalid_config(self):
        text = VALID.replace('service = "app"', 'service = "nope"')
        path = write(self.tmp, "bad.toml", text)
        out = run_gateway(["--config", path], timeout=IO_TIMEOUT * 3)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("bad.toml:%d:" % line_of(text, 'service = "nope"'), out.stderr.decode())

    def test_unknown_flag(self):
        out = run_gateway(["--no-such-flag"])
        self.assertNotEqual(out.returncode, 0)


class ShippedConfigs(GatewayTestCase):

    def shipped(self):
        conf = harness.repo_file("conf")
        self.assertIsNotNone(conf, "conf/ not found (runfiles or source tree)")
        files = [os.path.join(conf, "gateway.toml")] + \
            sorted(glob.glob(os.path.join(conf, "examples", "*.toml")))
        return conf, files

    def with_test_certs(self, path):
        """Examples with TLS expect certs/ beside them (scripts/make_test_certs.sh makes
        them, and they are never committed): check a copy in a temp dir with fresh certs."""
        with open(path) as f:
            if '"certs/' not in f.read():
                return path
        work = harness.tmp_dir()
        subprocess.run(["bash", harness.repo_file("scripts/make_test_certs.sh"),
                        os.path.join(work, "certs")], check=True, capture_output=True)
        shutil.copy(path, work)
        return os.path.join(work, os.path.basename(path))

    def test_shipped_configs_pass_check(self):
        conf, files = self.shipped()
        self.assertTrue(os.path.exists(os.path.join(conf, "gateway.toml")))
        names = {os.path.basename(f) for f in files}
        self.assertIn("sidecar.toml", names)
        self.assertIn("blue-green.toml", names)
        self.assertIn("tls.toml", names)
        self.assertIn("front-door.toml", names)
        for path in files:
            with self.subTest(config=os.path.relpath(path, conf)):
                path = self.with_test_certs(path)
                out = run_gateway(["--config", path, "--check"], cwd=conf)
                self.assertEqual(out.returncode, 0,
                                 "%s: %s" % (path, out.stderr.decode("utf-8", "replace")))


class QuickMode(GatewayTestCase):

    def test_quick_mode_end_to_end(self):
        echo = self.upstream(EchoUpstream("quick"))
        gw = Gateway(args=["--listen", "127.0.0.1:0", "--upstream", echo.address,
                           "--workers", "1"], name="quick")
        self.addCleanup(self._stop_checked, gw)
        gw.start()
        out = subprocess.run(["curl", "-sS", "--max-time", str(int(IO_TIMEOUT)),
                              "-H", "X-Quick: yes", gw.url("/quick/path")],
                             capture_output=True, timeout=IO_TIMEOUT * 2)
        self.assertEqual(out.returncode, 0, out.stderr)
        info = harness.json.loads(out.stdout)
        self.assertEqual(info["target"], "/quick/path")
        self.assertEqual(harness.header_get(info["headers"], "X-Quick"), "yes")

    def test_quick_mode_two_upstreams(self):
        a = self.upstream(EchoUpstream("a"))
        b = self.upstream(EchoUpstream("b"))
        gw = Gateway(args=["--listen", "127.0.0.1:0", "--upstream", a.address,
                           "--upstream", b.address, "--workers", "1"], name="quick2")
        self.addCleanup(self._stop_checked, gw)
        gw.start()
        c = self.client(gw.addr)
        seen = {c.request("GET", "/q%d" % i).json()["upstream"] for i in range(6)}
        self.assertEqual(seen, {"a", "b"})

    def test_quick_mode_check(self):
        out = run_gateway(["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--check"])
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_quick_mode_bad_upstream(self):
        out = run_gateway(["--listen", "127.0.0.1:0", "--upstream", "nocolon", "--check"])
        self.assertNotEqual(out.returncode, 0)


class Environment(GatewayTestCase):
    """Sidecar settings from GATEWAY_* variables, on top of a file or with no file."""

    def test_environment_only_proxy(self):
        echo = self.upstream(EchoUpstream("env"))
        gw = Gateway(env={"GATEWAY_LISTEN": "127.0.0.1:0", "GATEWAY_UPSTREAM": echo.address,
                          "GATEWAY_WORKERS": "1", "GATEWAY_ADMIN": "127.0.0.1:0"},
                     name="env-only")
        self.addCleanup(self._stop_checked, gw)
        gw.start()
        self.assertIsNotNone(gw.admin, "GATEWAY_ADMIN did not open the admin listener")
        self.assertEqual(set(gw.listeners), {"sidecar"})
        resp = self.client(gw.addr).request("GET", "/from/env")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["target"], "/from/env")

    def test_environment_overrides_the_file(self):
        echo = self.upstream(EchoUpstream("over"))
        text = VALID.replace('listen = ""', 'listen = "127.0.0.1:9"')  # admin: replaced below
        gw = Gateway(config_text=text, name="env-over",
                     env={"GATEWAY_UPSTREAM": echo.address, "GATEWAY_ADMIN": "",
                          "GATEWAY_LISTEN": "127.0.0.1:0"})
        self.addCleanup(self._stop_checked, gw)
        gw.start()
        self.assertIsNone(gw.admin, "GATEWAY_ADMIN=\"\" should disable the admin listener")
        self.assertEqual(set(gw.listeners), {"main"})
        self.assertEqual(self.client(gw.addr).request("GET", "/x").json()["upstream"], "over")

    def test_config_file_from_environment_and_flags_win(self):
        path = write(harness.tmp_dir(), "gw.toml", VALID)
        out = run_gateway(["--check", "--workers", "2"],
                          env={"GATEWAY_CONFIG": path, "GATEWAY_WORKERS": "many"})
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"gw.toml is ok", out.stdout)

    def test_errors_name_the_variable(self):
        path = write(harness.tmp_dir(), "gw.toml", VALID)
        out = run_gateway(["--config", path, "--check"],
                          env={"GATEWAY_LISTEN": "nowhere", "GATEWAY_SHUTDOWN_DELAY": "5"})
        self.assertEqual(out.returncode, 1)
        err = out.stderr.decode()
        self.assertRegex(err, r"(?m)^GATEWAY_LISTEN: \"listen\" must be a numeric IP:port")
        self.assertRegex(err, r"(?m)^GATEWAY_SHUTDOWN_DELAY: ")

    def test_listen_without_upstream_and_no_file(self):
        out = run_gateway(["--check"], env={"GATEWAY_LISTEN": "127.0.0.1:0"})
        self.assertEqual(out.returncode, 2)
        self.assertIn(b"GATEWAY_UPSTREAM", out.stderr)


if __name__ == "__main__":
    harness.main()
