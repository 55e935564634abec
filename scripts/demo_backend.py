#!/usr/bin/env python3
"""A tiny demo backend: `demo_backend.py NAME PORT [HOST]`.

Answers every request (HTTP/1.1, keep-alive) with `hello from NAME` and a JSON line of
what it received: method, path, and the headers a proxy adds. Standard library only.
"""

import http.server
import json
import sys


def main():
    if len(sys.argv) < 3:
        sys.stderr.write("usage: demo_backend.py NAME PORT [HOST]\n")
        return 2
    name, port = sys.argv[1], int(sys.argv[2])
    host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "demo-" + name

        def answer(self, with_body=True):
            length = int(self.headers.get("Content-Length") or 0)
            received = self.rfile.read(length) if length else b""
            seen = {
                "backend": name,
                "method": self.command,
                "path": self.path,
                "host": self.headers.get("Host"),
                "x_forwarded_for": self.headers.get("X-Forwarded-For"),
                "x_forwarded_proto": self.headers.get("X-Forwarded-Proto"),
                "x_forwarded_host": self.headers.get("X-Forwarded-Host"),
                "via": self.headers.get("Via"),
                "body_bytes": len(received),
            }
            body = ("hello from %s\n%s\n" % (name, json.dumps(seen))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Backend", name)
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_HEAD(self):
            self.answer(with_body=False)

        def __getattr__(self, attr):
            if attr.startswith("do_"):
                return self.answer
            raise AttributeError(attr)

        def log_message(self, fmt, *args):
            sys.stderr.write("%s: %s\n" % (name, fmt % args))

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    sys.stderr.write("%s: listening on %s:%d\n" % (name, host, port))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
