#!/usr/bin/env python3
"""How long os.fork() takes while another thread's remote read is stalled.

A thread reads a window of a COG from the quirky loopback server
(tests/remote/httpd.py, 127.0.0.1 only), whose first tile request is held;
once the server holds it, the main thread forks (the child exits at once)
and the time fork() took is printed.  GDAL_HTTP_TIMEOUT (default here 5 s)
bounds the read, so a fork that waits for the read returns after it gives
up instead of never.  A measurement, not a test:

    RASTER_FIXTURES=data/fixtures .venv/bin/python tests/remote/fork_latency.py [--reader native|gdal]
"""

import argparse
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import httpd  # noqa: E402

COG = "cog_u16_deflate_pred2_tile256_pixel_3b_1024x1024.tif"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reader", default="native", choices=["native", "gdal"])
    ap.add_argument("--timeout", default="5", help="GDAL_HTTP_TIMEOUT, seconds")
    a = ap.parse_args()
    os.environ.update({"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": "0",
                       "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif", "GDAL_HTTP_TIMEOUT": a.timeout})
    os.environ.setdefault("RASTERLOADER_TILE_CACHE_SHARED", "0")     # a private cache: no /dev/shm
    import rasterloader
    root = os.environ.get("RASTER_FIXTURES", os.path.join(HERE, "..", "..", "data", "fixtures"))
    with httpd.Quirky(root) as srv:
        ds = rasterloader.open(srv.url(f"stall/65536/{COG}?fork-latency"), reader=a.reader)
        outcome = []

        def read():
            try:
                ds.read(window=((512, 768), (512, 768)))
                outcome.append("read ok")
            except Exception as e:                  # the timeout, for a measurement
                outcome.append(f"read failed: {type(e).__name__}")

        t = threading.Thread(target=read)
        t.start()
        if not srv.stalled.wait(30):
            sys.exit("the read never reached the server")
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        took = time.monotonic() - t0
        os.waitpid(pid, 0)
        srv.release()
        t.join()
        print(f"reader={a.reader} GDAL_HTTP_TIMEOUT={a.timeout}: fork() took {took * 1000:.1f} ms "
              f"({outcome[0] if outcome else 'read still running'})")


if __name__ == "__main__":
    main()
