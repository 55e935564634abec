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
  3. wrk requests/s for a few seconds steady, then with a flip every 100 ms (ratio).
The upstreams are Python, so absolute requests/s are theirs; the ratio is the point.
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

        if shutil.which("wrk"):
            url = "http://%s:%d/" % gw.addr
            steady, e1, s1 = wrk_rps(url, args.wrk_seconds)
            stop = threading.Event()
            flips = [0]

            def storm():
                while not stop.is_set():
                    req = urllib.request.Request(admin + "/services/app/flip", method="POST",
                                                 data=b"")
                    urllib.request.urlopen(req, timeout=10).read()
                    flips[0] += 1
                    stop.wait(0.1)

            t = threading.Thread(target=storm, daemon=True)
            t.start()
            during, e2, s2 = wrk_rps(url, args.wrk_seconds)
            stop.set()
            t.join()
            print("wrk steady    %10.0f req/s (non-2xx %s, socket errors %s)" % (steady, e1, s1))
            print("wrk + flips   %10.0f req/s (non-2xx %s, socket errors %s; %d flips)" % (
                during, e2, s2, flips[0]))
            print("ratio storm/steady: %.3f" % (during / steady if steady else 0))
    finally:
        code = gw.stop()
        blue.close()
        green.close()
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
