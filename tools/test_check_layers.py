#!/usr/bin/env python3
"""test_check_layers.py - tools/check_layers.py must reject what goes up.

Each case copies lib/ into a temporary directory, breaks one rule in the
copy (a header of a lower folder including a higher one, a private header
included from another folder, an include circle, struct raster_dataset in
the face header, libtiff in codec/, a call from api/ into a reader, a call
from common/ up into read/), and runs the checker on the copy: it must exit
1 and name the offence.  The unbroken copy must pass, so a case fails only
for the change it makes.  The call cases compile two-function objects with
`cc` into a fake build tree (the checker reads them with nm).  Run by
`make check-layers`; Python 3 standard library and cc only.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "check_layers.py")
LIB = os.path.join(HERE, "..", "lib")
OBJ_DIR = os.path.join("CMakeFiles", "rasterloader_obj.dir", "lib")


class CheckLayersRejects(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="check_layers_test.")
        self.lib = os.path.join(self.tmp, "lib")
        shutil.copytree(LIB, self.lib)
        self.build = os.path.join(self.tmp, "build")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def run_checker(self, *args):
        r = subprocess.run([sys.executable, CHECKER, "--lib", self.lib, *args],
                           capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr

    def append(self, rel, text):
        with open(os.path.join(self.lib, rel), "a") as f:
            f.write("\n" + text + "\n")

    def assert_includes_reject(self, *needles):
        rc, out = self.run_checker("--includes")
        self.assertEqual(rc, 1, out)
        for n in needles:
            self.assertIn(n, out)

    def obj(self, rel, source):
        """Compiles 'source' as the object of lib/<rel> in the fake build tree."""
        path = os.path.join(self.build, OBJ_DIR, rel + ".o")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        src = os.path.join(self.tmp, "x.c")
        with open(src, "w") as f:
            f.write(source)
        subprocess.run(["cc", "-c", "-o", path, src], check=True)

    # -------------------------------------------------------------- includes
    def test_the_copy_passes(self):
        rc, out = self.run_checker("--includes")
        self.assertEqual(rc, 0, out)

    def test_header_including_a_folder_above(self):
        self.append("common/common.h", '#include "read/read.h"')
        self.assert_includes_reject('lib/common/common.h includes "read/read.h" of read/, a folder above it')

    def test_private_header_of_another_folder(self):
        self.append("api/batch.c", '#include "read/reader.h"')
        self.assert_includes_reject('lib/api/batch.c includes "read/reader.h", private to read/')

    def test_include_circle(self):
        self.append("common/common.h", '#include "convert.h"')   # convert.h includes common.h
        self.assert_includes_reject("(a circle): common/common.h, common/convert.h")

    def test_dataset_struct_in_the_face_header(self):
        self.append("read/read.h", "struct raster_dataset { int x; };")
        self.assert_includes_reject("lib/read/read.h defines struct raster_dataset, private to read/")

    def test_libtiff_in_codec(self):
        self.append("codec/tiff_codec.c", "#include <tiffio.h>")
        self.assert_includes_reject("lib/codec/tiff_codec.c includes <tiffio.h>: codec/ may not use tiff")

    def test_readme_table_out_of_date(self):
        with open(os.path.join(self.lib, "README.md")) as f:
            text = f.read()
        with open(os.path.join(self.lib, "README.md"), "w") as f:
            f.write(text.replace("| `api/` |", "| `apis/` |"))
        self.assert_includes_reject("lib/README.md's folder table differs from FOLDERS")

    # -------------------------------------------------------------- calls
    def test_calls_down_through_the_face_pass(self):
        self.obj("read/dataset.c", "int raster__dataset_x(void) { return 1; }")
        self.obj("api/metadata.c", "int raster__dataset_x(void); int f(void) { return raster__dataset_x(); }")
        rc, out = self.run_checker(self.build)
        self.assertEqual(rc, 0, out)

    def test_entry_calling_a_reader(self):
        self.obj("read/gdal_reader.c", "int raster__gdal_x(void) { return 1; }")
        self.obj("api/metadata.c", "int raster__gdal_x(void); int f(void) { return raster__gdal_x(); }")
        rc, out = self.run_checker(self.build)
        self.assertEqual(rc, 1, out)
        self.assertIn("api/metadata.c -> read/gdal_reader.c: raster__gdal_x   "
                      "(read/gdal_reader.c is private to read/ (its face: dataset.c))", out)

    def test_call_up_into_a_folder_above(self):
        self.obj("read/dataset.c", "int raster__dataset_x(void) { return 1; }")
        self.obj("common/error.c", "int raster__dataset_x(void); int f(void) { return raster__dataset_x(); }")
        rc, out = self.run_checker(self.build)
        self.assertEqual(rc, 1, out)
        self.assertIn("common/error.c -> read/dataset.c: raster__dataset_x   "
                      "(common/ calls read/, a folder above it)", out)


if __name__ == "__main__":
    unittest.main()
