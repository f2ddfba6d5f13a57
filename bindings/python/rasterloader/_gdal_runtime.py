"""One GDAL per process: the one rasterio loaded.

The extension ``_core`` is compiled against Debian's GDAL 3.6, libtiff,
libzstd, libdeflate and libcurl headers but linked with none of them (no
DT_NEEDED, see bindings/python/CMakeLists.txt): its calls into those
libraries are undefined symbols that the dynamic linker binds when ``_core``
is loaded.  This module runs before that load and makes the copies rasterio's
GDAL already brought into the process (the wheel's ``rasterio.libs/``,
conda's, the system's: whatever rasterio was linked with) visible to it:

1. ``import rasterio`` (a runtime dependency), which maps its libgdal and
   the libraries that libgdal needs;
2. the one libgdal mapped, read from ``/proc/self/maps`` (never a file name
   guessed or hard-coded: the wheel's are hashed), and the libtiff, libzstd,
   libdeflate and libcurl that this libgdal itself was loaded with, by the
   names in its ELF ``DT_NEEDED`` list (and its libtiff's): ``dlopen(name,
   RTLD_NOLOAD)`` only finds a library already loaded, so no second copy can
   ever be mapped, and a libtiff some other package mapped (Pillow's) is
   never taken for GDAL's;
3. each of them re-opened ``RTLD_NOLOAD | RTLD_GLOBAL``, leaves first (see
   _promote): global symbols, which ``_core``'s undefined references bind
   to.  (glibc makes a library's own dependencies global with it, so all
   that rasterio's libgdal loaded becomes global, and binds the undefined
   symbols of libraries loaded later that the main program does not define;
   symbol-versioned ones, such as Pillow's libjpeg, still bind each caller
   to the version it was built for.)
4. the checks that turn a wrong GDAL into an ImportError naming what was
   found instead of a crash or an unresolved symbol later: GDAL's version
   within ``SUPPORTED`` (the 3.6 the headers are from up to the newest
   checked, that of rasterio's current wheels), the GTiff driver, and every
   key symbol bound to the library found in step 2 (not to another copy made
   global earlier by someone else).

The ABI across that range is the C library's business (docs/install.md).
"""

import ctypes
import os
import re
import struct

# GDAL versions _core runs on, as (major, minor), both ends included: the
# headers it is compiled with (Debian bookworm's 3.6) and the newest GDAL whose
# headers were checked against those (rasterio 1.4.4's wheel: 3.10).
SUPPORTED = ((3, 6), (3, 10))

# Library families _core calls into, and one symbol of each that must bind to
# the copy GDAL loaded.
_FAMILIES = {
    "gdal": "GDALVersionInfo",
    "tiff": "TIFFGetVersion",
    "zstd": "ZSTD_versionNumber",
    "deflate": "libdeflate_alloc_decompressor",
    "curl": "curl_multi_init",
}
_FAMILY_RE = re.compile(r"^lib(gdal|tiff|zstd|deflate|curl)(?:[-.]|$)")

_INSTALL_HINT = "pip install 'rasterio>=1.4' (its wheel brings GDAL %d.%d..%d.%d)" % (
    SUPPORTED[0] + SUPPORTED[1])


def _family(name):
    m = _FAMILY_RE.match(os.path.basename(name))
    return m.group(1) if m else None


def mapped_paths(family):
    """Paths of the ``lib<family>`` files mapped in this process, in order."""
    seen = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(None, 5)
            if len(fields) < 6:
                continue
            path = fields[5].rstrip("\n")
            if path.startswith("/") and _family(path) == family and path not in seen:
                seen.append(path)
    return seen


def _elf_needed(path):
    """The DT_NEEDED names of the ELF64 little-endian shared object at path."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:                     # PT_LOAD
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:                   # PT_DYNAMIC
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []
    needed, strtab = [], None
    for off in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, val = struct.unpack_from("<qQ", data, off)
        if tag == 0:                        # DT_NULL
            break
        if tag == 1:                        # DT_NEEDED
            needed.append(val)
        elif tag == 5:                      # DT_STRTAB (an address)
            strtab = next((val - va + fo for va, fo, sz in loads if va <= val < va + sz), None)
    if strtab is None:
        return []
    return [data[strtab + n:data.index(b"\0", strtab + n)].decode() for n in needed]


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


_libdl = ctypes.CDLL(None)
_libdl.dladdr.argtypes = (ctypes.c_void_p, ctypes.POINTER(_DlInfo))
_libdl.dlsym.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
_libdl.dlsym.restype = ctypes.c_void_p


def _file_of(address):
    info = _DlInfo()
    if not address or not _libdl.dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.path.realpath(info.dli_fname.decode())


def _loaded(name, mode=0):
    """dlopen(name, RTLD_NOLOAD | mode): the copy already loaded under that name
    or path, or None when there is none (nothing is ever loaded)."""
    try:
        return ctypes.CDLL(name, mode=os.RTLD_NOLOAD | mode)
    except OSError:
        return None


def _import_rasterio():
    try:
        import rasterio  # noqa: F401  (maps the GDAL rasterloader runs on)
    except ImportError as e:
        raise ImportError(
            "rasterloader runs on the GDAL that rasterio loads, and rasterio cannot be "
            "imported (%s): %s" % (e, _INSTALL_HINT)) from e
    return rasterio


def _find_gdal():
    paths = mapped_paths("gdal")
    if len(paths) != 1:
        raise ImportError(
            "rasterloader needs exactly one libgdal in the process after 'import rasterio'; "
            "found %s: %s" % (len(paths), ", ".join(paths) or "none (a rasterio without a shared GDAL?)"))
    return paths[0]


def _gdal_tree(gdal_path):
    """{family: path} of the libraries GDAL at gdal_path was loaded with: its
    DT_NEEDED names, and its libtiff's, resolved among the loaded copies."""
    found = {"gdal": os.path.realpath(gdal_path)}
    pending = [gdal_path]
    while pending:
        for name in _elf_needed(pending.pop()):
            fam = _family(name)
            if fam is None or fam in found:
                continue
            lib = _loaded(name)
            path = lib and _file_of(_libdl.dlsym(lib._handle, _FAMILIES[fam].encode()))
            if path:
                found[fam] = path
                if fam == "tiff":
                    pending.append(path)
    return found


def _gdal_version(gdal):
    gdal.GDALVersionInfo.restype = ctypes.c_char_p
    gdal.GDALVersionInfo.argtypes = (ctypes.c_char_p,)
    num = int(gdal.GDALVersionInfo(b"VERSION_NUM"))
    release = gdal.GDALVersionInfo(b"RELEASE_NAME").decode()
    # GDAL_COMPUTE_VERSION: major*1000000 + minor*10000 + rev*100 (>= 2.0).
    return (num // 1000000, num // 10000 % 100), release


def _promote(libraries):
    """RTLD_GLOBAL for each library, GDAL last.  Order matters: glibc makes a
    library's dependencies global with it, in its DT_NEEDED order, and some of
    GDAL's carry private copies of these symbols (the wheel's libblosc exports
    ZSTD_*, ahead of libzstd in libgdal's list), so the leaves go first and
    the first global definition of each symbol is the real library's."""
    for fam in sorted(libraries, key=lambda f: f == "gdal"):
        _loaded(libraries[fam], os.RTLD_GLOBAL)


def load():
    """Make rasterio's GDAL global for _core; returns {"gdal_version": "3.10.3",
    "libraries": {family: path}}.  ImportError when that GDAL cannot serve;
    nothing is made global before the version is known to be supported."""
    rasterio = _import_rasterio()
    gdal_path = _find_gdal()
    gdal = _loaded(gdal_path)
    if gdal is None:
        raise ImportError("rasterloader: %s is mapped but dlopen(RTLD_NOLOAD) does not find it" % gdal_path)
    version, release = _gdal_version(gdal)
    if not SUPPORTED[0] <= version <= SUPPORTED[1]:
        raise ImportError(
            "rasterloader supports GDAL %d.%d to %d.%d; rasterio %s runs on GDAL %s (%s): %s"
            % (SUPPORTED[0] + SUPPORTED[1] + (rasterio.__version__, release, gdal_path, _INSTALL_HINT)))
    libraries = _gdal_tree(gdal_path)
    missing = sorted(set(_FAMILIES) - set(libraries))
    if missing:
        raise ImportError(
            "rasterloader: the GDAL rasterio loaded (%s) was not loaded with lib%s, which "
            "rasterloader needs too; %s" % (gdal_path, ", lib".join(missing), _INSTALL_HINT))
    _promote(libraries)
    for fam, symbol in _FAMILIES.items():
        bound = _file_of(_libdl.dlsym(None, symbol.encode()))
        if bound != libraries[fam]:
            raise ImportError(
                "rasterloader: %s would bind to %s, not to the lib%s GDAL uses (%s): another "
                "copy was made global before rasterloader was imported" % (symbol, bound, fam, libraries[fam]))
    gdal.GDALAllRegister()
    gdal.GDALGetDriverByName.restype = ctypes.c_void_p
    if not gdal.GDALGetDriverByName(b"GTiff"):
        raise ImportError("rasterloader: the GDAL rasterio loaded (%s, %s) has no GTiff driver; %s"
                          % (release, gdal_path, _INSTALL_HINT))
    return {"gdal_version": release, "libraries": libraries}
