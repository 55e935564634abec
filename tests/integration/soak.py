#!/usr/bin/env python3
"""A bounded fault soak of the real gateway (issue 8).

The gateway (2 workers, admin API on) runs in front of Python upstreams on loopback
while a pool of client threads keeps steady keep-alive load on it, and a driver, for
the whole duration:
  * kills an upstream (listener and connections closed with RST) and restarts it on
    the same port, over and over (one in each blue-green pool, one in the chaos pool);
  * cycles two "moody" upstreams of the chaos service through good -> hang (reads
    the request, never answers) -> reset (RST after the request) -> garbage (bytes
    that are not HTTP) -> extra (a correct answer followed by an unsolicited second
    response on the same connection) -> good;
  * reloads the config: rewrites the file (SIGHUP) with a changed response header,
    and POSTs /config/reload;
  * flips the blue-green service through the admin API and through the file.

Every request carries a unique id in its path and in a header; a good upstream
answers with a JSON picture of what it received (id, path, body length and CRC-32).
A client request passes if it gets a 200 with exactly its own id, path and body
CRC, or any 5xx. Anything else is a violation: a response with another request's id,
another status, a connection closed or reset without a response, or no answer
within the response timeout plus slack (a hang).

Afterwards, with the clients gone and every upstream good again: the gateway must
still answer correctly, its open fds must come back to the baseline (upstream idle
connections time out after 1 s in this config) and its RSS to within 16 MiB of the
baseline, and SIGTERM must stop it with exit code 0 and no sanitizer report.

  python3 tests/integration/soak.py --gateway bazel-bin/gateway/gateway --duration 300
Prints a summary; exits 1 on any violation. tests/integration/test_soak.py runs a
20-second version inside the test suite.
"""

import argparse
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import toml_dumps  # noqa: E402

RESPONSE_TIMEOUT = 2.0           # upstream_response_timeout in the config
CONNECT_TIMEOUT = 1.0
CLIENT_SLACK = 8.0 * harness.SCALE  # a client waits this long beyond the timeouts
MODES = ("good", "hang", "reset", "garbage", "extra")


def _linger_rst(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


class SoakUpstream:
    """A threaded HTTP/1.1 upstream on a fixed loopback port that can be killed
    (everything closed with RST) and restarted, and switched between modes."""

    def __init__(self, name, port=0):
        self.name = name
        self.mode = "good"
        self.lock = threading.Lock()
        self.sock = None
        self.conns = set()
        self.served = 0
        self.generation = 0
        self.port = port
        self.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        deadline = time.monotonic() + 10
        while True:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.port))
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        s.listen(256)
        self.port = s.getsockname()[1]
        with self.lock:
            self.sock = s
            self.generation += 1
            gen = self.generation
        threading.Thread(target=self._accept, args=(s, gen), daemon=True).start()

    def kill(self):
        with self.lock:
            s, self.sock = self.sock, None
            conns, self.conns = list(self.conns), set()
            self.generation += 1
        if s is not None:
            harness.close_quietly(s)  # its shutdown() wakes the thread blocked in accept()
        for c in conns:
            _linger_rst(c)
            harness.close_quietly(c)

    def _accept(self, s, gen):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            with self.lock:
                if gen != self.generation:
                    _linger_rst(c)
                    c.close()
                    return
                self.conns.add(c)
            c.settimeout(30)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        r = harness.BufferedSocket(c)
        try:
            while True:
                try:
                    req = harness.read_request(r)
                except (EOFError, ValueError):
                    return
                if req is None:
                    return
                mode = self.mode
                if mode == "hang":
                    # Never answer; wait until the gateway gives up and closes.
                    try:
                        while c.recv(65536):
                            pass
                    except OSError:
                        pass
                    return
                if mode == "reset":
                    _linger_rst(c)
                    return
                if mode == "garbage":
                    c.sendall(b"\x16\x03\x01 this is not HTTP at all \x00\xff\r\n\r\n")
                    return
                rid = harness.header_get(req["headers"], "X-Soak-Id", "")
                body = json.dumps({"id": rid, "path": req["target"], "len": req["body_len"],
                                   "crc": zlib.crc32((req["body"] or "").encode("latin-1")),
                                   "up": self.name}).encode()
                head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"X-Soak-Id: %s\r\nContent-Length: %d\r\n\r\n" % (rid.encode(), len(body)))
                out = head + body
                if mode == "extra":
                    # An unsolicited second response: must never reach another client.
                    bogus = json.dumps({"id": "bogus", "path": "/bogus", "len": 0, "crc": 0,
                                        "up": self.name}).encode()
                    out += (b"HTTP/1.1 200 OK\r\nX-Soak-Id: bogus\r\nContent-Length: %d\r\n\r\n"
                            % len(bogus)) + bogus
                c.sendall(out)
                with self.lock:
                    self.served += 1
        except OSError:
            return
        finally:
            with self.lock:
                self.conns.discard(c)
            try:
                c.close()
            except OSError:
                pass


def gateway_doc(ups, active, reload_gen):
    """The soak's config. `reload_gen` changes a response header, so that every
    reload really changes the config."""
    app = {
        "active": active,
        "upstream_connect_timeout": "%ds" % CONNECT_TIMEOUT,
        "upstream_response_timeout": "%ds" % RESPONSE_TIMEOUT,
        "idle_connection_timeout": "1s",
        "pools": {"blue": {"endpoints": [ups["blue1"].address, ups["blue_kill"].address]},
                  "green": {"endpoints": [ups["green1"].address, ups["green_kill"].address]}},
    }
    chaos = {
        "upstream_connect_timeout": "%ds" % CONNECT_TIMEOUT,
        "upstream_response_timeout": "%ds" % RESPONSE_TIMEOUT,
        "idle_connection_timeout": "1s",
        "retry": {"attempts": 2, "on": ["connect_failure", "reset", "503"]},
        "pools": {"main": {"endpoints": [ups["moody1"].address, ups["moody2"].address,
                                         ups["chaos_kill"].address]}},
    }
    routes = [
        {"name": "chaos", "match": {"path_prefix": "/chaos/"}, "service": "chaos",
         "filters": [{"type": "headers",
                      "response_set": {"x-soak-config": "gen-%d" % reload_gen}}]},
        {"name": "app", "match": {"path_prefix": "/"}, "service": "app"},
    ]
    return harness.config({"app": app, "chaos": chaos}, routes=routes, workers=2,
                          admin="127.0.0.1:0",
                          limits={"drain_timeout": "5s", "idle_timeout": "60s"})


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.fail_5xx = {}
        self.violations = []
        self.violation_count = 0
        self.by_path = {"app": 0, "chaos": 0}
        self.latency_max = 0.0

    def violation(self, text):
        with self.lock:
            self.violation_count += 1
            if len(self.violations) < 20:
                self.violations.append(text)


def client_loop(gw_addr, stats, stop, seed, worker_id):
    rnd = random.Random(seed)
    c = None
    n = 0
    timeout = RESPONSE_TIMEOUT * 3 + CONNECT_TIMEOUT * 3 + CLIENT_SLACK
    while not stop.is_set():
        if c is None:
            try:
                c = harness.RawClient(gw_addr, timeout=timeout)
            except OSError as e:
                stats.violation("connect to the gateway failed: %r" % e)
                time.sleep(0.1)
                continue
        n += 1
        rid = "c%d-%d-%08x" % (worker_id, n, rnd.getrandbits(32))
        kind = "chaos" if rnd.random() < 0.3 else "app"
        path = "/%s/%s" % (kind, rid) if kind == "chaos" else "/app/%s" % rid
        if rnd.random() < 0.25:
            body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 3000)))
            method = "POST"
        else:
            body, method = b"", "GET"
        started = time.monotonic()
        try:
            c.send(harness.build_request(method, path, [("X-Soak-Id", rid)], body))
            resp = c.read_response()
        except socket.timeout:
            stats.violation("%s %s: no response within %.0f s (hang)" % (method, path, timeout))
            c.close()
            c = None
            continue
        except (harness.Incomplete, EOFError, ConnectionError, ValueError) as e:
            stats.violation("%s %s: connection closed or reset without a complete "
                            "response: %r" % (method, path, e))
            c.close()
            c = None
            continue
        elapsed = time.monotonic() - started
        with stats.lock:
            stats.latency_max = max(stats.latency_max, elapsed)
        if resp.status >= 500:
            with stats.lock:
                stats.fail_5xx[resp.status] = stats.fail_5xx.get(resp.status, 0) + 1
        elif resp.status == 200:
            try:
                got = json.loads(resp.body)
            except ValueError:
                got = None
            want = {"id": rid, "path": path, "len": len(body), "crc": zlib.crc32(body)}
            if (not isinstance(got, dict) or any(got.get(k) != v for k, v in want.items())
                    or resp.header("X-Soak-Id") != rid):
                stats.violation("%s %s: 200 with another request's answer: %r"
                                % (method, path, resp.body[:200]))
            else:
                with stats.lock:
                    stats.ok += 1
                    stats.by_path[kind] += 1
        else:
            stats.violation("%s %s: status %d (want 200 or 5xx): %r"
                            % (method, path, resp.status, resp.body[:200]))
        if (resp.header("Connection") or "").lower() == "close":
            c.close()
            c = None
    if c is not None:
        c.close()


def admin_call(gw, method, path, body=None):
    data = body if body is not None else (b"" if method in ("POST", "PUT") else None)
    req = urllib.request.Request("http://%s:%d%s" % (gw.admin[0], gw.admin[1], path),
                                 method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=harness.IO_TIMEOUT) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run(duration=300.0, clients=16, log=print, seed=1):
    """Runs the soak; returns (ok, summary dict)."""
    ups = {name: SoakUpstream(name) for name in
           ("blue1", "blue_kill", "green1", "green_kill", "moody1", "moody2", "chaos_kill")}
    state = {"active": "blue", "gen": 0}
    gw = harness.Gateway(gateway_doc(ups, "blue", 0), name="soak")
    stats = Stats()
    events = {"kills": 0, "restarts": 0, "mode_changes": 0, "sighup_reloads": 0,
              "admin_reloads": 0, "admin_flips": 0, "file_flips": 0, "reload_errors": 0}
    summary = {}
    problems = []
    try:
        gw.start()
        pid = gw.pid

        # Warm-up: load for a few seconds, then measure the baseline with no clients
        # and every pooled upstream connection timed out.
        def load(seconds, n):
            stop = threading.Event()
            threads = [threading.Thread(target=client_loop,
                                        args=(gw.addr, stats, stop, seed * 1000 + i, i),
                                        daemon=True) for i in range(n)]
            for t in threads:
                t.start()
            return stop, threads

        def settle(limit_fds=None):
            # Pooled upstream connections close after idle_connection_timeout (1 s);
            # client connections are gone. No event tells us, so poll.
            last = [None]

            def stable():
                n = fd_count(pid)
                same = last[0] == n and (limit_fds is None or n <= limit_fds)
                last[0] = n
                return same
            harness.wait_until(stable, timeout=15, interval=0.5)
            time.sleep(1.5)   # one more idle timeout, so no pooled connection remains
            return fd_count(pid), rss(pid)

        stop, threads = load(3, clients)
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join(30)
        base_fds, base_rss = settle()
        log("baseline: %d fds, RSS %.1f MiB (after a 3 s warm-up; %d requests ok)"
            % (base_fds, base_rss / (1 << 20), stats.ok))
        with stats.lock:
            warm_ok = stats.ok
            warm_violations = stats.violation_count
            stats.by_path = {"app": 0, "chaos": 0}
            stats.fail_5xx = {}

        stop, threads = load(duration, clients)
        rnd = random.Random(seed)
        t0 = time.monotonic()
        end = t0 + duration
        peak_rss = 0
        peak_fds = 0
        next_at = {"kill": t0 + 1.0, "mood": t0 + 0.5, "reload": t0 + 2.0, "flip": t0 + 1.5}
        killed = []
        last_report = t0
        while time.monotonic() < end:
            now = time.monotonic()
            peak_rss = max(peak_rss, rss(pid))
            peak_fds = max(peak_fds, fd_count(pid))
            if gw.proc.poll() is not None:
                problems.append("the gateway exited during the soak (code %s)"
                                % gw.proc.returncode)
                break
            if now >= next_at["kill"]:
                if killed:
                    for u in killed:
                        u.start()
                        events["restarts"] += 1
                    killed = []
                    next_at["kill"] = now + rnd.uniform(1.0, 3.0)
                else:
                    killed = rnd.sample([ups["blue_kill"], ups["green_kill"], ups["chaos_kill"]],
                                        rnd.randint(1, 2))
                    for u in killed:
                        u.kill()
                        events["kills"] += 1
                    next_at["kill"] = now + rnd.uniform(0.5, 2.0)
            if now >= next_at["mood"]:
                for u in (ups["moody1"], ups["moody2"]):
                    u.mode = rnd.choice(MODES)
                events["mode_changes"] += 1
                next_at["mood"] = now + rnd.uniform(1.0, 3.0)
            if now >= next_at["reload"]:
                state["gen"] += 1
                if rnd.random() < 0.5:
                    start_index = len(gw.records)
                    _write(gw, gateway_doc(ups, state["active"], state["gen"]))
                    gw.send_signal(signal.SIGHUP)
                    rec = gw.wait_log(lambda r: r.get("msg") in (
                        "config applied", "config reload failed; the running config stays"),
                        timeout=10 * harness.SCALE, start_index=start_index)
                    events["sighup_reloads"] += 1
                    if rec is None or rec.get("msg") != "config applied":
                        events["reload_errors"] += 1
                        problems.append("SIGHUP reload: %r" % (rec,))
                else:
                    _write(gw, gateway_doc(ups, state["active"], state["gen"]))
                    status, body = admin_call(gw, "POST", "/config/reload")
                    events["admin_reloads"] += 1
                    if status != 200:
                        events["reload_errors"] += 1
                        problems.append("POST /config/reload: %d %r" % (status, body[:200]))
                next_at["reload"] = now + rnd.uniform(1.5, 4.0)
            if now >= next_at["flip"]:
                target = "green" if state["active"] == "blue" else "blue"
                if rnd.random() < 0.5:
                    status, body = admin_call(gw, "PUT", "/services/app/active?pool=%s&force=1"
                                              % target)
                    events["admin_flips"] += 1
                    if status != 200:
                        problems.append("PUT /services/app/active: %d %r" % (status, body[:200]))
                    # The API flip holds until the file changes; write the file to match
                    # so that the next reload keeps it.
                    state["active"] = target
                else:
                    state["active"] = target
                    state["gen"] += 1
                    start_index = len(gw.records)
                    _write(gw, gateway_doc(ups, target, state["gen"]))
                    gw.send_signal(signal.SIGHUP)
                    rec = gw.wait_log(lambda r: r.get("msg") in (
                        "config applied", "config reload failed; the running config stays"),
                        timeout=10 * harness.SCALE, start_index=start_index)
                    events["file_flips"] += 1
                    if rec is None or rec.get("msg") != "config applied":
                        problems.append("file flip reload: %r" % (rec,))
                next_at["flip"] = now + rnd.uniform(1.0, 3.0)
            if now - last_report >= 30:
                last_report = now
                with stats.lock:
                    log("t=%3.0fs ok=%d 5xx=%d violations=%d fds=%d rss=%.1f MiB"
                        % (now - t0, stats.ok - warm_ok, sum(stats.fail_5xx.values()),
                           stats.violation_count - warm_violations, fd_count(pid),
                           rss(pid) / (1 << 20)))
            time.sleep(0.05)

        soak_end = time.monotonic()
        stop.set()
        for t in threads:
            t.join(RESPONSE_TIMEOUT * 6 + CLIENT_SLACK + 10)
        hung_clients = sum(1 for t in threads if t.is_alive())
        if hung_clients:
            problems.append("%d client threads still blocked after the soak" % hung_clients)

        # Everything good again, then check the gateway.
        for u in killed:
            u.start()
        for u in ups.values():
            u.mode = "good"
        alive = gw.proc.poll() is None
        if not alive:
            problems.append("gateway not running after the soak (code %s)" % gw.proc.returncode)
        else:
            status, _ = admin_call(gw, "GET", "/healthz")
            if status != 200:
                problems.append("/healthz answered %d after the soak" % status)
            c = harness.RawClient(gw.addr)
            try:
                resp = c.request("GET", "/app/final", [("X-Soak-Id", "final")])
                if resp.status != 200 or resp.json().get("id") != "final":
                    problems.append("request after the soak: %r" % resp)
            finally:
                c.close()
        end_fds, end_rss = settle(limit_fds=base_fds + 4) if alive else (0, 0)
        if alive and end_fds > base_fds + 4:
            problems.append("open fds %d after the soak, baseline %d" % (end_fds, base_fds))
        if alive and end_rss > base_rss + 16 * (1 << 20):
            problems.append("RSS %.1f MiB after the soak, baseline %.1f MiB"
                            % (end_rss / (1 << 20), base_rss / (1 << 20)))
        code = gw.stop()
        report = gw.sanitizer_report()
        if report:
            problems.append("sanitizer report:\n" + report)
        if code != 0:
            problems.append("gateway exit code %r after SIGTERM" % (code,))

        with stats.lock:
            summary = {
                "duration_s": round(soak_end - t0, 1),
                "clients": clients,
                "requests_ok": stats.ok - warm_ok,
                "ok_app": stats.by_path["app"], "ok_chaos": stats.by_path["chaos"],
                "failed_5xx": dict(sorted(stats.fail_5xx.items())),
                "violations": stats.violation_count,
                "max_latency_s": round(stats.latency_max, 2),
                "events": events,
                "fds": {"baseline": base_fds, "peak": peak_fds, "after": end_fds},
                "rss_mib": {"baseline": round(base_rss / (1 << 20), 1),
                            "peak": round(peak_rss / (1 << 20), 1),
                            "after": round(end_rss / (1 << 20), 1)},
                "gateway_exit": code,
            }
            violations = list(stats.violations)
    finally:
        for u in ups.values():
            u.kill()
        gw.kill()
    for v in violations:
        problems.append("violation: " + v)
    summary["problems"] = problems
    return not problems, summary


def _write(gw, doc):
    tmp = gw.config_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(toml_dumps(doc))
    os.rename(tmp, gw.config_path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateway", default=os.environ.get("GATEWAY_BIN"),
                    help="the gateway binary (default: $GATEWAY_BIN)")
    ap.add_argument("--duration", type=float, default=300.0, help="seconds (default 300)")
    ap.add_argument("--clients", type=int, default=16, help="client threads (default 16)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not args.gateway:
        ap.error("--gateway or GATEWAY_BIN is required")
    os.environ["GATEWAY_BIN"] = os.path.abspath(args.gateway)
    ok, summary = run(args.duration, args.clients, seed=args.seed)
    print("soak summary: " + json.dumps(summary, indent=1))
    print("soak %s" % ("PASSED" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
