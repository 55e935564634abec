"""Process lifecycle: graceful shutdown on SIGTERM and SIGINT, drain timeout, workers
with their own SO_REUSEPORT sockets, admin listener, JSON logs."""

import os
import signal

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
