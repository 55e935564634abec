"""Process lifecycle: graceful shutdown on SIGTERM and SIGINT, drain timeout, workers
with their own SO_REUSEPORT sockets, admin listener, JSON logs."""

import json
import os
import signal
import urllib.error
import urllib.request

import harness
from harness import (EXIT_TIMEOUT, IO_TIMEOUT, EchoUpstream, Gateway, GatewayTestCase,
                     build_request, config, connect_refused)


class GracefulShutdown(GatewayTestCase):

    def _graceful(self, sig):
        echo = self.upstream(EchoUpstream("slow"))
        gw = Gateway(config({"slow": [echo.address]},
                            limits={"drain_timeout": "30s", "idle_timeout": "2s"}),
                     name="graceful-%d" % sig)
        self.addCleanup(gw.kill)
        gw.start()
        # an idle keep-alive connection
        idle = self.client(gw.addr)
        self.assertEqual(idle.request("GET", "/warm").status, 200)
        # a slow request in flight
        busy = self.client(gw.addr)
        busy.send(build_request("POST", "/slow", body=b"payload",
                                headers=[("X-Echo-Hold", "1")]))
        self.assertTrue(echo.held.wait(IO_TIMEOUT), "slow request never reached upstream")

        gw.send_signal(sig)
        # new connections are refused once the listeners close
        self.assertTrue(harness.wait_until(lambda: connect_refused(gw.addr), timeout=IO_TIMEOUT),
                        "still accepting connections after the signal")
        # idle keep-alive connections close at their idle timeout, never at an arbitrary
        # moment of the drain when a request may already be on the wire
        closed, extra = idle.wait_closed()
        self.assertTrue(closed, "idle keep-alive connection not closed during drain")
        self.assertEqual(extra, b"")
        # the process has not exited: the in-flight request is still running
        self.assertIsNone(gw.proc.poll(), "gateway exited with a request in flight")
        echo.release()
        resp = busy.read_response()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["body"], "payload")
        code = gw.wait_exit(EXIT_TIMEOUT)
        self.assertEqual(code, 0, "exit code after drain; stderr:\n" + gw.stderr_tail())
        report = gw.sanitizer_report()
        self.assertIsNone(report, report)

    def test_sigterm_graceful(self):
        self._graceful(signal.SIGTERM)

    def test_sigint_graceful(self):
        self._graceful(signal.SIGINT)

    def test_sigterm_idle_gateway_exits_0(self):
        echo = self.upstream(EchoUpstream("x"))
        gw = Gateway(config({"x": [echo.address]}), name="idle-exit")
        self.addCleanup(gw.kill)
        gw.start()
        c = self.client(gw.addr)
        self.assertEqual(c.request("GET", "/").status, 200)
        gw.send_signal(signal.SIGTERM)
        self.assertEqual(gw.wait_exit(EXIT_TIMEOUT), 0, gw.stderr_tail())

    def test_drain_timeout_bounds_shutdown(self):
        echo = self.upstream(EchoUpstream("stuck"))
        gw = Gateway(config({"stuck": [echo.address]}, limits={"drain_timeout": "500ms"}),
                     name="drain-timeout")
        self.addCleanup(gw.kill)
        gw.start()
        busy = self.client(gw.addr)
        busy.send(build_request("GET", "/stuck", headers=[("X-Echo-Hold", "1")]))
        self.assertTrue(echo.held.wait(IO_TIMEOUT))
        gw.send_signal(signal.SIGTERM)
        code = gw.wait_exit(EXIT_TIMEOUT)
        self.assertIsNotNone(code, "gateway did not exit after drain_timeout")
        self.assertEqual(code, 0, gw.stderr_tail())
        # the unfinished exchange was cut, not completed
        resp, closed = harness.read_response_or_close(busy)
        self.assertTrue(closed or resp.status >= 500,
                        "in-flight request completed after drain timeout: %r" % (resp,))
        echo.release()


def admin_status(gw, path):
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (gw.admin[0], gw.admin[1], path),
                                    timeout=IO_TIMEOUT) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class KubernetesShutdown(GatewayTestCase):
    """SIGTERM: /ready turns 503 at once, serving goes on for shutdown_delay, then the
    listeners close and in-flight requests drain."""

    def _start(self, echo, delay):
        gw = Gateway(config({"app": [echo.address]}, admin="127.0.0.1:0",
                            limits={"shutdown_delay": delay, "drain_timeout": "30s",
                                    "drain_spread": "0s", "idle_timeout": "30s"}),
                     name="k8s-%s" % delay)
        self.addCleanup(gw.kill)
        gw.start()
        return gw

    def _log_index(self, gw, msg):
        with gw.cond:
            msgs = [r.get("msg") for r in gw.records]
        return msgs.index(msg) if msg in msgs else None

    def test_not_ready_but_serving_during_the_delay_then_drain(self):
        echo = self.upstream(EchoUpstream("app"))
        gw = self._start(echo, "10m")  # ended by a second SIGTERM below
        keep_alive = self.client(gw.addr)
        self.assertEqual(keep_alive.request("GET", "/warm").status, 200)
        busy = self.client(gw.addr)
        busy.send(build_request("POST", "/slow", body=b"in-flight",
                                headers=[("X-Echo-Hold", "1")]))
        self.assertTrue(echo.held.wait(IO_TIMEOUT), "slow request never reached upstream")
        self.assertEqual(admin_status(gw, "/ready")[0], 200)

        gw.send_signal(signal.SIGTERM)
        self.assertIsNotNone(gw.wait_log(lambda r: r.get("msg", "").startswith("shutting down")),
                             gw.stderr_tail())
        self.assertEqual(admin_status(gw, "/ready")[0], 503)
        self.assertEqual(admin_status(gw, "/health")[0], 200)
        # still serving: new connections and keep-alive ones, without Connection: close
        fresh = self.client(gw.addr)
        resp = fresh.request("GET", "/during-delay")
        self.assertEqual(resp.status, 200)
        self.assertNotEqual((resp.header("Connection") or "").lower(), "close")
        resp = keep_alive.request("GET", "/during-delay-2")
        self.assertEqual(resp.status, 200)
        self.assertNotEqual((resp.header("Connection") or "").lower(), "close")
        self.assertIsNone(self._log_index(gw, "draining"), "drained before the delay ended")
        # (an idle keep-alive connection would hold the drain until its idle timeout)
        fresh.close()

        # a second SIGTERM ends the delay: the listeners close, open connections drain
        gw.send_signal(signal.SIGTERM)
        self.assertIsNotNone(gw.wait_log(lambda r: r.get("msg") == "draining"), gw.stderr_tail())
        self.assertTrue(harness.wait_until(lambda: connect_refused(gw.addr), timeout=IO_TIMEOUT),
                        "still accepting connections after the delay")
        resp = keep_alive.request("GET", "/after-delay")
        self.assertEqual(resp.status, 200)
        self.assertEqual((resp.header("Connection") or "").lower(), "close")
        closed, extra = keep_alive.wait_closed()
        self.assertTrue(closed, "keep-alive connection not closed after Connection: close")
        self.assertEqual(extra, b"")
        self.assertIsNone(gw.proc.poll(), "gateway exited with a request in flight")
        echo.release()
        resp = busy.read_response()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.json()["body"], "in-flight")
        self.assertEqual(gw.wait_exit(EXIT_TIMEOUT), 0, gw.stderr_tail())
        self.assertIsNone(gw.sanitizer_report())

    def test_delay_ends_on_its_own(self):
        echo = self.upstream(EchoUpstream("app"))
        gw = self._start(echo, "200ms")
        busy = self.client(gw.addr)
        busy.send(build_request("GET", "/slow", headers=[("X-Echo-Hold", "1")]))
        self.assertTrue(echo.held.wait(IO_TIMEOUT))
        gw.send_signal(signal.SIGTERM)
        self.assertIsNotNone(gw.wait_log(lambda r: r.get("msg") == "draining"), gw.stderr_tail())
        not_ready = self._log_index(gw, "shutting down: not ready, still serving")
        self.assertIsNotNone(not_ready)
        self.assertLess(not_ready, self._log_index(gw, "draining"))
        self.assertIsNone(self._log_index(gw, "shutdown delay cut short"))
        self.assertEqual(admin_status(gw, "/ready")[0], 503)
        self.assertTrue(harness.wait_until(lambda: connect_refused(gw.addr), timeout=IO_TIMEOUT))
        echo.release()
        self.assertEqual(busy.read_response().status, 200)
        self.assertEqual(gw.wait_exit(EXIT_TIMEOUT), 0, gw.stderr_tail())

    def test_no_delay_by_default(self):
        echo = self.upstream(EchoUpstream("app"))
        gw = self.gateway(config({"app": [echo.address]}))
        gw.send_signal(signal.SIGTERM)
        self.assertEqual(gw.wait_exit(EXIT_TIMEOUT), 0, gw.stderr_tail())
        self.assertIsNone(self._log_index(gw, "shutting down: not ready, still serving"))


class StartupFailure(GatewayTestCase):

    def test_port_in_use_exits_1_without_crashing(self):
        # The worker that cannot bind ends its loop at once; the control thread's drain
        # request must not reach its closed mailbox (that was an abort, now and then).
        busy = harness.socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        for attempt in range(10):
            out = harness.run_gateway(["--listen", "127.0.0.1:%d" % port,
                                       "--upstream", "127.0.0.1:9", "--workers", "2"])
            err = out.stderr.decode("utf-8", "replace")
            self.assertEqual(out.returncode, 1, "attempt %d:\n%s" % (attempt, err))
            self.assertIn("address already in use", err)


class Workers(GatewayTestCase):

    def test_two_workers_two_reuseport_sockets(self):
        echo = self.upstream(EchoUpstream("w"))
        gw = self.gateway(config({"w": [echo.address]}, workers=2))
        port = gw.addr[1]
        self.assertEqual(harness.listening_sockets(gw.pid, port), 2,
                         "want one listening socket per worker on port %d" % port)
        threads = len(os.listdir("/proc/%d/task" % gw.pid))
        self.assertGreaterEqual(threads, 3, "two workers and a control thread")
        for i in range(20):
            c = harness.RawClient(gw.addr)
            try:
                self.assertEqual(c.request("GET", "/w%d" % i).status, 200)
            finally:
                c.close()

    def test_default_workers_one_per_core(self):
        echo = self.upstream(EchoUpstream("auto"))
        doc = config({"auto": [echo.address]})
        del doc["workers"]
        gw = self.gateway(doc)
        count = harness.listening_sockets(gw.pid, gw.addr[1])
        cores = {os.cpu_count(), len(os.sched_getaffinity(0))}
        self.assertIn(count, cores)
        self.assertEqual(self.client(gw.addr).request("GET", "/").status, 200)


class AdminAndLogs(GatewayTestCase):

    def test_admin_listener_and_json_logs(self):
        echo = self.upstream(EchoUpstream("a"))
        gw = self.gateway(config({"a": [echo.address]}, admin="127.0.0.1:0"))
        self.assertIsNotNone(gw.admin, "no 'admin listening' log line")
        self.assertFalse(connect_refused(gw.admin))
        self.assertEqual(self.client(gw.addr).request("GET", "/").status, 200)
        gw.assert_clean_exit(self)
        self.assertTrue(gw.lines)
        for line in gw.lines:
            self.assertTrue(line.startswith("{"), "non-JSON log line: %r" % line)
            record = harness.json.loads(line)
            for key in ("ts", "level", "msg"):
                self.assertIn(key, record, line)

    def test_ready_logged_after_listening(self):
        echo = self.upstream(EchoUpstream("b"))
        gw = self.gateway(config({"b": [echo.address]}))
        msgs = [r.get("msg") for r in gw.records]
        self.assertIn("listening", msgs)
        self.assertLess(msgs.index("listening"), msgs.index("ready"))
        listening = [r for r in gw.records if r.get("msg") == "listening"][0]
        self.assertEqual(listening.get("listener"), "main")
        self.assertRegex(listening.get("address", ""), r"^127\.0\.0\.1:\d+$")


if __name__ == "__main__":
    harness.main()
