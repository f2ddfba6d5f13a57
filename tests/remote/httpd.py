#!/usr/bin/env python3
"""Loopback HTTP servers for the remote-read tests and the remote benchmark.

Only 127.0.0.1 is ever used: every server here binds it, and nothing here
connects anywhere else.

- Nginx: Debian's nginx (nginx-light) serving a directory with Range support
  (single and multi-range), started in the foreground (`daemon off`, one
  process) from a config written into a temp dir, on a free port.  Its access
  log records "$request" and "$http_range" per request, so tests count the
  requests a read made.  /status500/... and /status503/... always answer
  500 / 503 (GDAL retries those), anything missing is a plain 404.
- Quirky: a tiny threaded Python server for what nginx cannot do on demand:
    /slow/<ms>/<from>/<file>     sleeps <ms> before answering a request whose
                                 range starts at byte <from> or later
    /truncate/<from>/<file>      answers such a ranged GET with the right
                                 headers but half the body, then closes
    /fail/<code>/<from>/<file>   answers such a request with status <code>
    /flaky/<n>/<file>            answers 503 to the first <n> requests for
                                 that path, then serves it (retries that win)
    /stall/<from>/<file>         holds the first such request of that path
                                 (query included) until release() (or the
                                 command line's "release" line); later ones
                                 are served at once.  stalled (an Event) is
                                 set when it holds one (the command line
                                 prints "stalled <path>")
    /shift/<from>/<file>         answers such a request with 206 and the
                                 bytes one further on, Content-Range saying so
                                 (a proxy that mixed up answers: never pixels)
    /once/<how>/<from>/<file>    fails the first such request of that path
                                 once, then serves it: <how> is "reset" (the
                                 connection is reset after the headers),
                                 "short" (half the body, then close) or a
                                 status code
  With <from> 0 every request is affected; with <from> past the header
  (e.g. 65536) the open succeeds and the pixel reads misbehave.
  It keeps its own request log in memory, in the same shape as Nginx's.

Command line (for the Check suites and shell use):
    python3 tests/remote/httpd.py nginx --root data/fixtures
prints "port <N>" and serves until its stdin closes or it gets SIGTERM; the
quirky server also reads commands from stdin, one a line ("release").
Standard library only, so the system python3 can run it.
"""

import argparse
import http.server
import os
import re
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HOST = "127.0.0.1"

# One line per request: time, "$request", status, "$http_range", body bytes,
# connection serial number (which requests shared a keep-alive connection).
_LOG_FORMAT = '$msec "$request" $status "$http_range" $body_bytes_sent $connection'
_LOG_RE = re.compile(r'^(\S+) "(\S+) (\S+)[^"]*" (\d+) "([^"]*)" (\d+)(?: (\d+))?$')

_NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 512; }}
http {{
    log_format rl '{log_format}';
    access_log {dir}/access.log rl;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    types {{ image/tiff tif tiff; application/json json; }}
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    server {{
        listen {host}:{port};
        server_name localhost;
        root {root};
        location / {{ }}
        location /status500/ {{ return 500; }}
        location /status503/ {{ return 503; }}
    }}
}}
"""


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_listening(port, proc=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def parse_log_line(line):
    """{'t', 'method', 'path', 'status', 'range', 'nbytes', 'conn'} of one access-log line, or None."""
    m = _LOG_RE.match(line.strip())
    if not m:
        return None
    return {"t": float(m.group(1)), "method": m.group(2), "path": m.group(3),
            "status": int(m.group(4)), "range": "" if m.group(5) == "-" else m.group(5),
            "nbytes": int(m.group(6)), "conn": int(m.group(7) or 0)}


def range_count(header):
    """Byte ranges in one Range header ('bytes=0-9,20-29' is 2; none is 0)."""
    if not header or not header.startswith("bytes="):
        return 0
    return len(header[len("bytes="):].split(","))


_SYNC_PATH = "/__rl_sync__"        # the sentinel request of Nginx.settle(), never counted


class _LogMixin:
    """mark() / requests(since): the request log as dicts, for counting.
    Each server says when its log is complete without a clock: the Python
    server logs a request before it answers it, and Nginx.settle() sends a
    sentinel request (one worker, one event loop: every request answered
    before it has been logged by the time it is served).  Timeouts here are
    deadlock guards only."""

    def mark(self):
        """The number of requests logged so far; pass it to requests() later."""
        return len(self._entries())

    def requests(self, since=0):
        return [r for r in self._entries()[since:] if r["path"] != _SYNC_PATH]

    def settle(self):
        """Once every request answered so far is in the log: returns mark()."""
        self._sync()
        return self.mark()

    def _sync(self):
        pass

    def wait_logged(self, n=None, timeout=None):
        """Kept for its callers: the log holds every answered request once
        settle() returns, so there is nothing to wait for (n, timeout unused)."""
        self.settle()


class Nginx(_LogMixin):
    """Debian's nginx serving 'root' on 127.0.0.1:<free port>.  Use as a
    context manager or call start()/stop()."""

    def __init__(self, root, workdir=None):
        self.root = os.path.abspath(root)
        self._own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="rl-nginx-")
        self.port = None
        self.proc = None
        self.binary = shutil.which("nginx") or "/usr/sbin/nginx"

    @staticmethod
    def available():
        return shutil.which("nginx") is not None or os.path.exists("/usr/sbin/nginx")

    def start(self):
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        last = ""
        for _ in range(5):          # a free port can be taken between bind and listen
            self.port = free_port()
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(_NGINX_CONF.format(dir=self.dir, host=HOST, port=self.port, root=self.root,
                                           log_format=_LOG_FORMAT))
            open(self.access_log, "w").close()
            self.proc = subprocess.Popen(
                [self.binary, "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if _wait_listening(self.port, self.proc):
                return self
            last = self._stop_proc()
        raise RuntimeError(f"nginx did not start: {last}")

    def _stop_proc(self):
        err = ""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()           # SIGTERM: nginx's fast shutdown
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None
        return err

    def stop(self):
        self._stop_proc()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def access_log(self):
        return os.path.join(self.dir, "access.log")

    @property
    def error_log(self):
        return os.path.join(self.dir, "error.log")

    def url(self, name=""):
        return f"http://{HOST}:{self.port}/{name.lstrip('/')}"

    def _entries(self):
        with open(self.access_log) as f:
            lines = f.readlines()
        return [r for r in (parse_log_line(x) for x in lines) if r is not None]

    def _sync(self):
        # nginx logs a request when it finishes answering it, in the same
        # pass of its single event loop, so it has logged every request
        # answered before it reads this one.
        try:
            urllib.request.urlopen(self.url(_SYNC_PATH), timeout=60).close()
        except urllib.error.HTTPError:
            pass                        # the 404 is the answer


class _QuirkyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _log(self, status, nbytes):
        with self.server.lock:
            self.server.log.append({"t": time.time(), "method": self.command, "path": self.path,
                                    "status": status, "range": self.headers.get("Range", ""),
                                    "nbytes": nbytes})

    # Every answer is logged before it is sent: a client that has its answer
    # finds its request in the log (see _LogMixin).

    def _error(self, status):
        body = f"{status}\n".encode()
        self._log(status, len(body))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self._serve()

    def do_GET(self):
        self._serve()

    def _first_time(self):
        """True for the first ranged GET of this path (query included)."""
        if self.command != "GET":
            return False
        with self.server.lock:
            seen = self.server.once.get(self.path, 0)
            self.server.once[self.path] = seen + 1
        return seen == 0

    def _reset(self, path, start, m):
        """Headers of a good answer, a few body bytes, then a TCP reset
        (SO_LINGER 0: the close sends RST, not FIN)."""
        size = os.path.getsize(path)
        end = min(int(m.group(2) or size - 1), size - 1)
        self.send_response(206)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        self.wfile.write(b"\0" * min(16, end - start))
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._log(0, 0)           # 0: reset, no status sent complete
        self.close_connection = True
        self.connection.close()

    def _serve(self):
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        mode, name = parts[0], parts[-1]
        path = os.path.join(self.server.root, os.path.basename(name))
        rng = self.headers.get("Range", "")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
        start = int(m.group(1)) if m else 0
        truncate = False
        try:
            if mode == "slow" and len(parts) == 4:
                if start >= int(parts[2]):
                    time.sleep(int(parts[1]) / 1000.0)
            elif mode == "truncate" and len(parts) == 3:
                truncate = m is not None and start >= int(parts[1])
            elif mode == "fail" and len(parts) == 4:
                if start >= int(parts[2]):
                    return self._error(int(parts[1]))
            elif mode == "stall" and len(parts) == 3:
                if m is not None and start >= int(parts[1]) and self._first_time():
                    self.server.on_stall(self.path)
                    self.server.release_event.wait()
            elif mode == "shift" and len(parts) == 3:
                if m is not None and start >= int(parts[1]):
                    start += 1
                    m = re.fullmatch(r"bytes=(\d+)-(\d*)", f"bytes={start}-{int(m.group(2)) + 1 if m.group(2) else ''}")
            elif mode == "once" and len(parts) == 4:
                if m is not None and start >= int(parts[2]) and self._first_time():
                    how = parts[1]
                    if how == "reset":
                        return self._reset(path, start, m)
                    if how == "short":
                        truncate = True
                    else:
                        return self._error(int(how))
            elif mode == "flaky" and len(parts) == 3:
                with self.server.lock:
                    seen = self.server.flaky.get(self.path, 0)
                    self.server.flaky[self.path] = seen + 1
                if seen < int(parts[1]):
                    return self._error(503)
            else:
                return self._error(404)
        except ValueError:
            return self._error(404)
        if not os.path.isfile(path):
            return self._error(404)
        size = os.path.getsize(path)
        if rng and not m:
            return self._error(416)         # multi-range: not needed for these behaviours
        end = min(int(m.group(2) or size - 1), size - 1) if m else size - 1
        if start >= size:
            return self._error(416)
        n = end - start + 1
        data = b""
        if self.command == "GET":
            with open(path, "rb") as f:
                f.seek(start)
                data = f.read(n)
            if truncate:
                data = data[: n // 2]
        self._log(206 if m else 200, len(data))
        self.send_response(206 if m else 200)
        self.send_header("Content-Length", str(n))
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Accept-Ranges", "bytes")
        if m:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            pass                            # the client gave up (a timeout test)
        if truncate:
            self.wfile.flush()
            self.close_connection = True


class _QuirkyServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Quirky(_LogMixin):
    """The Python server for slow, truncated and flaky answers (see the module
    doc), serving files of 'root' on 127.0.0.1:<free port> from a thread."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.server = None
        self.thread = None
        self.port = None

    def start(self):
        self.server = _QuirkyServer((HOST, 0), _QuirkyHandler)
        self.server.root, self.server.log, self.server.flaky = self.root, [], {}
        self.server.once = {}
        self.server.lock = threading.Lock()
        self.server.release_event = threading.Event()
        self.server.on_stall = self._on_stall
        self.stalled = threading.Event()
        self.stalled_paths = []
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="quirky-httpd",
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def _on_stall(self, path):
        with self.server.lock:
            self.stalled_paths.append(path)
        self.stalled.set()
        if self.stall_hook is not None:
            self.stall_hook(path)

    stall_hook = None       # called with the path when a /stall/ request is held

    def release(self):
        """Let every held /stall/ request (and any later first one) go."""
        self.server.release_event.set()

    def stop(self):
        if self.server is not None:
            self.release()
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, path):
        return f"http://{HOST}:{self.port}/{path.lstrip('/')}"

    def _entries(self):
        with self.server.lock:
            return list(self.server.log)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["nginx", "quirky"])
    ap.add_argument("--root", required=True, help="directory to serve")
    ap.add_argument("--dir", help="nginx work dir (config, logs); default: a temp dir")
    a = ap.parse_args(argv)
    srv = (Nginx(a.root, a.dir) if a.kind == "nginx" else Quirky(a.root)).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    def stdin_commands():
        # One command a line ("release": let held /stall/ requests go); EOF stops.
        try:
            for line in sys.stdin:
                if line.strip() == "release" and isinstance(srv, Quirky):
                    srv.release()
        except (OSError, ValueError):
            pass
        done.set()

    if isinstance(srv, Quirky):
        srv.stall_hook = lambda path: print(f"stalled {path}", flush=True)
    threading.Thread(target=stdin_commands, daemon=True).start()
    print(f"port {srv.port}", flush=True)
    if isinstance(srv, Nginx):
        print(f"log {srv.access_log}", flush=True)
    try:
        done.wait()
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
