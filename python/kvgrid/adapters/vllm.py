"""vLLM: kvgrid as a secondary tier of the CPU offloading tier (TieringOffloadingSpec).

    --kv-transfer-config '{"kv_connector": "OffloadingConnector", "kv_role": "kv_both",
      "kv_connector_extra_config": {"spec_name": "TieringOffloadingSpec",
        "cpu_bytes_to_use": 17179869184,
        "secondary_tiers": [{"type": "KvgridTierManager",
                             "module_path": "kvgrid.adapters.vllm",
                             "dram_bytes": "1G", "dir": "/mnt/nvme/kvgrid"}]}}'

Every other key of the tier's entry is a kvgrid setting (doc/CONFIG.md; ``servers`` and
``auth_token_file`` for kvgridd), plus ``config`` (a kvgrid config file) and ``block_bytes``
(the bytes of one slot of the CPU tier, needed only when primary_kv_view is one-dimensional).

The interface (INTERFACE below) is vllm/v1/kv_offload/tiering/base.py's
SecondaryTierManager: every method runs in the scheduler process and must not block.
- lookup(key, req_context) -> True / False, or None while a store of the key is in flight
  (on a remote grid also while the answer is on its way: the question goes to the adapter
  thread and lookup answers None until it is back).  Embedded, it is an index lookup
  (no I/O, microseconds).
- submit_store(job) / submit_load(job) start one kvgrid request for the job's blocks, from or
  into the primary_kv_view slots named by job.block_ids (sub-views of one memoryview: no
  copy in Python); completion is signalled on an eventfd by libkvgrid and collected by
  get_finished() -> [JobResult(job_id, success)].  A load succeeds only if every block was
  found whole (exactly one slot's bytes); anything else is a failed job, never wrong data.
- touch(keys, ctx) asks kvgrid to prefetch the blocks (promote NVMe ones to DRAM);
  request_finished(ctx) has nothing to release; shutdown() waits and closes the grid.
- Keys are vLLM's offload keys (block hash bytes + 4-byte big-endian group index); the
  kvgrid key is kvg_raw_key("vllm-offload" 0x00 key) in the grid's namespace, which holds
  the model (model_id, taken from vllm_config when not set).  vLLM's block hashes already
  carry the request's cache_salt, so tenants stay apart.
"""
import os
import threading
from dataclasses import dataclass

from ..grid import BusyError, Grid
from ._jobs import Worker, clear_eventfd, new_eventfd

INTERFACE = ("vLLM SecondaryTierManager: vllm/v1/kv_offload/tiering/base.py (main, "
             "2026-11): lookup(key, req_context) -> bool | None, submit_store(job), "
             "submit_load(job), get_finished() -> Iterable[JobResult], touch, "
             "request_finished, shutdown")
KEY_DOMAIN = b"vllm-offload\0"

try:  # the real base class and result type when vLLM is installed
    from vllm.v1.kv_offload.tiering.base import JobResult, SecondaryTierManager as _Base
except ImportError:
    _Base = object

    @dataclass
    class JobResult:
        """vLLM's JobResult, for running without vLLM."""
        job_id: int
        success: bool


class KvgridTierManager(_Base):
    """A vLLM secondary tier over kvgrid; see the module's docstring."""

    def __init__(self, offloading_spec=None, primary_kv_view=None, tier_type="kvgrid", *,
                 vllm_config=None, config=None, block_bytes=None, grid=None,
                 module_path=None, class_name=None, **settings):
        # module_path / class_name name this class in the tier's entry: not kvgrid settings
        if _Base is not object:
            super().__init__(offloading_spec, primary_kv_view, tier_type)
        self.tier_type = tier_type
        if primary_kv_view is None:
            raise ValueError("KvgridTierManager needs primary_kv_view (the CPU tier's memory)")
        model = getattr(getattr(vllm_config, "model_config", None), "model", None)
        if model and "model_id" not in settings and grid is None:
            settings["model_id"] = model
        self._slots, self.slot_bytes = _slots(primary_kv_view, block_bytes)  # before I/O
        self._grid = grid if grid is not None else Grid(config, **settings)
        self._own_grid = grid is None
        self._remote = bool(self._grid.config["servers"])
        self._efd = new_eventfd()
        self._lock = threading.Lock()
        self._jobs = {}  # job_id -> (kvgrid Future, is_store, keys)
        self._done = []  # JobResults from the adapter thread
        self._storing = {}  # offload key -> stores in flight
        self._answers = {}  # remote lookups: key -> None (asked) or the answer
        self._worker = Worker("kvgrid-vllm", self._deliver)

    # -- the contract ----------------------------------------------------------------------

    def lookup(self, key, req_context=None):
        key = bytes(key)
        with self._lock:
            if self._storing.get(key):
                return None
            if not self._remote:
                return self._grid.exists([self._kvkey(key)])[0]
            if key in self._answers:
                answer = self._answers[key]
                if answer is not None:
                    del self._answers[key]
                return answer
            self._answers[key] = None
        self._worker.submit(lambda: ("answer", key, self._grid.exists([self._kvkey(key)])[0]),
                            lambda e: ("answer", key, False))
        return None

    def submit_store(self, job_metadata):
        self._submit(job_metadata, True)

    def submit_load(self, job_metadata):
        self._submit(job_metadata, False)

    def get_finished(self):
        clear_eventfd(self._efd)
        with self._lock:
            out, self._done = self._done, []
            for job_id, (fut, is_store, keys) in list(self._jobs.items()):
                if fut.done():
                    del self._jobs[job_id]
                    out.append(JobResult(job_id, self._success(fut, is_store)))
                    if is_store:
                        self._unmark(keys)
        return out

    def touch(self, keys, req_context=None):
        try:
            self._grid.prefetch(self._grid.raw_keys([KEY_DOMAIN + bytes(k) for k in keys]))
        except Exception:
            pass  # a hint only

    def request_finished(self, req_context=None):
        return None

    def shutdown(self):
        if self._grid is None:
            return
        self._worker.close()
        with self._lock:
            jobs = list(self._jobs.values())
        for fut, _, _ in jobs:
            fut.wait()
        if self._own_grid:
            self._grid.close()
        self._grid = None
        os.close(self._efd)

    # -- helpers ---------------------------------------------------------------------------

    def _kvkey(self, key):
        return self._grid.raw_key(KEY_DOMAIN + key)

    def _views(self, block_ids):
        n = len(self._slots) // self.slot_bytes
        views = []
        for b in block_ids:
            b = int(b)
            if not 0 <= b < n:
                raise IndexError("block id %d outside the CPU tier's %d slots" % (b, n))
            views.append(self._slots[b * self.slot_bytes:(b + 1) * self.slot_bytes])
        return views

    def _submit(self, job, is_store):
        keys = [bytes(k) for k in job.keys]
        try:
            if len(keys) != len(job.block_ids):
                raise ValueError("job %s: %d keys but %d block ids" %
                                 (job.job_id, len(keys), len(job.block_ids)))
            kl = self._grid.raw_keys([KEY_DOMAIN + k for k in keys])
            views = self._views(job.block_ids)
        except Exception:
            self._deliver(("job", JobResult(job.job_id, False), None))
            return
        with self._lock:
            if is_store:
                for k in keys:
                    self._storing[k] = self._storing.get(k, 0) + 1
            try:
                fn = self._grid.store_async if is_store else self._grid.load_async
                fut = fn(kl, views, event_fd=self._efd)
                self._jobs[job.job_id] = (fut, is_store, keys)
                return
            except BusyError:
                pass
            except Exception:
                if is_store:
                    self._unmark(keys)
                self._done.append(JobResult(job.job_id, False))
                os.eventfd_write(self._efd, 1)
                return
        self._worker.submit(lambda: self._run_sync(job.job_id, is_store, kl, views, keys),
                            lambda e: ("job", JobResult(job.job_id, False),
                                       keys if is_store else None))

    def _run_sync(self, job_id, is_store, kl, views, keys):
        fn = self._grid.store_async if is_store else self._grid.load_async
        while True:
            try:
                fut = fn(kl, views, event_fd=self._efd)
                break
            except BusyError:
                threading.Event().wait(0.001)
        fut.wait()
        return "job", JobResult(job_id, self._success(fut, is_store)), keys if is_store else None

    def _success(self, fut, is_store):
        st = fut.statuses()
        if is_store:
            return all(s == 0 for s in st)
        return all(s == 0 and n == self.slot_bytes for s, n in zip(st, fut.lengths()))

    def _unmark(self, keys):  # with self._lock
        for k in keys:
            left = self._storing.get(k, 0) - 1
            if left > 0:
                self._storing[k] = left
            else:
                self._storing.pop(k, None)

    def _deliver(self, item):
        kind, a, b = item
        with self._lock:
            if kind == "answer":
                self._answers[a] = b
            else:
                self._done.append(a)
                if b:
                    self._unmark(b)
        os.eventfd_write(self._efd, 1)


def _slots(view, block_bytes):
    """(flat byte view, bytes per slot) of the CPU tier's memoryview: slots are its first
    dimension, or block_bytes each when it is one-dimensional."""
    m = view if isinstance(view, memoryview) else memoryview(view)
    if not m.c_contiguous:
        raise ValueError("primary_kv_view is not C-contiguous")
    if m.readonly:
        raise ValueError("primary_kv_view is read-only: loads could not fill it")
    flat = m.cast("B") if (m.ndim != 1 or m.format != "B") else m
    if block_bytes is None:
        if m.ndim < 2:
            raise ValueError("primary_kv_view is one-dimensional: give block_bytes (the "
                             "bytes of one slot) in the tier's configuration")
        block_bytes = m.nbytes // m.shape[0]
    block_bytes = int(block_bytes)
    if block_bytes <= 0 or flat.nbytes % block_bytes:
        raise ValueError("block_bytes %d does not divide primary_kv_view's %d bytes" %
                         (block_bytes, flat.nbytes))
    return flat, block_bytes


def register(tier_type="kvgrid"):
    """For a vLLM whose SecondaryTierFactory does not load "module_path" entries: registers
    this class under tier_type (then ``"secondary_tiers": [{"type": "kvgrid", ...}]``).
    Call it once in the process that builds the scheduler, e.g. from a vLLM general
    plugin."""
    from vllm.v1.kv_offload.tiering.factory import SecondaryTierFactory
    SecondaryTierFactory.register_tier(tier_type, __name__, "KvgridTierManager")
