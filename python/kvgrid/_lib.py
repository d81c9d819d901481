"""The C library, loaded with ctypes: where it is found, and the structs and prototypes of
include/kvgrid.h mirrored for Python.

Why ctypes (and not cffi or a compiled extension): it is in the standard library, needs no
build step and no compiler on the user's machine, so the same files run from the source tree
(``PYTHONPATH=python``) and after ``pip install ./python``.  Every foreign call made through a
``ctypes.CDLL`` releases the GIL for its duration, so a blocking grid call never stalls other
Python threads.  The one thing ctypes does badly, a C callback into Python from a grid thread
(it must take the GIL there), is avoided altogether: completions are signalled through an
eventfd by ``kvg_done_eventfd``, a C function of libkvgrid (KVGRID_1.1).

The library is looked for, in order:
  1. ``$KVGRID_LIB``: a path to libkvgrid.so.1 (or any file name);
  2. next to this package: ``kvgrid/libkvgrid.so.1`` (a wheel or a copy that ships it);
  3. the source tree's build: ``<repo>/build/libkvgrid.so.1`` when the package runs from
     ``<repo>/python``;
  4. the system's loader path: ``libkvgrid.so.1`` (``make install``, then ldconfig).
"""
import ctypes
import os

SONAME = "libkvgrid.so.1"
NEED_MINOR = 1  # kvg_done_eventfd

KEY_BYTES = 32
NAME_MAX = 128
TIER_COUNT = 2


class Config(ctypes.Structure):
    """struct kvg_config, field for field (the size-field pattern: the library reads
    ``size`` bytes of it, so this mirror stays valid against newer libraries)."""
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("model_id", ctypes.c_char * NAME_MAX),
        ("tenant", ctypes.c_char * NAME_MAX),
        ("dtype", ctypes.c_uint32),
        ("layers", ctypes.c_uint32),
        ("kv_heads", ctypes.c_uint32),
        ("head_dim", ctypes.c_uint32),
        ("block_tokens", ctypes.c_uint32),
        ("hash", ctypes.c_uint32),
        ("dram_bytes", ctypes.c_uint64),
        ("chunk_bytes", ctypes.c_uint32),
        ("hugepages", ctypes.c_int),
        ("mlock", ctypes.c_int),
        ("dir", ctypes.c_char * 4096),
        ("nvme_bytes", ctypes.c_uint64),
        ("segment_bytes", ctypes.c_uint64),
        ("io_backend", ctypes.c_uint32),
        ("queue_depth", ctypes.c_uint32),
        ("io_threads", ctypes.c_uint32),
        ("durability", ctypes.c_uint32),
        ("io_error_limit", ctypes.c_uint32),
        ("degraded_retry_ms", ctypes.c_uint32),
        ("fault_plan", ctypes.c_char * 256),
        ("max_blocks", ctypes.c_uint64),
        ("max_value_bytes", ctypes.c_uint64),
        ("policy", ctypes.c_char * 32),
        ("demote_on_evict", ctypes.c_int),
        ("promote_on_hit", ctypes.c_int),
        ("nvme_admit_on_reuse", ctypes.c_int),
        ("write_through", ctypes.c_int),
        ("dram_free_bytes", ctypes.c_uint64),
        ("req_max", ctypes.c_uint32),
        ("workers", ctypes.c_uint32),
        ("servers", ctypes.c_char * 1024),
        ("auth_token_file", ctypes.c_char * 1024),
        ("timeout_ms", ctypes.c_uint32),
        ("log_file", ctypes.c_char * 1024),
        ("log_level", ctypes.c_int),
        # the shared tier (KVGRID 1.1, doc/SHARED.md)
        ("shared_dir", ctypes.c_char * 4096),
        ("shared_bytes", ctypes.c_uint64),
        ("shared_tenant_bytes", ctypes.c_uint64),
        ("shared_write_through", ctypes.c_int),
        ("shared_sync", ctypes.c_int),
        ("shared_threads", ctypes.c_uint32),
        ("shared_grace_s", ctypes.c_uint32),
        ("shared_touch_s", ctypes.c_uint32),
        ("shared_refresh_ms", ctypes.c_uint32),
        ("shared_cache_ms", ctypes.c_uint32),
        ("shared_demote", ctypes.c_int),
    ]


class Key(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint8 * KEY_BYTES)]


class IO(ctypes.Structure):
    """struct kvg_io: one block of a batch."""
    _fields_ = [
        ("key", Key),
        ("buf", ctypes.c_void_p),
        ("len", ctypes.c_size_t),
        ("depth", ctypes.c_uint32),
        ("status", ctypes.c_int),
        ("tier", ctypes.c_uint8),
    ]


class ReqOpts(ctypes.Structure):
    """struct kvg_req_opts; the callbacks are plain addresses (only C functions go there)."""
    _fields_ = [
        ("flags", ctypes.c_uint32),
        ("done", ctypes.c_void_p),
        ("layer_done", ctypes.c_void_p),
        ("arg", ctypes.c_void_p),
    ]


class TierStats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in (
        "capacity_bytes", "bytes", "blocks", "hits", "misses", "evictions", "bytes_read",
        "bytes_written", "checksum_failures", "io_errors", "promotions", "demotions")] + [
        ("degraded", ctypes.c_int),
        ("backend", ctypes.c_char * 16),
    ]


class Stats(ctypes.Structure):
    _fields_ = [("tier", TierStats * TIER_COUNT)] + [(n, ctypes.c_uint64) for n in (
        "lookups", "stores", "loads", "store_failures", "index_blocks", "index_capacity",
        "index_bytes", "recovery_us", "recovered_blocks")]


def _candidates():
    env = os.environ.get("KVGRID_LIB")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    repo_build = os.path.join(os.path.dirname(os.path.dirname(here)), "build", SONAME)
    return [os.path.join(here, SONAME), repo_build, SONAME]


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path + " (absent)")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("kvgrid: cannot load %s; tried %s. Build it (make) or set KVGRID_LIB "
                      "to its path." % (SONAME, "; ".join(tried)))


def _prototypes(lib):
    P, I, SZ, U64, V = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint64, None
    CP, IP = ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)
    SZP = ctypes.POINTER(ctypes.c_size_t)
    protos = {
        "kvg_version": (CP, [IP, IP, IP]),
        "kvg_strerror": (CP, [I]),
        "kvg_config_init_size": (I, [P, SZ]),
        "kvg_config_set": (I, [P, CP, CP, CP, SZ]),
        "kvg_config_load": (I, [P, CP, CP, SZ]),
        "kvg_config_block_bytes": (U64, [P]),
        "kvg_open": (I, [P, ctypes.POINTER(P), CP, SZ]),
        "kvg_close": (V, [P]),
        "kvg_config_of": (P, [P]),
        "kvg_block_keys": (SZ, [P, P, SZ, P, P, SZ]),
        "kvg_raw_key": (V, [P, CP, SZ, P]),
        "kvg_lookup": (I, [P, P, SZ, SZP]),
        "kvg_lookup_keys": (I, [P, P, SZ, SZP, P]),
        "kvg_store": (I, [P, P, SZ, P, ctypes.POINTER(P)]),
        "kvg_load": (I, [P, P, SZ, P, ctypes.POINTER(P)]),
        "kvg_req_poll": (I, [P]),
        "kvg_req_wait": (I, [P, I]),
        "kvg_req_free": (V, [P]),
        "kvg_store_sync": (I, [P, P, SZ, ctypes.c_uint32]),
        "kvg_load_sync": (I, [P, P, SZ, ctypes.c_uint32]),
        "kvg_pin": (I, [P, P, SZ]),
        "kvg_unpin": (I, [P, P, SZ]),
        "kvg_delete": (I, [P, P, SZ]),
        "kvg_prefetch": (I, [P, P, SZ]),
        "kvg_stats_get": (V, [P, P]),
        "kvg_tier_stats_get": (I, [P, I, P]),
    }
    for name, (res, args) in protos.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.kvg_version(ctypes.byref(major), ctypes.byref(minor), None)
    if major.value != 1 or minor.value < NEED_MINOR or not hasattr(lib, "kvg_done_eventfd"):
        raise ImportError("kvgrid: %s is version %d.%d; this package needs 1.%d or newer "
                          "(kvg_done_eventfd)" % (SONAME, major.value, minor.value, NEED_MINOR))


lib, path = _load()
_prototypes(lib)
# The address of kvg_done_eventfd, for kvg_req_opts.done: a C function, so no Python code
# runs on a grid thread when a request completes.
DONE_EVENTFD = ctypes.cast(lib.kvg_done_eventfd, ctypes.c_void_p).value


def strerror(rc):
    return lib.kvg_strerror(rc).decode()
