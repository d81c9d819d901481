"""LMCache multiprocess (MP) mode: kvgrid as a ``native_plugin`` L2 adapter.

    {"type": "native_plugin", "module_path": "kvgrid.adapters.lmcache",
     "class_name": "KvgridL2Connector",
     "adapter_params": {"dram_bytes": "32G", "dir": "/mnt/nvme/kvgrid"}}

or, against kvgridd servers, ``"adapter_params": {"servers": "10.0.0.5:7379",
"auth_token_file": "/etc/kvgrid/token"}``.  adapter_params are kvgrid settings
(doc/CONFIG.md), plus ``config``: a kvgrid config file read first.

The interface (INTERFACE below) is LMCache's NativeConnectorL2Adapter contract: LMCache
takes any object with these methods, there is no base class to inherit.  LMCache calls the
submit methods under its own lock and expects them not to wait for I/O; a background thread
of LMCache's polls event_fd() and calls drain_completions(), which must clear it.

- submit_batch_get / submit_batch_set start one kvgrid request for the batch (kvg_load /
  kvg_store into or from the memoryviews, no copy in Python); its completion is signalled on
  event_fd() by libkvgrid (kvg_done_eventfd), with no Python on the grid's threads.
- submit_batch_exists / submit_batch_delete run on one adapter thread (libkvgrid answers
  them synchronously; on a remote grid they are network round trips).
- drain_completions() returns ``(future_id, ok, error, result_bools or None)``: GET gives one
  bool per key (True: the whole chunk, exactly len(memoryview) bytes, was loaded; a miss, a
  block of another size or any error is False, and the buffer must not be used); SET gives
  None and ok when every chunk was stored; EXISTS and DELETE one bool per key.
- Keys are LMCache's MP strings ``<model>@<kv_rank_hex>@<group_hex>@<chunk_hash_hex>
  [@<cache_salt>]``.  The cache salt is the tenant: the kvgrid key is
  ``kvg_raw_key("lmcache-mp" 0x00 salt 0x00 rest)``, the construction kvgridd uses to keep
  its tenants apart (doc/SERVER.md), so two salts never share a block and no request names
  another salt's block.  The model, rank and group are in the rest.
- When libkvgrid's request pool is exhausted (KVG_EBUSY), a batch runs synchronously on the
  adapter thread instead; it still completes through drain_completions().
"""
import os
import threading

from ..grid import BusyError, Grid
from ._jobs import Worker, clear_eventfd, new_eventfd

INTERFACE = ("LMCache MP native_plugin L2 adapter: native_connector_l2_adapter.py "
             "(LMCache main, 2026-11): event_fd, submit_batch_get/set/exists/delete, "
             "drain_completions, close")
KEY_DOMAIN = b"lmcache-mp"


def split_key(key):
    """(salt, rest) of an LMCache MP key string: the fifth '@' field is the cache salt
    (LMCache rejects '@' in model names and salts, so the split is unambiguous)."""
    parts = key.split("@")
    if len(parts) == 5:
        return parts[4], "@".join(parts[:4])
    return "", key


class KvgridL2Connector:
    """kvgrid behind LMCache's native_plugin L2 adapter; see the module's docstring."""

    def __init__(self, config=None, grid=None, **settings):
        self._grid = grid if grid is not None else Grid(config, **settings)
        self._own_grid = grid is None
        self._efd = new_eventfd()
        self._lock = threading.Lock()
        self._next_id = 1
        self._inflight = {}  # future_id -> (op, kvgrid Future, expected sizes)
        self._ready = []  # completions of the adapter thread
        self._worker = Worker("kvgrid-lmcache", self._deliver)
        self._closed = False

    # -- the contract ----------------------------------------------------------------------

    def event_fd(self):
        return self._efd

    def submit_batch_get(self, keys, memoryviews):
        return self._submit_io("get", keys, memoryviews)

    def submit_batch_set(self, keys, memoryviews):
        return self._submit_io("set", keys, memoryviews)

    def submit_batch_exists(self, keys):
        fid = self._new_id()
        keys = list(keys)
        self._worker.submit(lambda: (fid, True, "", self._grid.exists(self.kvgrid_keys(keys))),
                            lambda e: (fid, False, str(e), None))
        return fid

    def submit_batch_delete(self, keys):
        fid = self._new_id()
        keys = list(keys)

        def run():
            kl = self.kvgrid_keys(keys)
            return fid, True, "", [self._grid.delete(kl[i:i + 1]) == 1 for i in range(len(kl))]
        self._worker.submit(run, lambda e: (fid, False, str(e), None))
        return fid

    def drain_completions(self):
        clear_eventfd(self._efd)
        with self._lock:
            out, self._ready = self._ready, []
            for fid, (op, fut, sizes) in list(self._inflight.items()):
                if fut.done():
                    del self._inflight[fid]
                    out.append(self._finished(fid, op, fut.statuses(), fut.lengths(), sizes))
        return out

    def close(self):
        """Waits for batches in flight, stops the adapter thread, closes the grid."""
        if self._closed:
            return
        self._closed = True
        self._worker.close()
        with self._lock:
            for _, fut, _ in self._inflight.values():
                fut.wait()
        if self._own_grid:
            self._grid.close()
        os.close(self._efd)

    # -- helpers ---------------------------------------------------------------------------

    def kvgrid_keys(self, keys):
        """The kvgrid keys of LMCache MP key strings (the salt as the tenant)."""
        names = []
        for k in keys:
            salt, rest = split_key(k)
            names.append(KEY_DOMAIN + b"\0" + salt.encode() + b"\0" + rest.encode())
        return self._grid.raw_keys(names)

    def _new_id(self):
        with self._lock:
            fid = self._next_id
            self._next_id += 1
            return fid

    def _deliver(self, completion):
        with self._lock:
            self._ready.append(completion)
        os.eventfd_write(self._efd, 1)

    def _submit_io(self, op, keys, memoryviews):
        fid = self._new_id()
        keys, mvs = list(keys), list(memoryviews)
        try:
            kl = self.kvgrid_keys(keys)
            sizes = [memoryview(m).nbytes for m in mvs]
            with self._lock:  # registered before drain_completions can look
                fut = (self._grid.load_async if op == "get" else self._grid.store_async)(
                    kl, mvs, event_fd=self._efd)
                self._inflight[fid] = (op, fut, sizes)
        except BusyError:  # the request pool is full: run it on the adapter thread
            self._worker.submit(lambda: self._run_sync(fid, op, kl, mvs, sizes),
                                lambda e: (fid, False, str(e), None))
        except Exception as e:  # bad buffers or keys: a failed job, not an exception
            self._deliver((fid, False, "%s: %s" % (type(e).__name__, e),
                           [False] * len(keys) if op == "get" else None))
        return fid

    def _run_sync(self, fid, op, kl, mvs, sizes):
        fut = (self._grid.load_async if op == "get" else self._grid.store_async)
        while True:
            try:
                f = fut(kl, mvs, event_fd=self._efd)
                break
            except BusyError:
                threading.Event().wait(0.001)
        f.wait()
        return self._finished(fid, op, f.statuses(), f.lengths(), sizes)

    @staticmethod
    def _finished(fid, op, statuses, lengths, sizes):
        if op == "get":
            bools = [s == 0 and n == want for s, n, want in zip(statuses, lengths, sizes)]
            ok = all(bools)
            err = "" if ok else "%d of %d chunks not loaded" % (bools.count(False), len(bools))
            return fid, ok, err, bools
        bad = [s for s in statuses if s]
        if not bad:
            return fid, True, "", None
        from .._lib import strerror
        return fid, False, "%d of %d chunks not stored: %s" % (
            len(bad), len(statuses), strerror(bad[0])), None
