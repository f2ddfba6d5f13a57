"""A loopback HTTP server that records the headers of every request.

For the tests of what rasterloader's GDAL sends (rasterio.Env options: user
agent, extra headers, S3 credentials) and of servers that ignore Range:

    with RecordingServer(root) as srv:          # 127.0.0.1, a free port
        url = srv.url("any/prefix/file.tif")    # serves root/file.tif
        ...
        srv.requests("any/prefix/")             # [{method, path, range, headers}]

Any path is served as the file of its last component (so a test gets fresh
URLs, which GDAL's process-wide /vsicurl/ cache has never seen, by changing
the prefix).  Single ranges are answered with 206; ``ranges=False`` answers
every GET with the whole file and 200, as a server without Range support
does.  Standard library only; binds 127.0.0.1 and never connects anywhere.
"""

import http.server
import os
import re
import socketserver
import threading

HOST = "127.0.0.1"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_HEAD(self):
        self._serve()

    def do_GET(self):
        self._serve()

    def _send(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command == "GET" and body:
            try:
                self.wfile.write(body)
            except OSError:          # the client stopped reading (GDAL on a 200)
                self.close_connection = True

    def _serve(self):
        srv = self.server
        with srv.lock:
            srv.log.append({"method": self.command, "path": self.path,
                            "range": self.headers.get("Range", ""),
                            "headers": {k.lower(): v for k, v in self.headers.items()}})
        name = os.path.basename(self.path.split("?", 1)[0])
        path = os.path.join(srv.root, name)
        if not name or not os.path.isfile(path):
            return self._send(404, [("Content-Length", "0")], b"")
        with open(path, "rb") as f:
            data = f.read()
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if m and srv.ranges:
            start = int(m.group(1))
            end = min(int(m.group(2) or len(data) - 1), len(data) - 1)
            if start >= len(data):
                return self._send(416, [("Content-Length", "0")], b"")
            body = data[start:end + 1]
            return self._send(206, [("Content-Length", str(len(body))), ("Accept-Ranges", "bytes"),
                                    ("Content-Range", f"bytes {start}-{end}/{len(data)}")], body)
        extra = [("Accept-Ranges", "bytes")] if srv.ranges else []
        self._send(200, [("Content-Length", str(len(data)))] + extra, data)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class RecordingServer:
    def __init__(self, root, *, ranges=True):
        self.root, self.ranges = os.path.abspath(root), ranges
        self.server = self.thread = None

    def start(self):
        self.server = _Server((HOST, 0), _Handler)
        self.server.root, self.server.ranges = self.root, self.ranges
        self.server.log, self.server.lock = [], threading.Lock()
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="recording-httpd",
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoint(self):
        return f"{HOST}:{self.port}"

    def url(self, path):
        return f"http://{self.endpoint}/{path.lstrip('/')}"

    def requests(self, prefix=""):
        """The requests so far whose path starts with /prefix."""
        want = "/" + prefix.lstrip("/")
        with self.server.lock:
            return [r for r in self.server.log if r["path"].startswith(want)]
