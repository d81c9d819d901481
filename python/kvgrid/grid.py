"""kvgrid.Grid: a grid (embedded, or a client of kvgridd servers) driven from Python.

All the work happens in libkvgrid; this module turns Python objects into the C API's
arguments and its results into Python values:

- keys are 32-byte ``bytes`` (``KeyList`` holds many without copying them into Python
  objects until asked);
- buffers are anything with the buffer protocol (``bytearray``, ``memoryview``, numpy
  arrays, ``mmap``) or CPU ``torch.Tensor``s, passed to the library by address: no copy in
  Python.  Each is checked before any I/O (contiguous, writable for loads, on the CPU), and
  stays referenced by the request until it has completed;
- error codes become ``kvgrid.Error`` subclasses carrying ``kvg_strerror``'s message; a miss
  is a result (``None`` for that block), never an exception;
- every call that may block (open, close, store, load, lookup on a remote grid, waits) is a
  ctypes foreign call, which releases the GIL.

Asynchronous forms return a ``Future`` per batch.  Its completion is signalled through an
eventfd (``Grid.event_fd``, or one the caller passes) by libkvgrid's ``kvg_done_eventfd``, so
an event loop or a poller can wait on it and no Python code runs on a grid thread.
A ``Grid`` may be used by many threads at once, as the C API may; ``close()`` must not race
with other calls on the same grid.
"""
import array
import ctypes
import os
import threading
from collections import namedtuple

from . import _lib
from ._lib import lib

# ---- errors -----------------------------------------------------------------------------

EBASE = -30700
ENOTFOUND, ECORRUPT, ECONFIG, EFULL, ETOOBIG, EBUFSIZE, EDEGRADED, EBUSY, ECLOSED, EPROTO, \
    ETIMEDOUT, EAUTH, EINPROGRESS = (EBASE - i for i in range(13))

# request flags (kvgrid.h)
LOAD_NOPROMOTE = 0x2
STORE_NVME = 0x4
STORE_CONTINUES = 0x8
STORE_LAST = 0x10

TIER_NAMES = {0: "dram", 1: "nvme", 2: "shared"}
TIER_SHARED = 2
_TIER_OF_BYTE = [TIER_NAMES.get(b) for b in range(256)]


def _tier_dict(ts):
    """One tier's counters (struct kvg_tier_stats) as a dict."""
    d = {name: getattr(ts, name) for name, _ in _lib.TierStats._fields_}
    d["backend"] = d["backend"].decode()
    d["degraded"] = bool(d["degraded"])
    return d


class Error(Exception):
    """A kvgrid error: ``code`` is the library's value (a KVG_E* code or -errno), the
    message is kvg_strerror's, with what was being done; ``statuses`` holds the per-block
    results of a batch when the error came from one."""

    def __init__(self, code, what="", statuses=None, reason=""):
        self.code = code
        self.errno = -code if -4096 < code < 0 else None
        self.statuses = statuses
        msg = reason or _lib.strerror(code)  # the library's own sentence when it gave one
        super().__init__("%s: %s" % (what, msg) if what else msg)


class ConfigError(Error, ValueError):
    """A bad setting or configuration file (KVG_ECONFIG), with the library's reason."""


class FullError(Error):
    """No tier can place the block (KVG_EFULL)."""


class TooBigError(Error, ValueError):
    """A value larger than the tier's limit (KVG_ETOOBIG)."""


class BufferSizeError(Error, ValueError):
    """A load buffer smaller than the stored block (KVG_EBUFSIZE)."""


class DegradedError(Error):
    """A tier disabled after repeated I/O errors (KVG_EDEGRADED)."""


class BusyError(Error):
    """req_max requests are in flight (KVG_EBUSY): retry after completions."""


class ClosedError(Error):
    """The grid is closing or closed (KVG_ECLOSED)."""


class ProtocolError(Error):
    """A kvgridd server spoke an invalid protocol (KVG_EPROTO)."""


class RemoteTimeoutError(Error, TimeoutError):
    """A kvgridd request timed out (KVG_ETIMEDOUT)."""


class AuthError(Error, PermissionError):
    """A kvgridd server refused the credentials (KVG_EAUTH)."""


_ERRORS = {ECONFIG: ConfigError, EFULL: FullError, ETOOBIG: TooBigError,
           EBUFSIZE: BufferSizeError, EDEGRADED: DegradedError, EBUSY: BusyError,
           ECLOSED: ClosedError, EPROTO: ProtocolError, ETIMEDOUT: RemoteTimeoutError,
           EAUTH: AuthError}
MISS = (ENOTFOUND, ECORRUPT)  # both are served as a miss


def error(code, what="", statuses=None, reason=""):
    """The exception for a library result code."""
    return _ERRORS.get(code, Error)(code, what, statuses, reason)


def _check(rc, what):
    if rc < 0:
        raise error(rc, what)
    return rc


# ---- buffers ------------------------------------------------------------------------------


class _PyBuffer(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p),
                ("len", ctypes.c_ssize_t), ("itemsize", ctypes.c_ssize_t),
                ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                ("format", ctypes.c_char_p), ("shape", ctypes.c_void_p),
                ("strides", ctypes.c_void_p), ("suboffsets", ctypes.c_void_p),
                ("internal", ctypes.c_void_p)]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]
_release_buffer.restype = None
_PYBUF_C_CONTIGUOUS = 0x0038
_PYBUF_WRITABLE = 0x0001


class Pointer:
    """Host memory given by address, for engines that hand out raw pointers (SGLang's
    get_page_buffer_meta): ``Pointer(addr, nbytes, owner)``.  The caller vouches that the
    nbytes at addr stay valid (owner, if given, is kept referenced while a request uses
    them); kvgrid cannot check them."""

    __slots__ = ("addr", "nbytes", "owner")

    def __init__(self, addr, nbytes, owner=None):
        if int(addr) <= 0 or int(nbytes) < 0:
            raise ValueError("Pointer(%r, %r): a host address and a size >= 0" % (addr, nbytes))
        self.addr, self.nbytes, self.owner = int(addr), int(nbytes), owner

    def __repr__(self):
        return "Pointer(0x%x, %d)" % (self.addr, self.nbytes)


def _is_torch(obj):
    return type(obj).__module__.split(".", 1)[0] == "torch" and hasattr(obj, "data_ptr")


def buffer_address(obj, writable, what="buffer"):
    """(address, nbytes, keepalive) of obj's bytes, without copying them.  Raises TypeError
    for an object that is neither a buffer nor a CPU torch tensor, ValueError for a
    non-contiguous, read-only (when writable) or non-CPU one.  keepalive must stay
    referenced while the library may touch the bytes."""
    if isinstance(obj, Pointer):
        return obj.addr, obj.nbytes, obj.owner
    if _is_torch(obj):
        if obj.device.type != "cpu":
            raise ValueError("%s is a tensor on %s: kvgrid moves host memory only; pass a CPU "
                             "tensor (pinned or not)" % (what, obj.device))
        if str(obj.layout) != "torch.strided" or not obj.is_contiguous():
            raise ValueError("%s is not a contiguous tensor (shape %s, strides %s); pass "
                             "tensor.contiguous()" % (what, tuple(obj.shape), obj.stride()))
        return obj.data_ptr(), obj.numel() * obj.element_size(), obj
    try:
        m = obj if isinstance(obj, memoryview) else memoryview(obj)
    except TypeError:
        raise TypeError("%s: a %s has no buffer protocol and is not a torch tensor" %
                        (what, type(obj).__name__)) from None
    if not m.c_contiguous:
        raise ValueError("%s is not C-contiguous (shape %s, strides %s); pass a contiguous "
                         "array" % (what, m.shape, m.strides))
    if not m.readonly:  # the quick way: a ctypes view holds the buffer export itself
        c = ctypes.c_char.from_buffer(m) if m.nbytes else None
        return (ctypes.addressof(c) if c is not None else 0), m.nbytes, (m, c)
    if writable:
        raise ValueError("%s is read-only; a load needs a writable buffer (bytearray, a "
                         "writable numpy array or memoryview)" % what)
    view = _PyBuffer()
    flags = _PYBUF_C_CONTIGUOUS | (_PYBUF_WRITABLE if writable else 0)
    if _get_buffer(m, ctypes.byref(view), flags) != 0:  # raises the BufferError itself
        raise ValueError("%s: cannot take its buffer" % what)
    addr = view.buf
    _release_buffer(ctypes.byref(view))  # m still holds the exporter's buffer
    return addr or 0, m.nbytes, m


# ---- keys ---------------------------------------------------------------------------------


class KeyList:
    """A sequence of 32-byte keys held in one C array (what block_keys returns).  Indexing
    gives ``bytes``; it can be passed wherever keys are expected, without repacking."""

    __slots__ = ("_arr", "_n")

    def __init__(self, arr, n):
        self._arr, self._n = arr, n

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return KeyList.of([self[j] for j in range(*i.indices(self._n))])
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("key index out of range")
        return bytes(self._arr[i].bytes)

    def __iter__(self):
        return (self[i] for i in range(self._n))

    def __eq__(self, other):
        return list(self) == list(other)

    def hex(self):
        return [k.hex() for k in self]

    def __repr__(self):
        return "KeyList(%s)" % ", ".join(k[:8].hex() + "..." for k in self)

    @staticmethod
    def of(keys):
        """A KeyList of any sequence of 32-byte keys (bytes-like), or of one bytes object
        holding n * 32 bytes."""
        if isinstance(keys, KeyList):
            return keys
        if isinstance(keys, (bytes, bytearray, memoryview)):
            raw = bytes(keys)
        else:
            keys = keys if isinstance(keys, list) else list(keys)
            raw = b"".join(keys)
            if len(raw) != _lib.KEY_BYTES * len(keys):
                for i, k in enumerate(keys):
                    if len(k) != _lib.KEY_BYTES:
                        raise ValueError("key %d has %d bytes; kvgrid keys have %d (use "
                                         "raw_key() for other names)" %
                                         (i, len(k), _lib.KEY_BYTES))
        if len(raw) % _lib.KEY_BYTES:
            raise ValueError("%d bytes of keys is not a multiple of %d" %
                             (len(raw), _lib.KEY_BYTES))
        n = len(raw) // _lib.KEY_BYTES
        arr = (_lib.Key * max(n, 1))()
        ctypes.memmove(arr, raw, len(raw))
        return KeyList(arr, n)


Lookup = namedtuple("Lookup", "hits tiers")
Lookup.__doc__ = ("Result of Grid.lookup: hits, the count of consecutive present keys from "
                  "the first; tiers, where each of them is ('dram', 'nvme', or None when a "
                  "remote server does not say).")


# ---- requests -----------------------------------------------------------------------------


class Future:
    """One asynchronous batch (Grid.load_async / Grid.store_async).  Its buffers stay
    referenced until it completes.  Completion adds 1 to its eventfd.

    done() -> bool; wait(timeout=None) -> bool (True once complete); statuses() -> the
    per-block codes (0, or a KVG_E* / -errno code); result(timeout=None) -> for a load the
    length of each block, None for a miss; for a store None; other per-block errors raise."""

    def __init__(self, grid, kind, ios, n, keep, efd):
        self.grid, self.kind, self.event_fd = grid, kind, efd
        self._ios, self._n, self._keep = ios, n, keep
        self._req = ctypes.c_void_p()
        self._lock = threading.Lock()
        self._statuses = None
        self._waiters = 0
        self.status = None  # the request's own result once complete (0 or the first error)

    def done(self):
        with self._lock:
            if self._statuses is not None:
                return True
            rc = lib.kvg_req_poll(self._req)
            if rc == EINPROGRESS:
                return False
            self._finish(rc)
            return True

    def wait(self, timeout=None):
        """Waits up to timeout seconds (None: until done), GIL released.  True if done."""
        with self._lock:
            if self._statuses is not None:
                return True
            self._waiters += 1  # the request is not freed under a waiter
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        rc = lib.kvg_req_wait(self._req, ms)
        with self._lock:
            self._waiters -= 1
            if rc != EINPROGRESS and self._statuses is None:
                self._finish(rc)
            else:
                self._release_req()
            return self._statuses is not None

    def _finish(self, rc):  # with self._lock, once the request is complete
        ios = self._ios
        self._statuses, self._lengths = _results(ios, self._n)
        self._tiers = [TIER_NAMES.get(ios[i].tier) for i in range(self._n)]
        self.status = rc
        self._keep = None  # the library no longer touches the buffers
        self._release_req()
        self.grid._forget(self)

    def _release_req(self):  # with self._lock
        if self._statuses is not None and self._waiters == 0 and self._req is not None:
            lib.kvg_req_free(self._req)
            self._req = None

    def statuses(self, timeout=None):
        self._wait_or_raise(timeout)
        return list(self._statuses)

    def lengths(self, timeout=None):
        """Each block's length as the library left it: for a load, the stored block's length
        where it was found (meaningful only where the status is 0)."""
        self._wait_or_raise(timeout)
        return list(self._lengths)

    def tiers(self, timeout=None):
        """Where a load found each block ('dram', 'nvme'), None where it did not."""
        self._wait_or_raise(timeout)
        return [t if s == 0 else None for t, s in zip(self._tiers, self._statuses)]

    def _wait_or_raise(self, timeout):
        if not self.wait(timeout):
            raise TimeoutError("kvgrid %s of %d blocks still running after %ss" %
                               (self.kind, self._n, timeout))

    def result(self, timeout=None):
        self._wait_or_raise(timeout)
        return _outcome(self.kind, self._statuses, self._lengths)

    def __repr__(self):
        state = "done" if self._statuses is not None else "running"
        return "<kvgrid.Future %s of %d blocks, %s>" % (self.kind, self._n, state)


def _outcome(kind, statuses, lengths):
    """What load/store return for per-block statuses: a load's lengths with None for misses;
    None for a store; the first other error raised with every status attached."""
    for i, s in enumerate(statuses):
        if s and not (kind == "load" and s in MISS):
            raise error(s, "%s of block %d of %d" % (kind, i, len(statuses)), list(statuses))
    if kind == "store":
        return None
    return [n if s == 0 else None for n, s in zip(lengths, statuses)]


# ---- the grid -----------------------------------------------------------------------------

# struct kvg_io as bytes: key, buf, len, depth (status and tier zero)
_IO_PACK = __import__("struct").Struct("=32sQQI")
_IO_SIZE = ctypes.sizeof(_lib.IO)
assert _lib.IO.buf.offset == 32 and _lib.IO.len.offset == 40 and _lib.IO.depth.offset == 48
assert _IO_SIZE == 64 and _lib.IO.status.offset == 52 and _lib.IO.tier.offset == 56


def _results(ios, n):
    """(statuses, lengths) of the first n kvg_io, read as two strided slices."""
    mv = memoryview(ios).cast("B")
    return mv.cast("i")[13::16][:n].tolist(), mv.cast("Q")[5::8][:n].tolist()


def _tokens(tokens):
    """(address, count, keepalive) of token ids: a sequence of ints, or a buffer or CPU
    tensor of 32-bit integers."""
    if isinstance(tokens, (list, tuple, range)):
        tokens = array.array("I", tokens)
    itemsize = tokens.element_size() if _is_torch(tokens) else memoryview(tokens).itemsize
    if itemsize != 4:
        raise ValueError("tokens must be 32-bit token ids (got items of %d bytes)" % itemsize)
    addr, nbytes, keep = buffer_address(tokens, False, "tokens")
    return addr, nbytes // 4, keep


def _setting(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (os.PathLike,)):
        return os.fspath(value)
    return str(value)


class Grid:
    """A kvgrid grid.  ``Grid(config=None, **settings)``: config is a path to a
    ``name = value`` file (doc/CONFIG.md), a dict of settings, or None for the defaults
    (DRAM only, 1 GiB); keyword settings are applied after it, by the names of
    kvg_config_set (``dram_bytes="4G"``, ``dir=...``, ``servers="host:port"``...).
    Use it as a context manager, or call close()."""

    def __init__(self, config=None, **settings):
        self._g = None
        cfg = _lib.Config()
        err = ctypes.create_string_buffer(512)
        lib.kvg_config_init_size(ctypes.byref(cfg), ctypes.sizeof(cfg))
        if isinstance(config, dict):
            settings = dict(config, **settings)
        elif config is not None:
            rc = lib.kvg_config_load(ctypes.byref(cfg), os.fsencode(config), err, len(err))
            if rc:
                raise ConfigError(rc, reason=err.value.decode(errors="replace") or
                                  "%s: %s" % (os.fspath(config), _lib.strerror(rc)))
        for name, value in settings.items():
            rc = lib.kvg_config_set(ctypes.byref(cfg), name.encode(), _setting(value).encode(),
                                    err, len(err))
            if rc:
                raise ConfigError(rc, reason=err.value.decode(errors="replace"))
        g = ctypes.c_void_p()
        rc = lib.kvg_open(ctypes.byref(cfg), ctypes.byref(g), err, len(err))
        if rc:
            raise error(rc, "open", reason=err.value.decode(errors="replace"))
        self._g = g
        self._cfg = _lib.Config.from_address(lib.kvg_config_of(g))
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._pending = {}  # id(future) -> future: in flight, kept alive with their buffers
        self._plock = threading.Lock()

    # -- life ------------------------------------------------------------------------------

    def close(self):
        """Waits for requests in flight, then closes the grid (kvg_close).  Idempotent."""
        if self._g is None:
            return
        for f in list(self._pending.values()):
            f.wait()
        lib.kvg_close(self._g)
        self._g = None
        os.close(self._efd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_g", None) is not None:
            self.close()

    def _handle(self):
        if self._g is None:
            raise ClosedError(ECLOSED, "grid")
        return self._g

    # -- configuration ---------------------------------------------------------------------

    @property
    def config(self):
        """The settings the grid runs with (defaults resolved), as a dict."""
        self._handle()
        out = {}
        for name, _ in _lib.Config._fields_:
            v = getattr(self._cfg, name)
            out[name] = v.decode(errors="replace") if isinstance(v, bytes) else v
        return out

    @property
    def block_tokens(self):
        return self._cfg.block_tokens

    @property
    def block_bytes(self):
        """Bytes of one full block's KV for the configured layout (0 if unset)."""
        return lib.kvg_config_block_bytes(ctypes.byref(self._cfg))

    @property
    def event_fd(self):
        """The eventfd that asynchronous requests signal by default: readable once one has
        completed since the last reap().  Owned by the grid."""
        return self._efd

    # -- keys ------------------------------------------------------------------------------

    def block_keys(self, tokens, parent=None):
        """Chained keys of the full blocks of tokens (a sequence of ints, or a uint32 buffer
        such as numpy.uint32 array); parent is the key of the block before tokens[0]."""
        g = self._handle()
        addr, n_tokens, keep = _tokens(tokens)
        max_keys = n_tokens // self.block_tokens
        arr = (_lib.Key * max(max_keys, 1))()
        par = None
        if parent is not None:
            par = KeyList.of([parent])._arr
        n = lib.kvg_block_keys(g, addr, n_tokens, par, arr, max_keys)
        return KeyList(arr, n)

    def raw_key(self, name):
        """The key of an engine's own block hash or any name (bytes, or str as UTF-8)."""
        g = self._handle()
        if isinstance(name, str):
            name = name.encode()
        k = _lib.Key()
        lib.kvg_raw_key(g, bytes(name), len(name), ctypes.byref(k))
        return bytes(k.bytes)

    def raw_keys(self, names):
        """raw_key of each name, as one KeyList."""
        g = self._handle()
        names = [n.encode() if isinstance(n, str) else bytes(n) for n in names]
        arr = (_lib.Key * max(len(names), 1))()
        for i, n in enumerate(names):
            lib.kvg_raw_key(g, n, len(n), ctypes.byref(arr[i]))
        return KeyList(arr, len(names))

    # -- lookup ----------------------------------------------------------------------------

    def lookup(self, keys):
        """Lookup(hits, tiers): how many consecutive keys from the first are present, and
        the tier of each of those."""
        g = self._handle()
        kl = KeyList.of(keys)
        hit = ctypes.c_size_t()
        tiers = (ctypes.c_uint8 * max(len(kl), 1))()
        _check(lib.kvg_lookup_keys(g, kl._arr, len(kl), ctypes.byref(hit), tiers), "lookup")
        return Lookup(hit.value, list(map(_TIER_OF_BYTE.__getitem__, bytes(tiers)[:hit.value])))

    def lookup_tokens(self, tokens):
        """Tokens of the longest cached prefix of tokens (a multiple of block_tokens)."""
        g = self._handle()
        addr, n_tokens, keep = _tokens(tokens)
        hit = ctypes.c_size_t()
        _check(lib.kvg_lookup(g, addr, n_tokens, ctypes.byref(hit)), "lookup")
        return hit.value

    def exists(self, keys):
        """Presence of each key, one bool per key (not only the leading run)."""
        g = self._handle()
        kl = KeyList.of(keys)
        out, i, n = [], 0, len(kl)
        hit = ctypes.c_size_t()
        base = ctypes.addressof(kl._arr)
        while i < n:
            _check(lib.kvg_lookup_keys(g, base + i * _lib.KEY_BYTES, n - i, ctypes.byref(hit),
                                       None), "exists")
            out += [True] * hit.value
            i += hit.value
            if i < n:  # keys[i] is absent: look on from the next one
                out.append(False)
                i += 1
        return out

    # -- store and load --------------------------------------------------------------------

    def _ios(self, keys, buffers, writable, depths=None):
        kl = KeyList.of(keys)
        buffers = buffers if isinstance(buffers, list) else list(buffers)
        n = len(kl)
        if len(buffers) != n:
            raise ValueError("%d keys but %d buffers" % (n, len(buffers)))
        raw = bytearray(_IO_SIZE * max(n, 1))
        keyb = bytes(kl._arr)
        keep = [kl]
        what = "load buffer %d" if writable else "store buffer %d"
        pack = _IO_PACK.pack_into
        for i, b in enumerate(buffers):
            addr, nbytes, k = buffer_address(b, writable, what % i)
            pack(raw, i * _IO_SIZE, keyb[i * 32:i * 32 + 32], addr, nbytes,
                 depths[i] if depths is not None else 0)
            keep.append(k)
        ios = (_lib.IO * max(n, 1)).from_buffer(raw)
        return ios, n, keep

    def store(self, keys, buffers, flags=0, depths=None):
        """Stores each buffer under its key and waits (on this thread, GIL released).  A key
        already present is refreshed and keeps its bytes.  Raises the first block's error."""
        g = self._handle()
        ios, n, keep = self._ios(keys, buffers, False, depths)
        lib.kvg_store_sync(g, ios, n, flags)
        return _outcome("store", _results(ios, n)[0], None)

    def load(self, keys, buffers, flags=0):
        """Loads each key into its buffer and waits.  Returns each block's length, None for
        a miss (absent, or failed verification: never its bytes)."""
        g = self._handle()
        ios, n, keep = self._ios(keys, buffers, True)
        lib.kvg_load_sync(g, ios, n, flags)
        return _outcome("load", *_results(ios, n))

    def _submit(self, kind, keys, buffers, flags, event_fd, depths=None):
        g = self._handle()
        ios, n, keep = self._ios(keys, buffers, kind == "load", depths)
        efd = self._efd if event_fd is None else event_fd
        f = Future(self, kind, ios, n, keep, efd)
        opts = _lib.ReqOpts(flags=flags, done=_lib.DONE_EVENTFD, arg=efd)
        fn = lib.kvg_load if kind == "load" else lib.kvg_store
        rc = fn(g, ios, n, ctypes.byref(opts), ctypes.byref(f._req))
        if rc:
            raise error(rc, kind)
        with self._plock:
            self._pending[id(f)] = f
        if lib.kvg_req_poll(f._req) != EINPROGRESS:
            # it may have signalled before it was registered, and a reap() on another
            # thread taken the signal: signal again (at worst a spurious wake-up)
            os.eventfd_write(efd, 1)
        return f

    def store_async(self, keys, buffers, flags=0, event_fd=None, depths=None):
        """Starts storing; returns a Future at once (BusyError when req_max requests are in
        flight).  Completion adds 1 to event_fd (default: Grid.event_fd)."""
        return self._submit("store", keys, buffers, flags, event_fd, depths)

    def load_async(self, keys, buffers, flags=0, event_fd=None):
        """Starts loading; returns a Future at once.  As store_async."""
        return self._submit("load", keys, buffers, flags, event_fd)

    def _forget(self, f):
        with self._plock:
            self._pending.pop(id(f), None)

    def reap(self):
        """Clears Grid.event_fd and returns the futures signalling it that have completed
        since (each finished: its buffers released).  For event loops: wait until event_fd
        is readable, then reap()."""
        try:
            os.eventfd_read(self._efd)
        except BlockingIOError:
            pass
        with self._plock:
            mine = [f for f in self._pending.values() if f.event_fd == self._efd]
        return [f for f in mine if f.done()]

    def in_flight(self):
        """Count of asynchronous requests not yet completed and reaped."""
        return len(self._pending)

    # -- pin, delete, prefetch, stats ------------------------------------------------------

    def _keys_call(self, fn, keys, what):
        g = self._handle()
        kl = KeyList.of(keys)
        return _check(fn(g, kl._arr, len(kl)), what)

    def pin(self, keys):
        """Pins the present keys (never evicted from their tier; pins nest).  Returns how
        many were pinned."""
        return self._keys_call(lib.kvg_pin, keys, "pin")

    def unpin(self, keys):
        return self._keys_call(lib.kvg_unpin, keys, "unpin")

    def delete(self, keys):
        """Removes the keys from every tier; returns how many were present."""
        return self._keys_call(lib.kvg_delete, keys, "delete")

    def prefetch(self, keys):
        """Hint: promote these NVMe blocks to DRAM in the background; returns how many."""
        return self._keys_call(lib.kvg_prefetch, keys, "prefetch")

    def stats(self):
        """The grid's counters: {"dram": {...}, "nvme": {...}, "lookups": ..., ...}, with
        "shared": {...} too when the grid has a shared tier (shared_dir)."""
        g = self._handle()
        st = _lib.Stats()
        lib.kvg_stats_get(g, ctypes.byref(st))
        out = {}
        for t in range(_lib.TIER_COUNT):
            out[TIER_NAMES[t]] = _tier_dict(st.tier[t])
        shared = _lib.TierStats()
        if lib.kvg_tier_stats_get(g, TIER_SHARED, ctypes.byref(shared)) == 0:
            out["shared"] = _tier_dict(shared)
        for name, _ in _lib.Stats._fields_[1:]:
            out[name] = getattr(st, name)
        return out

    def __repr__(self):
        if self._g is None:
            return "<kvgrid.Grid closed>"
        c = self._cfg
        where = ("servers=" + c.servers.decode()) if c.servers else (
            "dram=%d" % c.dram_bytes + (" dir=" + c.dir.decode() if c.dir else ""))
        return "<kvgrid.Grid %s>" % where


def version():
    """The loaded library's version, "MAJOR.MINOR.PATCH"."""
    return lib.kvg_version(None, None, None).decode()
