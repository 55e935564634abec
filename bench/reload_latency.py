#!/usr/bin/env python3
"""Flip and reload latency, and requests/s during a reload storm.

  python3 bench/reload_latency.py [--flips 100] [--edits 100] [--wrk-seconds 5]

Starts the gateway (2 workers, admin API) in front of two echo upstreams (blue, green;
the Python servers of tests/integration/harness.py) and measures:
  1. admin-API flips: the time from the call until every worker serves the new pool
     (`applied_us` in the reply: the control thread waits for every worker's
     acknowledgement) and the wall time of the HTTP call;
  2. file edits that flip `active`: from the rename until the gateway logs
     "config applied" (this includes the 200 ms debounce of file events);
  3. wrk requests/s against a second gateway whose pools are two nginx servers (13-byte
     body), steady and then with an admin-API flip every 100 ms, twice each
     alternating; the ratio is the point (the machine is shared).
Needs a built gateway (bazel build //gateway) or GATEWAY_BIN."""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("GATEWAY_BIN", os.path.join(ROOT, "bazel-bin", "gateway", "gateway"))
import harness  # noqa: E402
from harness import EchoUpstream, Gateway, config, toml_dumps  # noqa: E402


def doc(blue, green, active):
    return config({"app": {"active": active,
                           "pools": {"blue": {"endpoints": [blue.address]},
                                     "green": {"endpoints": [green.address]}}}},
                  workers=2, admin="127.0.0.1:0")


def summary(name, values_ms):
    values_ms = sorted(values_ms)
    print("%-34s n=%-4d median %8.3f ms   p90 %8.3f ms   worst %8.3f ms" % (
        name, len(values_ms), statistics.median(values_ms),
        values_ms[int(0.9 * (len(values_ms) - 1))], values_ms[-1]))


def wrk_rps(url, seconds):
    out = subprocess.run(["wrk", "-t1", "-c16", "-d%ds" % seconds, url],
                         capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return float(m.group(1)) if m else 0.0, (errors.group(1) if errors else "0"), \
        (sock.group(1) if sock else "none")


NGINX_CONF = """
daemon off; worker_processes 1; pid %(dir)s/nginx.pid; error_log %(dir)s/error.log warn;
%(user)s
events { worker_connections 1024; }
http {
  access_log off; client_body_temp_path %(dir)s/b; proxy_temp_path %(dir)s/p;
  fastcgi_temp_path %(dir)s/f; uwsgi_temp_path %(dir)s/u; scgi_temp_path %(dir)s/s;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:%(blue)d; location / { return 200 "blue  world\\n"; } }
  server { listen 127.0.0.1:%(green)d; location / { return 200 "green world\\n"; } }
}
"""


def storm_ratio(seconds):
    work = os.path.join(harness.tmp_dir(), "reload-latency-nginx")
    os.makedirs(work, exist_ok=True)
    blue_port, green_port = harness.free_port(), harness.free_port()
    user = "user %s;" % os.environ.get("USER", "root") if os.getuid() == 0 else ""
    if os.getuid() == 0:
        import grp
        import pwd
        pw = pwd.getpwuid(0)
        user = "user %s %s;" % (pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name)
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF % {"dir": work, "blue": blue_port, "green": green_port, "user": user})
    nginx = subprocess.Popen(["nginx", "-p", work, "-c", os.path.join(work, "nginx.conf"),
                              "-e", os.path.join(work, "error.log")])
    try:
        deadline = time.monotonic() + 10
        while harness._connectable("127.0.0.1:%d" % green_port) is None:
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        d = config({"app": {"active": "blue",
                            "pools": {"blue": {"endpoints": ["127.0.0.1:%d" % blue_port]},
                                      "green": {"endpoints": ["127.0.0.1:%d" % green_port]}}}},
                   workers=2, admin="127.0.0.1:0")
        gw = Gateway(d, name="reload-storm-rps")
        gw.start()
        admin = "http://%s:%d" % gw.admin
        url = "http://%s:%d/" % gw.addr
        try:
            steady, storm = [], []
            for _ in range(2):
                rps, errors, sock = wrk_rps(url, seconds)
                steady.append(rps)
                print("wrk steady    %10.0f req/s (non-2xx %s, socket errors %s)" % (
                    rps, errors, sock))
                stop = threading.Event()
                flips = [0]

                def flipper():
                    while not stop.is_set():
                        req = urllib.request.Request(admin + "/services/app/flip",
                                                     method="POST", data=b"")
                        urllib.request.urlopen(req, timeout=10).read()
                        flips[0] += 1
                        stop.wait(0.1)

                t = threading.Thread(target=flipper, daemon=True)
                t.start()
                rps, errors, sock = wrk_rps(url, seconds)
                stop.set()
                t.join()
                storm.append(rps)
                print("wrk + flips   %10.0f req/s (non-2xx %s, socket errors %s; %d flips)" % (
                    rps, errors, sock, flips[0]))
            print("ratio storm/steady: %.3f" % (sum(storm) / sum(steady)))
        finally:
            gw.stop()
    finally:
        nginx.terminate()
        nginx.wait(10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flips", type=int, default=100)
    ap.add_argument("--edits", type=int, default=100)
    ap.add_argument("--wrk-seconds", type=int, default=5)
    args = ap.parse_args()

    blue, green = EchoUpstream("blue"), EchoUpstream("green")
    gw = Gateway(doc(blue, green, "blue"), name="reload-latency")
    gw.start()
    admin = "http://%s:%d" % gw.admin
    try:
        applied, calls = [], []
        for _ in range(args.flips):
            t0 = time.monotonic()
            req = urllib.request.Request(admin + "/services/app/flip", method="POST", data=b"")
            with urllib.request.urlopen(req, timeout=10) as r:
                reply = json.loads(r.read())
            calls.append((time.monotonic() - t0) * 1000)
            assert reply["all_workers"], reply
            applied.append(reply["applied_us"] / 1000.0)
        summary("API flip: until all workers serve", applied)
        summary("API flip: HTTP call wall time", calls)

        # File edits: start from a state without an API override, then flip by file.
        active = json.loads(urllib.request.urlopen(admin + "/services").read())[
            "services"]["app"]["active"]
        edits = []
        for k in range(args.edits):
            active = "green" if active == "blue" else "blue"
            mark = len(gw.records)
            tmp = gw.config_path + ".tmp"
            with open(tmp, "w") as f:
                f.write(toml_dumps(doc(blue, green, active)))
            t0 = time.monotonic()
            os.rename(tmp, gw.config_path)
            rec = gw.wait_log(lambda r: r.get("msg") == "config applied", start_index=mark)
            assert rec is not None, gw.stderr_tail()
            edits.append((time.monotonic() - t0) * 1000)
        summary("file edit: until 'config applied'", edits)

        if shutil.which("wrk") and shutil.which("nginx"):
            storm_ratio(args.wrk_seconds)
    finally:
        code = gw.stop()
        blue.close()
        green.close()
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
