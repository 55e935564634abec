"""Integration test harness: the real gateway binary, real upstreams, real clients.

Everything here talks to 127.0.0.1 only, binds port 0, and is bounded by socket
timeouts: a test can fail, but it cannot hang. Python 3 standard library only.

Pieces:
  Gateway          starts the binary with a generated TOML file, waits for its
                   "ready" log line (read in a thread), knows listener addresses.
  toml_dumps       the tiny TOML writer the tests use to build configs from dicts.
  EchoUpstream     an HTTP/1.1 keep-alive upstream that answers with a JSON picture
                   of the request it received (headers in order, original case,
                   body length and sha256); records connections and raw bytes.
  RawUpstream      a scripted raw-socket upstream: a handler per connection.
  RawClient        a raw-socket client: send bytes, read one response, see close.
"""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

# ---------------------------------------------------------------------------
# Environment

def _timeout_scale():
    value = os.environ.get("GATEWAY_TEST_TIMEOUT_SCALE")
    if value:
        return float(value)
    # Sanitizer builds are several times slower.
    return 3.0 if ("ASAN_OPTIONS" in os.environ or "TSAN_OPTIONS" in os.environ) else 1.0


SCALE = _timeout_scale()
IO_TIMEOUT = 10.0 * SCALE        # any single socket operation
STARTUP_TIMEOUT = 20.0 * SCALE   # binary start to "ready"
EXIT_TIMEOUT = 20.0 * SCALE      # SIGTERM to exit


def gateway_bin():
    path = os.environ.get("GATEWAY_BIN")
    if not path:
        raise unittest.SkipTest("GATEWAY_BIN is not set")
    path = os.path.abspath(path)
    if not os.access(path, os.X_OK):
        raise RuntimeError("GATEWAY_BIN=%s is not executable" % path)
    return path


def repo_file(relpath):
    """A file from the source tree (conf/...), in Bazel runfiles or a checkout."""
    candidates = []
    if os.environ.get("GATEWAY_SRC_ROOT"):
        candidates.append(os.environ["GATEWAY_SRC_ROOT"])
    if os.environ.get("TEST_SRCDIR"):
        candidates.append(os.path.join(os.environ["TEST_SRCDIR"],
                                       os.environ.get("TEST_WORKSPACE", "gateway")))
    candidates.append(os.getcwd())
    here = os.path.dirname(os.path.abspath(__file__))
    candidates.append(os.path.normpath(os.path.join(here, "..", "..")))
    for root in candidates:
        path = os.path.join(root, relpath)
        if os.path.exists(path):
            return path
    return None


_TEST_CERTS = None


def test_cert(name):
    """A file made by scripts/make_test_certs.sh (a CA, server and client certificates
    and keys), made once per test process in a temporary directory."""
    global _TEST_CERTS
    if _TEST_CERTS is None:
        script = repo_file("scripts/make_test_certs.sh")
        if script is None:
            raise RuntimeError("scripts/make_test_certs.sh not found")
        _TEST_CERTS = tempfile.mkdtemp(prefix="gw-certs-", dir=os.environ.get("TEST_TMPDIR"))
        subprocess.run(["bash", script, _TEST_CERTS], check=True, capture_output=True,
                       timeout=60)
    return os.path.join(_TEST_CERTS, name)


def tmp_dir():
    base = os.environ.get("TEST_TMPDIR") or None
    return tempfile.mkdtemp(prefix="gw-", dir=base)


def output_dir():
    return os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or None


def free_port():
    """A loopback port nobody listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------
# TOML writer (enough for our configs)

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k):
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join("%s = %s" % (_key(k), _value(x)) for k, x in v.items()) + " }"
    raise TypeError("cannot write %r as TOML" % (v,))


def _is_table_array(v):
    return isinstance(v, list) and v and all(isinstance(x, dict) for x in v)


def toml_dumps(doc):
    """Dicts become [sections] (nested: [a.b]); lists of dicts at any table level
    become [[arrays]]; dicts inside array elements become inline tables."""
    out = []

    def emit_table(path, table):
        scalars = [(k, v) for k, v in table.items()
                   if not isinstance(v, dict) and not _is_table_array(v)]
        for k, v in scalars:
            out.append("%s = %s" % (_key(k), _value(v)))
        for k, v in table.items():
            if isinstance(v, dict):
                sub = path + [k]
                out.append("")
                out.append("[%s]" % ".".join(_key(p) for p in sub))
                emit_table(sub, v)
        for k, v in table.items():
            if _is_table_array(v):
                sub = path + [k]
                for element in v:
                    out.append("")
                    out.append("[[%s]]" % ".".join(_key(p) for p in sub))
                    for ek, ev in element.items():
                        out.append("%s = %s" % (_key(ek), _value(ev)))

    emit_table([], doc)
    return "\n".join(out) + "\n"


def config(services, routes=None, listeners=None, workers=1, admin="", limits=None,
           forwarding=None, listener_limits=None):
    """A complete config dict. `services` maps a name to either a list of endpoint
    strings (one pool "main") or a dict of service keys (with "pools")."""
    doc = {"workers": workers, "admin": {"listen": admin}}
    # A short drain by default so that stopping a test gateway never waits long.
    doc["limits"] = dict({"drain_timeout": "5s"}, **(limits or {}))
    if forwarding:
        doc["forwarding"] = dict(forwarding)
    svc_tables = {}
    for name, spec in services.items():
        if isinstance(spec, (list, tuple)):
            spec = {"pools": {"main": {"endpoints": list(spec)}}}
        spec = dict(spec)
        if "active" not in spec:
            spec["active"] = sorted(spec["pools"])[0] if "main" not in spec["pools"] else "main"
        svc_tables[name] = spec
    if listeners is None:
        listener = {"name": "main", "listen": "127.0.0.1:0"}
        if listener_limits:
            listener["limits"] = dict(listener_limits)
        listeners = [listener]
    doc["listeners"] = listeners
    if routes is None:
        first = next(iter(services))
        routes = [{"name": "all", "match": {"path_prefix": "/"}, "service": first}]
    doc["routes"] = routes
    doc["services"] = svc_tables
    return doc


# ---------------------------------------------------------------------------
# The gateway process

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")

_gateway_counter = [0]


class Gateway:
    """One gateway process. Use start(); always stop() (tests use addCleanup)."""

    def __init__(self, config_doc=None, config_text=None, args=None, name="gw", env=None):
        self.name = name
        self.env = env           # extra environment variables (GATEWAY_LISTEN, ...)
        self.dir = tmp_dir()
        self.config_path = None
        if config_doc is not None:
            config_text = toml_dumps(config_doc)
        if config_text is not None:
            self.config_path = os.path.join(self.dir, "gateway.toml")
            with open(self.config_path, "w") as f:
                f.write(config_text)
        self.args = list(args or [])
        self.proc = None
        self.lines = []          # every stderr line, raw text
        self.records = []        # parsed JSON log records
        self.cond = threading.Condition()
        self.eof = False
        self.listeners = {}      # name -> (host, port)
        self.admin = None        # (host, port) or None
        self.returncode = None
        _gateway_counter[0] += 1
        self.seq = _gateway_counter[0]

    # -- process ------------------------------------------------------------
    def command(self):
        cmd = [gateway_bin()]
        if self.config_path:
            cmd += ["--config", self.config_path]
        return cmd + self.args

    def start(self, wait_ready=True):
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd=self.dir, env=env)
        self.stdout_chunks = []
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        if wait_ready:
            self.wait_ready()
        return self

    def _read_stdout(self):
        for chunk in iter(lambda: self.proc.stdout.read1(4096), b""):
            self.stdout_chunks.append(chunk)
        self.proc.stdout.close()

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\n")
            record = None
            if text.startswith("{"):
                try:
                    record = json.loads(text)
                except ValueError:
                    record = None
            with self.cond:
                self.lines.append(text)
                if isinstance(record, dict):
                    self.records.append(record)
                self.cond.notify_all()
        self.proc.stderr.close()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_log(self, predicate, timeout=STARTUP_TIMEOUT, start_index=0):
        """Waits for a JSON log record matching predicate; returns it or None."""
        deadline = time.monotonic() + timeout
        index = start_index
        with self.cond:
            while True:
                while index < len(self.records):
                    record = self.records[index]
                    index += 1
                    if predicate(record):
                        return record
                if self.eof:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)

    def wait_ready(self):
        ready = self.wait_log(lambda r: r.get("msg") == "ready")
        if ready is None:
            code = self.proc.poll()
            self.kill()
            raise AssertionError("gateway did not log ready (exit code %s); stderr:\n%s"
                                 % (code, self.stderr_tail()))
        with self.cond:
            records = list(self.records)
        for r in records:
            if r.get("msg") == "listening" and "address" in r:
                self.listeners[r.get("listener", "main")] = _connectable(r["address"])
            elif r.get("msg") == "admin listening" and "address" in r:
                self.admin = _connectable(r["address"])
        if not self.listeners:
            raise AssertionError("gateway logged ready but no listening line; stderr:\n%s"
                                 % self.stderr_tail())
        return ready

    @property
    def addr(self):
        if "main" in self.listeners:
            return self.listeners["main"]
        return next(iter(self.listeners.values()))

    @property
    def pid(self):
        return self.proc.pid

    def url(self, path="/", listener=None):
        host, port = self.listeners[listener] if listener else self.addr
        return "http://%s:%d%s" % (host, port, path)

    def send_signal(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout=EXIT_TIMEOUT):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.returncode = self.proc.returncode if self.proc else None
        self._save_log()

    def stop(self):
        """SIGTERM, wait, SIGKILL if needed. Returns the exit code (None if killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.wait_exit()
            if code is None:
                self.kill()
                self._save_log()
                return None
        self.returncode = self.proc.returncode
        self._join_stderr()
        self._save_log()
        return self.returncode

    def _join_stderr(self):
        with self.cond:
            deadline = time.monotonic() + 5
            while not self.eof and time.monotonic() < deadline:
                self.cond.wait(0.5)

    def _save_log(self):
        out = output_dir()
        if not out:
            return
        try:
            with open(os.path.join(out, "gateway-%02d-%s.log" % (self.seq, self.name)), "w") as f:
                f.write("\n".join(self.lines) + "\n")
        except OSError:
            pass

    # -- diagnostics --------------------------------------------------------
    def stderr_tail(self, n=40):
        with self.cond:
            return "\n".join(self.lines[-n:])

    def sanitizer_report(self):
        with self.cond:
            text = "\n".join(self.lines)
        for marker in SANITIZER_MARKERS:
            if marker in text:
                return text[text.index(marker):][:4000]
        return None

    def assert_clean_exit(self, testcase):
        """Stops the gateway; fails the test on a non-zero exit or sanitizer report."""
        code = self.stop()
        report = self.sanitizer_report()
        if report:
            testcase.fail("sanitizer report from gateway:\n" + report)
        if code != 0:
            testcase.fail("gateway exit code %r after SIGTERM (want 0); stderr tail:\n%s"
                          % (code, self.stderr_tail()))


def _connectable(address):
    host, port = split_hostport(address)
    if host in ("0.0.0.0", "", "*"):
        host = "127.0.0.1"
    if host in ("::", "[::]"):
        host = "::1"
    return (host, port)


def split_hostport(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    return host, int(port)


def run_gateway(args, timeout=60 * SCALE, cwd=None, env=None):
    """Runs the binary to completion (for --check / --version). `env`: extra variables."""
    return subprocess.run([gateway_bin()] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, cwd=cwd,
                          env=dict(os.environ, **env) if env else None)


class GatewayTestCase(unittest.TestCase):
    """A test class with one gateway for the whole class (built by gateway_config())
    and helpers. Upstreams made in setUpClass are closed in tearDownClass."""

    gw = None

    @classmethod
    def start_gateway(cls, doc, name=None):
        """A gateway for the whole class; stopped and checked in tearDownClass (and
        killed by a class cleanup even when setUpClass fails)."""
        gw = Gateway(doc, name=name or cls.__name__)
        cls._owned_list().append(gw)
        cls.addClassCleanup(gw.kill)
        gw.start()
        return gw

    @classmethod
    def _owned_list(cls):
        if "_owned" not in cls.__dict__:
            cls._owned = []
        return cls._owned

    @classmethod
    def own(cls, thing):
        """An upstream (anything with close()) that lives as long as the class."""
        cls.addClassCleanup(thing.close)
        return thing

    @classmethod
    def tearDownClass(cls):
        problems = []
        for gw in reversed(cls.__dict__.get("_owned", [])):
            code = gw.stop()
            report = gw.sanitizer_report()
            if report:
                problems.append("sanitizer report:\n" + report)
            elif code != 0:
                problems.append("gateway exit code %r after SIGTERM; stderr tail:\n%s"
                                % (code, gw.stderr_tail()))
        if problems:
            raise AssertionError("\n".join(problems))

    def gateway(self, doc, name=None, start=True):
        """A gateway for one test: stopped (and checked) at the end of the test."""
        gw = Gateway(doc, name=name or self.id().rsplit(".", 1)[-1])
        self.addCleanup(self._stop_checked, gw)
        if start:
            gw.start()
        return gw

    def _stop_checked(self, gw):
        if gw.proc is None or gw.returncode is not None:
            return
        gw.assert_clean_exit(self)

    def upstream(self, server):
        self.addCleanup(server.close)
        return server

    def client(self, addr=None, timeout=IO_TIMEOUT):
        c = RawClient(addr or self.gw.addr, timeout=timeout)
        self.addCleanup(c.close)
        return c


# ---------------------------------------------------------------------------
# Byte helpers

_PATTERN_BLOCK = b"".join(hashlib.sha256(b"gw-%d" % i).digest() for i in range(2048))  # 64 KiB


def pattern_chunks(total, chunk=65536):
    """Deterministic body bytes (a repeated 64 KiB block), yielded in chunks."""
    block = _PATTERN_BLOCK
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        offset = sent % len(block)
        piece = bytearray()
        while len(piece) < n:
            take = min(n - len(piece), len(block) - offset)
            piece += block[offset:offset + take]
            offset = 0
        yield bytes(piece)
        sent += n


def pattern_sha256(total):
    h = hashlib.sha256()
    for c in pattern_chunks(total):
        h.update(c)
    return h.hexdigest()


class BufferedSocket:
    """Reads from a socket with a carry-over buffer. Every read is bounded by the
    socket's timeout; EOF raises EOFError."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.on_data = None

    def _fill(self):
        data = self.sock.recv(262144)
        if not data:
            raise EOFError("connection closed")
        if self.on_data:
            self.on_data(data)
        self.buf += data

    def read_until(self, delim, limit=1 << 20):
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                end = i + len(delim)
                out = bytes(self.buf[:end])
                del self.buf[:end]
                return out
            if len(self.buf) > limit:
                raise ValueError("no %r within %d bytes" % (delim, limit))
            start = max(0, len(self.buf) - len(delim) + 1)
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_some(self, maximum=262144):
        if not self.buf:
            self._fill()
        out = bytes(self.buf[:maximum])
        del self.buf[:maximum]
        return out

    def read_to_eof(self, limit=64 << 20):
        while True:
            try:
                self._fill()
            except EOFError:
                break
            if len(self.buf) > limit:
                raise ValueError("more than %d bytes before EOF" % limit)
        out = bytes(self.buf)
        self.buf.clear()
        return out


def parse_head(head):
    """b"LINE\r\nName: v\r\n...\r\n\r\n" -> (first line, [(name, value), ...])."""
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    first = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name, value.strip(" \t")))
    return first, headers


def header_get(headers, name, default=None):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return default


def metric(gw, name, labels=""):
    """The value of one sample on the gateway's /metrics: `name` with `labels` as
    written there ('{class="5xx"}'), or none."""
    with urllib.request.urlopen("http://%s:%d/metrics" % gw.admin, timeout=IO_TIMEOUT) as r:
        text = r.read().decode()
    key = name + labels
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    raise AssertionError("metric %s not found" % key)


def header_all(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


# ---------------------------------------------------------------------------
# Upstream servers

class _ServerBase:
    """A threaded TCP server on 127.0.0.1:0; one thread per connection."""

    def __init__(self, name="upstream", backlog=128):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.connections = 0
        self.closed_connections = 0     # connections whose handler has finished
        self.bytes_received = 0
        self.raw = bytearray()          # the first RAW_LIMIT bytes received, all connections
        self.closed = False
        self.conns = []
        self.errors = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    RAW_LIMIT = 1 << 20

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.cond:
                if self.closed:
                    conn.close()
                    return
                self.connections += 1
                index = self.connections
                self.conns.append(conn)
                self.cond.notify_all()
            conn.settimeout(IO_TIMEOUT * 3)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._run_conn, args=(conn, index), daemon=True).start()

    def _record(self, data):
        with self.cond:
            self.bytes_received += len(data)
            room = self.RAW_LIMIT - len(self.raw)
            if room > 0:
                self.raw += data[:room]
            self.cond.notify_all()

    def _run_conn(self, conn, index):
        try:
            self.handle(conn, index)
        except (OSError, EOFError, ValueError):
            pass
        except Exception as e:  # a bug in a handler: remember it
            with self.cond:
                self.errors.append(repr(e))
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self.cond:
                self.closed_connections += 1
                self.cond.notify_all()

    def reader(self, conn):
        r = BufferedSocket(conn)
        r.on_data = self._record
        return r

    def handle(self, conn, index):
        raise NotImplementedError

    def wait_for(self, predicate, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(remaining)
            return True

    def snapshot(self):
        with self.cond:
            return (self.connections, self.bytes_received, bytes(self.raw))

    def close(self):
        with self.cond:
            self.closed = True
            conns = list(self.conns)
            self.cond.notify_all()
        close_quietly(self.sock)
        for c in conns:
            close_quietly(c)


def close_quietly(sock):
    """shutdown() then close(), ignoring a socket that is already gone. shutdown() also
    wakes a thread blocked in accept() on a listening socket (close() alone does not)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def read_request(r, max_body=None, body_sink=None):
    """Reads one HTTP/1.1 request from BufferedSocket r. Returns a dict, or None on a
    clean EOF before the first byte. The body is hashed, and kept when small."""
    try:
        head = r.read_until(b"\r\n\r\n")
    except EOFError:
        if r.buf:
            raise
        return None
    first, headers = parse_head(head)
    parts = first.split(" ")
    method, target, version = (parts + ["", "", ""])[:3]
    h = hashlib.sha256()
    length = 0
    kept = bytearray()
    chunked = "chunked" in (header_get(headers, "Transfer-Encoding") or "").lower()

    def take(data):
        nonlocal length
        h.update(data)
        length += len(data)
        if len(kept) < 65536:
            kept.extend(data[:65536 - len(kept)])
        if body_sink:
            body_sink(data)

    trailers = []
    if chunked:
        while True:
            line = r.read_until(b"\r\n").decode("latin-1").strip()
            size = int(line.split(";")[0], 16)
            if size == 0:
                while True:
                    t = r.read_until(b"\r\n")
                    if t == b"\r\n":
                        break
                    trailers.append(t.decode("latin-1").strip())
                break
            remaining = size
            while remaining:
                piece = r.read_some(min(remaining, 262144))
                take(piece)
                remaining -= len(piece)
            if r.read_exact(2) != b"\r\n":
                raise ValueError("bad chunk terminator")
    else:
        cl = header_get(headers, "Content-Length")
        remaining = int(cl) if cl is not None else 0
        while remaining:
            piece = r.read_some(min(remaining, 262144))
            take(piece)
            remaining -= len(piece)
    return {
        "method": method, "target": target, "version": version,
        "headers": [[k, v] for k, v in headers],
        "chunked": chunked, "trailers": trailers,
        "body_len": length, "body_sha256": h.hexdigest(),
        "body": bytes(kept).decode("latin-1") if length <= 4096 else None,
    }


class EchoUpstream(_ServerBase):
    """Answers every request with JSON describing it. Request headers steer it:
      X-Echo-Status: N         status code of the answer
      X-Echo-Body-Size: N      answer with N pattern bytes instead of JSON (the JSON
                               goes into the X-Echo-Info header)
      X-Echo-Chunked: 1        answer with Transfer-Encoding: chunked
      X-Echo-Hold: 1           do not answer until release() (sets `held` first)
      X-Echo-Close: 1          answer with Connection: close and close
    `extra_headers` are added to every answer (after the standard ones)."""

    def __init__(self, name="echo"):
        super().__init__(name)
        self.requests = []
        self.extra_headers = []
        self.held = threading.Event()
        self.release_event = threading.Event()
        self.bytes_sent = 0
        self.body_bytes_sent = 0

    def release(self):
        self.release_event.set()

    def handle(self, conn, index):
        r = self.reader(conn)
        count = 0
        while True:
            req = read_request(r)
            if req is None:
                return
            count += 1
            req["upstream"] = self.name
            req["connection"] = index
            req["request_on_connection"] = count
            hdrs = req["headers"]
            with self.cond:
                self.requests.append(req)
                self.cond.notify_all()
            if header_get(hdrs, "X-Echo-Hold"):
                self.held.set()
                self.release_event.wait(IO_TIMEOUT * 6)
            keep = self.respond(conn, req)
            if not keep:
                return

    def respond(self, conn, req):
        hdrs = req["headers"]
        status = int(header_get(hdrs, "X-Echo-Status") or 200)
        info = json.dumps(req).encode()
        size = header_get(hdrs, "X-Echo-Body-Size")
        chunked = bool(header_get(hdrs, "X-Echo-Chunked"))
        close = bool(header_get(hdrs, "X-Echo-Close")) or \
            (header_get(hdrs, "Connection") or "").lower() == "close"
        head = ["HTTP/1.1 %d %s" % (status, "OK" if status == 200 else "Status"),
                "Content-Type: %s" % ("application/octet-stream" if size else "application/json")]
        if size is not None:
            head.append("X-Echo-Info: %s" % json.dumps(
                {k: req[k] for k in ("method", "target", "connection", "upstream")}))
            total = int(size)
            body_iter = pattern_chunks(total)
        else:
            total = len(info)
            body_iter = iter([info])
        if chunked:
            head.append("Transfer-Encoding: chunked")
        else:
            head.append("Content-Length: %d" % total)
        if close:
            head.append("Connection: close")
        for k, v in self.extra_headers:
            head.append("%s: %s" % (k, v))
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        conn.sendall(data)
        self._sent(len(data), 0)
        if req["method"] != "HEAD" and status not in (204, 304):
            for piece in body_iter:
                out = (b"%x\r\n" % len(piece) + piece + b"\r\n") if chunked else piece
                conn.sendall(out)
                self._sent(len(out), len(piece))
            if chunked:
                conn.sendall(b"0\r\n\r\n")
        return not close

    def _sent(self, n, body):
        with self.cond:
            self.bytes_sent += n
            self.body_bytes_sent += body
            self.cond.notify_all()

    def request_count(self):
        with self.cond:
            return len(self.requests)

    def last(self):
        with self.cond:
            return self.requests[-1] if self.requests else None


def upgrade_echo_handler(server, conn, r, index):
    """Answers 101 to the first request, then echoes bytes back, upper-cased."""
    req = read_request(r)
    if req is None:
        return
    with server.cond:
        server.events.setdefault("request", req)
        server.cond.notify_all()
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    if r.buf:
        conn.sendall(bytes(r.buf).upper())
        r.buf.clear()
    while True:
        data = conn.recv(65536)
        if not data:
            conn.shutdown(socket.SHUT_WR)
            return
        server._record(data)
        conn.sendall(data.upper())


# Scripted upstream responses, by the last segment of the request target: (head bytes,
# body bytes, close the connection after). Tests serve the BAD ones from a service of
# their own, so that the failures they cause (and the ejection that follows) stay there.
HELLO = b"hello"
GOOD_RESPONSES = {
    "cl": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", HELLO, False),
    "chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"2\r\nhe\r\n3\r\nllo\r\n0\r\nX-T: 1\r\n\r\n", False),
    "until-close": (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", HELLO, True),
    "http10": (b"HTTP/1.0 200 OK\r\n\r\n", HELLO, True),
    "204": (b"HTTP/1.1 204 No Content\r\n\r\n", b"", False),
    "304": (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"e\"\r\n\r\n",
            b"", False),
    "interim": (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", HELLO, False),
}
BAD_RESPONSES = {
    "cut-cl": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", HELLO, True),
    "cut-chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                    b"5\r\nhello\r\n", True),
    "no-head": (b"", b"", True),
    "garbage": (b"HELLO WORLD\r\n\r\n", b"", True),
}


def scripted_status(kind):
    """The final status of GOOD_RESPONSES[kind] (past any 1xx)."""
    head = GOOD_RESPONSES[kind][0]
    return int(head.split(b"\r\n\r\n")[-2].split(b"\r\n")[0].split(b" ")[1])


def scripted_upstream(server, conn, r, index):
    """A RawUpstream handler answering each request with GOOD_RESPONSES or
    BAD_RESPONSES (the head alone for HEAD), keep-alive unless the script closes."""
    while True:
        req = read_request(r)
        if req is None:
            break
        kind = req["target"].rsplit("/", 1)[-1]
        head, body, close = {**GOOD_RESPONSES, **BAD_RESPONSES}[kind]
        conn.sendall(head + (b"" if req["method"] == "HEAD" else body))
        if close:
            break
    close_quietly(conn)


class RawUpstream(_ServerBase):
    """A scripted upstream: handler(server, conn, reader, index) per connection."""

    def __init__(self, handler, name="raw", backlog=128):
        self.handler = handler
        self.events = {}
        super().__init__(name, backlog)

    def event(self, name):
        with self.cond:
            return self.events.setdefault(name, threading.Event())

    def handle(self, conn, index):
        self.handler(self, conn, self.reader(conn), index)


# ---------------------------------------------------------------------------
# Client

class Response:
    def __init__(self, status, reason, headers, body, head, version, complete=True,
                 interim=None):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.head = head
        self.version = version
        self.complete = complete
        self.interim = interim or []

    def header(self, name, default=None):
        return header_get(self.headers, name, default)

    def header_all(self, name):
        return header_all(self.headers, name)

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %r body=%d bytes complete=%s>" % (
            self.status, self.reason, len(self.body) if self.body is not None else -1,
            self.complete)


class Incomplete(Exception):
    """The connection closed before the response was complete."""

    def __init__(self, message, partial):
        super().__init__(message)
        self.partial = partial


def build_request(method="GET", target="/", headers=None, body=b"", host="test.local",
                  version="HTTP/1.1"):
    lines = ["%s %s %s" % (method, target, version)]
    names = [k.lower() for k, _ in (headers or [])]
    if host is not None and "host" not in names:
        lines.append("Host: %s" % host)
    for k, v in headers or []:
        lines.append("%s: %s" % (k, v))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked_body(data, sizes=(1, 10, 4096, 65536, 7)):
    out = bytearray()
    i = 0
    k = 0
    while i < len(data):
        n = min(sizes[k % len(sizes)], len(data) - i)
        out += b"%x\r\n" % n + data[i:i + n] + b"\r\n"
        i += n
        k += 1
    out += b"0\r\n\r\n"
    return bytes(out)


class RawClient:
    """A client on a raw socket. Every operation is bounded by `timeout`."""

    def __init__(self, addr, timeout=IO_TIMEOUT, connect=True):
        self.addr = addr
        self.timeout = timeout
        self.sock = None
        if connect:
            self.connect()

    def connect(self):
        family = socket.AF_INET6 if ":" in self.addr[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.connect(self.addr)
        self.r = BufferedSocket(self.sock)
        return self

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method="GET", target="/", headers=None, body=b"", host="test.local"):
        self.send(build_request(method, target, headers, body, host))
        return self.read_response(head_request=(method == "HEAD"))

    def read_head(self):
        """Reads one response head; returns (version, status, reason, headers, raw)."""
        head = self.r.read_until(b"\r\n\r\n", limit=1 << 20)
        first, headers = parse_head(head)
        parts = first.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ValueError("not an HTTP response: %r" % head[:200])
        return parts[0], int(parts[1]), (parts[2] if len(parts) > 2 else ""), headers, head

    def read_response(self, head_request=False, body_sink=None, keep_interim=False):
        """Reads one final response (skipping 1xx, which are kept in .interim).
        Raises Incomplete if the connection closes before the end of the body."""
        interim = []
        while True:
            try:
                version, status, reason, headers, head = self.read_head()
            except EOFError as e:
                raise Incomplete("closed before a response head", None) from e
            if 100 <= status < 200 and status != 101:
                interim.append((status, reason, headers))
                if keep_interim:
                    return Response(status, reason, headers, b"", head, version,
                                    interim=interim)
                continue
            break
        resp = Response(status, reason, headers, b"", head, version, interim=interim)
        if head_request or status in (101, 204, 304):
            return resp
        te = (header_get(headers, "Transfer-Encoding") or "").lower()
        cl = header_get(headers, "Content-Length")
        body = bytearray()

        def take(data):
            if body_sink:
                body_sink(data)
            else:
                body.extend(data)

        try:
            if "chunked" in te:
                while True:
                    line = self.r.read_until(b"\r\n").decode("latin-1").strip()
                    size = int(line.split(";")[0], 16)
                    if size == 0:
                        while self.r.read_until(b"\r\n") != b"\r\n":
                            pass
                        break
                    remaining = size
                    while remaining:
                        piece = self.r.read_some(min(remaining, 262144))
                        take(piece)
                        remaining -= len(piece)
                    if self.r.read_exact(2) != b"\r\n":
                        raise ValueError("bad chunk terminator")
            elif cl is not None:
                remaining = int(cl)
                while remaining:
                    piece = self.r.read_some(min(remaining, 262144))
                    take(piece)
                    remaining -= len(piece)
            else:
                take(self.r.read_to_eof())
        except EOFError:
            resp.body = bytes(body)
            resp.complete = False
            raise Incomplete("closed in the middle of the body", resp)
        resp.body = bytes(body)
        return resp

    def wait_closed(self, timeout=None):
        """True if the peer closes (EOF or reset) within timeout, reading and
        discarding anything that arrives first. Returns (closed, extra_bytes)."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        extra = bytes(self.r.buf)
        self.r.buf.clear()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True, extra
                extra += data
        except (ConnectionResetError, BrokenPipeError):
            return True, extra
        except socket.timeout:
            return False, extra
        finally:
            try:
                self.sock.settimeout(old)
            except OSError:
                pass

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass


def read_response_or_close(client):
    """Reads a response; returns (Response or None, closed_without_response)."""
    try:
        return client.read_response(), False
    except Incomplete as e:
        return e.partial, e.partial is None
    except (ConnectionResetError, BrokenPipeError):
        return None, True


def wait_until(predicate, timeout=IO_TIMEOUT, interval=0.02):
    """Polls predicate until true or timeout (for state we cannot be notified of,
    e.g. whether a port still accepts). Returns the final value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def connect_refused(addr):
    """True if a TCP connect to addr is refused (or reset straight away)."""
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(addr)
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    except OSError:
        return False
    finally:
        s.close()
    return False


def listening_sockets(pid, port):
    """Number of the process's file descriptors that are TCP sockets listening on
    `port` (from /proc/PID/net/tcp{,6} and /proc/PID/fd)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except FileNotFoundError:
            pass
    count = 0
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m and m.group(1) in inodes:
            count += 1
    return count


def main():
    """Entry point for test files: `python3 test_x.py [-v]`."""
    unittest.main(verbosity=2)
