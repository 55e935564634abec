"""The container image without a Docker engine: scripts/make_rootfs.sh builds the tree
the Dockerfile's final stage ships (the stripped binary and its ldd closure, nothing
else), and the gateway runs inside it under chroot as the image's non-root user (or
`unshare -r -R` when not root), proxying to an upstream on loopback. Reports the sizes."""

import os
import subprocess

import harness
from harness import EchoUpstream, Gateway, GatewayTestCase, config, toml_dumps

NONROOT = 65532
MAX_STRIPPED_BYTES = 10 * 1000 * 1000


class ChrootGateway(Gateway):
    """The gateway binary inside `root`, its config at /etc/gateway/gateway.toml."""

    def __init__(self, root, doc=None, env=None, name="chroot"):
        super().__init__(env=env, name=name)
        self.root = root
        self.in_root_args = []
        if doc is not None:
            with open(os.path.join(root, "etc/gateway/gateway.toml"), "w") as f:
                f.write(toml_dumps(doc))
            self.in_root_args = ["--config", "/etc/gateway/gateway.toml"]

    def command(self):
        if os.geteuid() == 0:
            prefix = ["chroot", "--userspec=%d:%d" % (NONROOT, NONROOT), self.root]
        else:
            prefix = ["unshare", "--map-root-user", "--root=" + self.root]
        return prefix + ["/usr/local/bin/gateway"] + self.in_root_args


class Image(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        if "ASAN_OPTIONS" in os.environ:
            # The sanitizer runtime reads /proc/self/maps, which a scratch image lacks.
            raise harness.unittest.SkipTest("sanitizer build: the image ships a release build")
        cls.root = os.path.join(harness.tmp_dir(), "rootfs")
        out = subprocess.run(["bash", harness.repo_file("scripts/make_rootfs.sh"),
                              harness.gateway_bin(), cls.root],
                             capture_output=True, timeout=120)
        if out.returncode != 0:
            raise AssertionError("make_rootfs.sh failed:\n" + out.stderr.decode())
        last = out.stdout.decode().strip().splitlines()[-1]
        cls.sizes = dict(kv.split("=") for kv in last.split())
        # Files readable by the non-root user (a test temp dir may be 0700).
        for path in (os.path.dirname(cls.root), cls.root):
            os.chmod(path, 0o755)

    def test_sizes_and_contents(self):
        binary = int(self.sizes["binary_bytes"])
        rootfs = int(self.sizes["rootfs_bytes"])
        print("\nimage: stripped binary %d bytes (%.2f MB), whole tree %d bytes (%.2f MB)"
              % (binary, binary / 1e6, rootfs, rootfs / 1e6))
        out = harness.output_dir()
        if out:
            with open(os.path.join(out, "image_sizes.txt"), "w") as f:
                f.write("binary_bytes=%d rootfs_bytes=%d\n" % (binary, rootfs))
        self.assertLess(binary, MAX_STRIPPED_BYTES)
        # minimal: no shell, no package manager, nothing but the binary's own closure
        for absent in ("bin/sh", "usr/bin", "var/lib/dpkg", "sbin"):
            self.assertFalse(os.path.lexists(os.path.join(self.root, absent)), absent)
        self.assertTrue(os.access(os.path.join(self.root, "usr/local/bin/gateway"), os.X_OK))
        with open(os.path.join(self.root, "etc/passwd")) as f:
            self.assertIn("nonroot:x:%d:%d:" % (NONROOT, NONROOT), f.read())

    def _proxies(self, gw, echo):
        self.addCleanup(self._stop_checked, gw)
        gw.start()
        if os.geteuid() == 0:
            with open("/proc/%d/status" % gw.pid) as f:
                uid_line = [l for l in f if l.startswith("Uid:")][0]
            self.assertEqual(uid_line.split()[1:], [str(NONROOT)] * 4, "not the image's user")
        resp = self.client(gw.addr).request("GET", "/inside/the/image")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["target"], "/inside/the/image")
        self.assertEqual(echo.request_count(), 1)

    def test_runs_a_config_file_inside_the_tree(self):
        echo = self.upstream(EchoUpstream("in-image"))
        self._proxies(ChrootGateway(self.root, config({"app": [echo.address]}), name="image-file"),
                      echo)

    def test_runs_from_environment_variables_inside_the_tree(self):
        echo = self.upstream(EchoUpstream("in-image-env"))
        env = {"GATEWAY_LISTEN": "127.0.0.1:0", "GATEWAY_UPSTREAM": echo.address,
               "GATEWAY_WORKERS": "1"}
        self._proxies(ChrootGateway(self.root, env=env, name="image-env"), echo)


if __name__ == "__main__":
    harness.main()
