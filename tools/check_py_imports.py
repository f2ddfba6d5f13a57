#!/usr/bin/env python3
"""check_py_imports.py - fail when the Python package's modules import each other in a circle.

The modules of bindings/python/rasterloader form a stack, as lib/ does
(tools/check_layers.py): window math and errors at the bottom, the Dataset
above them, the loaders and Mosaic above that, the package's __init__ on top.
A circle (A imports B, B imports A, directly or through others) means two
modules are one module split in two, and it makes import order matter.

Every import counts, at module level or inside a function: an import put in
a function to dodge the circle at import time is still the circle.  Edges
are read with `ast` from the source (nothing is imported):
    from . import x          -> x
    from .x import y         -> x
    from .x.y import z       -> x.y
    import rasterloader.x    -> x
    from rasterloader import y / from . import y where y is not a module
                             -> the package's __init__
The compiled extension (_core, EXTENSIONS) is a leaf with no source here.

Fails (exit 1) listing each circle, the modules in order.

Usage: tools/check_py_imports.py [PACKAGE_DIR]   (default: bindings/python/rasterloader)
Python 3 standard library only.
"""
import ast
import os
import sys

# Tarjan's strongly connected components, written once for both checkers.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_layers import cycles  # noqa: E402

PACKAGE = "rasterloader"
INIT = "__init__"
EXTENSIONS = ("_core",)     # compiled modules: import nothing of the package


def modules_of(package_dir):
    """{module name relative to the package: path} for every .py below package_dir."""
    mods = {}
    for root, _, files in os.walk(package_dir):
        for f in files:
            if not f.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(root, f), package_dir)[:-3].replace(os.sep, ".")
            name = INIT if rel == INIT else rel[:-len("." + INIT)] if rel.endswith("." + INIT) else rel
            mods[name] = os.path.join(root, f)
    for ext in EXTENSIONS:
        mods.setdefault(ext, None)
    return mods


def _resolve(base, mods):
    """The module a dotted name inside the package stands for: itself, or
    (a name imported from a module) its longest prefix that is a module."""
    parts = base.split(".") if base else []
    while parts:
        name = ".".join(parts)
        if name in mods:
            return name
        parts.pop()
    return INIT


def imports_of(name, path, mods):
    """The package modules that module 'name' (at 'path') imports."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    here = [] if name == INIT else name.split(".")[:-1]    # the module's own package
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == PACKAGE or a.name.startswith(PACKAGE + "."):
                    out.add(_resolve(a.name[len(PACKAGE) + 1:], mods))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                base = ".".join(pkg + ([node.module] if node.module else []))
            elif node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
                base = node.module[len(PACKAGE) + 1:]
            else:
                continue
            for a in node.names:
                # "from . import x" / "from .pkg import x": x may be a module itself.
                sub = f"{base}.{a.name}" if base else a.name
                out.add(sub if sub in mods else _resolve(base, mods))
    out.discard(name)
    return out


def path_in(graph, comp):
    """One circle through a component's first module, for the message."""
    start = comp[0]
    members = set(comp)
    prev, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    chain = [v]
                    while prev[chain[-1]] is not None:
                        chain.append(prev[chain[-1]])
                    return list(reversed(chain)) + [start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def main(argv):
    package_dir = argv[1] if len(argv) > 1 else os.path.join("bindings", "python", PACKAGE)
    mods = modules_of(package_dir)
    if not mods:
        print(f"check_py_imports: no Python modules under {package_dir}", file=sys.stderr)
        return 2
    graph = {name: imports_of(name, path, mods) if path else set() for name, path in mods.items()}
    bad = cycles(graph, graph)
    if bad:
        for comp in bad:
            print(f"import circle among {', '.join(comp)}: e.g. " + " -> ".join(path_in(graph, comp)),
                  file=sys.stderr)
        print(f"check_py_imports: {len(bad)} import circle(s) in {package_dir}", file=sys.stderr)
        return 1
    edges = sum(len(v) for v in graph.values())
    print(f"check_py_imports: {len(mods)} modules, {edges} imports, no circle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
