#!/usr/bin/env python3
"""A small HTTP/1.1 proxy on 127.0.0.1 that adds a fixed delay to every request.

    proxy = LatencyProxy(upstream_port=nginx.port, delay_ms=20).start()
    url = proxy.url("scene.tif")          # http://127.0.0.1:<port>/scene.tif
    ...
    proxy.stop()

It stands in for object storage: each request (HEAD or GET, single or
multi-range) waits 'delay_ms' before it is forwarded, which is the
time-to-first-byte that dominates COG reads from S3/GCS/Azure (tens of
milliseconds per request, whatever the size).  Request lines and headers,
Range included, are forwarded as they are, over one upstream keep-alive
connection per client connection; responses are relayed as they are.  The
upstream must answer with a Content-Length (nginx does for files, ranges and
errors).  Connections are concurrent (asyncio), so a client that keeps
several requests in flight sees the delay once per round, not once per
request: exactly what latency hiding is about.

Only 127.0.0.1 is used, for listening and for the upstream.
Standard library only.  Command line:
    python3 bench/remote/latency_proxy.py --upstream-port 8080 --delay-ms 20
"""

import argparse
import asyncio
import signal
import socket
import threading

HOST = "127.0.0.1"
_MAX_HEAD = 64 * 1024


class _Stats:
    def __init__(self):
        self.requests = 0
        self.lock = threading.Lock()


async def _read_head(reader):
    """The bytes of one HTTP message head (through the blank line), or b'' at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise ConnectionError("connection closed inside a message head") from None
        return b""
    if len(head) > _MAX_HEAD:
        raise ConnectionError("message head too large")
    return head


def _content_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            raise ConnectionError("chunked upstream responses are not supported")
    return None


async def _relay_body(reader, writer, n):
    while n > 0:
        chunk = await reader.read(min(n, 1 << 20))
        if not chunk:
            raise ConnectionError("upstream closed inside a body")
        writer.write(chunk)
        n -= len(chunk)
        await writer.drain()


class LatencyProxy:
    """Forward 127.0.0.1:<port> to 127.0.0.1:<upstream_port>, 'delay_ms' later
    per request.  start() runs the event loop in a daemon thread."""

    def __init__(self, upstream_port, delay_ms=20.0, port=0):
        self.upstream_port = int(upstream_port)
        self.delay = float(delay_ms) / 1000.0
        self.port = port
        self.stats = _Stats()
        self._loop = None
        self._server = None
        self._thread = None
        self._ready = threading.Event()

    # ---------------------------------------------------------------- control
    def start(self):
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("latency proxy did not start")
        return self

    def stop(self):
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, name=""):
        return f"http://{HOST}:{self.port}/{name.lstrip('/')}"

    @property
    def requests(self):
        with self.stats.lock:
            return self.stats.requests

    # ---------------------------------------------------------------- serving
    def _run(self):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self.port))
        self.port = sock.getsockname()[1]
        self._server = loop.run_until_complete(
            asyncio.start_server(self._client, sock=sock, backlog=256))
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            tasks = asyncio.all_tasks(loop)
            for t in tasks:
                t.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    async def _client(self, creader, cwriter):
        up_reader = up_writer = None
        try:
            while True:
                head = await _read_head(creader)
                if not head:
                    break
                n = _content_length(head)       # request bodies: none for GET/HEAD
                body = await creader.readexactly(n) if n else b""
                with self.stats.lock:
                    self.stats.requests += 1
                await asyncio.sleep(self.delay)
                if up_writer is None:
                    up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
                up_writer.write(head + body)
                await up_writer.drain()
                rhead = await _read_head(up_reader)
                if not rhead:
                    raise ConnectionError("upstream closed")
                cwriter.write(rhead)
                is_head = head.split(b" ", 1)[0].upper() == b"HEAD"
                status = int(rhead.split(b" ", 2)[1])
                rn = _content_length(rhead)
                if not is_head and status not in (204, 304) and rn:
                    await _relay_body(up_reader, cwriter, rn)
                await cwriter.drain()
                if b"\r\nconnection: close" in rhead.lower():
                    break
        except (ConnectionError, asyncio.IncompleteReadError, OSError, ValueError, IndexError,
                asyncio.CancelledError):
            pass
        finally:
            for w in (cwriter, up_writer):
                if w is not None:
                    w.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream-port", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args(argv)
    p = LatencyProxy(a.upstream_port, a.delay_ms, a.port).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(f"port {p.port}", flush=True)
    done.wait()
    p.stop()


if __name__ == "__main__":
    main()
