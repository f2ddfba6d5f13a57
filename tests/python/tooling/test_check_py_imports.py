"""tools/check_py_imports.py (run by `make test`): the package has no import
circle, and the check does fail on one, whether the circle's import sits at
module level or inside a function (the way _windows once reached _dataset)."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

TOOL = os.path.join(ROOT, "tools", "check_py_imports.py")
PACKAGE = os.path.join(ROOT, "bindings", "python", "rasterloader")


def run(package_dir):
    return subprocess.run([sys.executable, TOOL, package_dir], capture_output=True, text=True,
                          timeout=120)


def test_the_package_has_no_import_circle():
    proc = run(PACKAGE)
    assert proc.returncode == 0, proc.stderr
    assert "no circle" in proc.stdout


@pytest.mark.parametrize("added", [
    # a lazy import inside a function is still the circle
    "\n\ndef _meta(path):\n    from ._dataset import open as rl_open\n    return rl_open(path)\n",
    "\nfrom . import _dataset  # noqa\n",
    "\nimport rasterloader._dataset  # noqa\n",
])
def test_a_circle_fails_the_check(tmp_path, added):
    pkg = tmp_path / "rasterloader"
    shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    with open(pkg / "_windows.py", "a") as f:
        f.write(added)
    proc = run(str(pkg))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "_dataset" in proc.stderr and "_windows" in proc.stderr


def test_through_the_package_init_is_a_circle(tmp_path):
    """A module importing a name from the package itself reaches __init__,
    which imports every module."""
    pkg = tmp_path / "rasterloader"
    shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    with open(pkg / "_args.py", "a") as f:
        f.write("\nfrom rasterloader import Dataset  # noqa\n")
    proc = run(str(pkg))
    assert proc.returncode == 1 and "__init__" in proc.stderr, proc.stdout + proc.stderr
