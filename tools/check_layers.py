#!/usr/bin/env python3
"""check_layers.py - fail when a lib/ file calls a file above it.

The library's layers, bottom to top, are listed once, in LAYERS below (the
README's Layout section points here).  A file may call files of the layers
below its own; inside one layer only the calls listed in SAME_LAYER.  The
calls are read from the build: `nm` of every lib/ object of the CMake
object library (build/CMakeFiles/rasterloader_obj.dir/lib/**/*.o), an
undefined symbol of A that B defines being a call A -> B.  Symbols only
reach another object when they are non-static, so static helpers and
static inline functions of headers are not calls between files: a header
helper's own calls are charged to the file that includes it.

Fails (exit 1) with the list of offending calls (A -> B: symbol), any cycle
between files, and any lib/ object whose file is not in LAYERS.  Files
listed but not built (a file another branch adds) are ignored.

Usage: tools/check_layers.py [BUILD_DIR]     (default: build)
       tools/check_layers.py --list          (the layers, one line each)
Python 3 standard library only.
"""
import os
import subprocess
import sys

# Bottom to top.  (name, files relative to lib/, what the layer is)
LAYERS = [
    ("errors", ["error.c"], "status codes, the thread-local message"),
    ("base", ["dtype.c", "convert.c", "options.c", "fork.c", "scratch.c"],
     "dtypes and their conversion kernels, the struct_size rule, the one fork handler (layers register their hooks with it), "
     "per-thread scratch"),
    ("views", ["place.c"], "views, dtype conversion, placing pixels"),
    ("process services", ["gdal_config.c", "threads.c", "pool.c", "shm_arena.c", "tile_cache.c"],
     "GDAL options scoped to a call, worker threads, buffer pools, the shared arena and the tile cache"),
    ("gdal env", ["gdal_env.c"], "the fork gate, GDAL errors, idle-handle stack, URL mapping"),
    ("codecs", ["tiff/tiff_codec.c"], "decoders and predictors; know nothing of TIFF"),
    ("http", ["tiff/tiff_http.c"], "HTTP range transfers with libcurl, waiting outside the fork gate"),
    ("byte sources", ["tiff/tiff_vsi.c", "tiff/tiff_io.c", "tiff/tiff_source.c"],
     "file bytes: pread or GDAL VSI behind one interface, and libtiff's client over it"),
    ("readers", ["tiff/tiff_layout.c", "tiff/tiff_read.c", "gdal_reader.c"],
     "the native TIFF reader, the GDAL reader"),
    ("mask rules", ["mask.c"], "rasterio's mask rules over both readers' pixels and GDAL's masks"),
    ("dataset", ["dataset.c"], "open/close, read entry points, the choice of reader"),
    ("entries", ["batch.c", "mosaic.c", "dlpack.c", "metadata.c", "warped_vrt.c"],
     "compositions of reads and exports on top of datasets and pools"),
]

# Calls allowed inside one layer (caller, callee).  Keep it short: a long
# list means the layer should be split.
SAME_LAYER = {
    ("threads.c", "gdal_config.c"),   # workers adopt the caller's GDAL options
    ("tile_cache.c", "shm_arena.c"),  # the cache's shared mode is the arena
}

LIB_OBJ_DIR = os.path.join("CMakeFiles", "rasterloader_obj.dir", "lib")


def layer_of():
    rank = {}
    for i, (name, files, _) in enumerate(LAYERS):
        for f in files:
            if f in rank:
                sys.exit(f"check_layers: {f} is listed twice in LAYERS")
            rank[f] = (i, name)
    for a, b in SAME_LAYER:
        if a not in rank or b not in rank or rank[a][0] != rank[b][0]:
            sys.exit(f"check_layers: SAME_LAYER ({a}, {b}) names files not in one layer")
    return rank


def objects(build_dir):
    """{'tiff/tiff_read.c': path of its .o} for lib/ files that still exist."""
    root = os.path.join(build_dir, LIB_OBJ_DIR)
    if not os.path.isdir(root):
        sys.exit(f"check_layers: no {root}: run `make build` first")
    src_root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib")
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            if not n.endswith(".c.o"):
                continue
            rel = os.path.relpath(os.path.join(d, n[:-2]), root)
            if os.path.exists(os.path.join(src_root, rel)):   # skip stale objects of removed files
                out[rel] = os.path.join(d, n)
    return out


def symbols(obj):
    """(defined, undefined) global symbol names of one object."""
    text = subprocess.run(["nm", "-P", obj], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind.isupper() and kind not in "N":   # global: T D B R C W V ...
            defined.add(name)
    return defined, undefined


def cycles(edges, nodes):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main(argv):
    if argv[1:2] == ["--list"]:
        for name, files, what in reversed(LAYERS):
            print(f"{name:18} {' '.join(files):62} {what}")
        return 0
    build_dir = argv[1] if len(argv) > 1 else "build"
    rank = layer_of()
    objs = objects(build_dir)
    errors = []
    unknown = sorted(f for f in objs if f not in rank)
    for f in unknown:
        errors.append(f"lib/{f} is in no layer: add it to the layer list in tools/check_layers.py")
    syms = {f: symbols(o) for f, o in objs.items()}
    owner = {}
    for f, (defined, _) in syms.items():
        for s in defined:
            owner[s] = f
    calls = {}   # (caller, callee) -> [symbols]
    for f, (_, undefined) in syms.items():
        for s in undefined:
            g = owner.get(s)
            if g is not None and g != f:
                calls.setdefault((f, g), []).append(s)
    bad = []
    for (a, b), names in sorted(calls.items()):
        if a not in rank or b not in rank:
            continue
        (ra, la), (rb, lb) = rank[a], rank[b]
        if rb > ra or (rb == ra and (a, b) not in SAME_LAYER):
            why = "same layer, not in SAME_LAYER" if rb == ra else f"{la} calls up into {lb}"
            bad.append(f"  {a} -> {b}: {', '.join(sorted(names))}   ({why})")
    if bad:
        errors.append(f"{len(bad)} call(s) against the layer order (tools/check_layers.py LAYERS):")
        errors.extend(bad)
    edges = {}
    for a, b in calls:
        edges.setdefault(a, set()).add(b)
    for comp in cycles(edges, objs):
        errors.append("files that reach each other through calls (a cycle): " + ", ".join(comp))
    if errors:
        for e in errors:
            print("check_layers: " + e if not e.startswith("  ") else e)
        return 1
    print(f"check_layers: {len(objs)} lib/ objects, {len(calls)} file-to-file call edges, "
          f"all down the {len(LAYERS)} layers")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
