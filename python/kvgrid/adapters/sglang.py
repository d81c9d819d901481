"""SGLang HiCache: kvgrid as the L3 storage backend (``--hicache-storage-backend dynamic``).

    python -m sglang.launch_server ... --enable-hierarchical-cache \\
      --hicache-mem-layout page_first --hicache-storage-backend dynamic \\
      --hicache-storage-backend-extra-config '{"backend_name": "kvgrid",
        "module_path": "kvgrid.adapters.sglang", "class_name": "KvgridHiCacheStorage",
        "interface_v1": 1, "kvgrid": {"dram_bytes": "32G", "dir": "/mnt/nvme/kvgrid"}}'

``"kvgrid"`` holds kvgrid settings (doc/CONFIG.md; ``servers`` and ``auth_token_file`` for
kvgridd; ``config`` for a kvgrid config file).

The interface (INTERFACE below) is python/sglang/srt/mem_cache/hicache_storage.py's
HiCacheStorage, built by the dynamic factory as ``cls(storage_config, kwargs)``.  SGLang
calls it from its own prefetch and backup threads, so its calls wait for their I/O (GIL
released); there is no completion to poll.
- get / batch_get load into the given target tensors (or, without one, a page-sized buffer
  from the registered host pool); set / batch_set store tensors or buffers.  None / False
  for a miss or a failure, never partial data.
- exists; batch_exists -> the count of consecutive pages present from the first.
- The zero-copy v1 path: register_mem_pool_host(pool), then batch_get_v1 / batch_set_v1
  (keys, host_indices) -> list[bool].  The pool's get_page_buffer_meta(host_indices) gives
  the address and size of each page's parts (K and V for MHA, one for MLA, in the
  ``page_first`` layouts); each part is one kvgrid block read or written in place, no copy
  in Python.  A page counts only if all its parts moved whole.
- Keys are SGLang's 64-hex SHA-256 page hashes.  The kvgrid key is kvg_raw_key("sglang" 0x00
  namespace 0x00 hash 0x00 part) where the namespace holds the model, the TP rank and size
  (not for MLA models, whose KV is the same on every rank), the PP rank and size, and the
  ``tenant`` of extra_config if given.  SGLang seeds namespaced requests' hashes with their
  cache_salt, so those tenants stay apart too.
"""
from ..grid import Grid, Pointer, buffer_address

INTERFACE = ("SGLang HiCacheStorage: python/sglang/srt/mem_cache/hicache_storage.py (main, "
             "2026-11): get, batch_get, set, batch_set, exists, batch_exists, "
             "register_mem_pool_host, batch_get_v1, batch_set_v1, clear, get_stats")
KEY_DOMAIN = b"sglang"

try:  # the real base class when SGLang is installed
    from sglang.srt.mem_cache.hicache_storage import HiCacheStorage as _Base
except ImportError:
    _Base = object


def _namespace(cfg, extra):
    model = (getattr(cfg, "model_name", None) or "").encode()
    ns = [model]
    if not getattr(cfg, "is_mla_model", False):
        ns.append(b"tp%d/%d" % (getattr(cfg, "tp_rank", 0), getattr(cfg, "tp_size", 1)))
    if getattr(cfg, "pp_size", 1) > 1:
        ns.append(b"pp%d/%d" % (cfg.pp_rank, cfg.pp_size))
    if getattr(cfg, "attn_cp_size", 1) > 1:
        ns.append(b"cp%d/%d" % (cfg.attn_cp_rank, cfg.attn_cp_size))
    if extra.get("tenant"):
        ns.append(b"tenant=" + str(extra["tenant"]).encode())
    return b"|".join(ns)


class KvgridHiCacheStorage(_Base):
    """SGLang HiCache storage over kvgrid; see the module's docstring."""

    def __init__(self, storage_config=None, kwargs=None, grid=None):
        extra = dict(getattr(storage_config, "extra_config", None) or {})
        settings = dict(extra.get("kvgrid") or {})
        config = settings.pop("config", None)
        self._grid = grid if grid is not None else Grid(config, **settings)
        self._own_grid = grid is None
        self._prefix = KEY_DOMAIN + b"\0" + _namespace(storage_config, extra) + b"\0"
        self.mem_pool_host = None

    # -- keys ------------------------------------------------------------------------------

    def _keys(self, keys, parts=1):
        names = []
        for k in keys:
            base = self._prefix + str(k).encode() + b"\0"
            names += [base + b"%d" % p for p in range(parts)]
        return self._grid.raw_keys(names)

    # -- plain interface -------------------------------------------------------------------

    def get(self, key, target_location=None, target_sizes=None):
        return self.batch_get([key], [target_location], target_sizes)[0]

    def batch_get(self, keys, target_locations=None, target_sizes=None):
        keys = list(keys)
        targets = list(target_locations) if target_locations is not None else [None] * len(keys)
        targets = [t if t is not None else self._page_buffer() for t in targets]
        sizes = [buffer_address(t, True, "target %d" % i)[1] for i, t in enumerate(targets)]
        fut = self._grid.load_async(self._keys(keys), targets)
        st = fut.statuses()  # per page: a miss, or a stored page of another size, is None
        return [t if s == 0 and n == size else None
                for t, s, n, size in zip(targets, st, fut.lengths(), sizes)]

    def set(self, key, value=None, target_location=None, target_sizes=None):
        return self.batch_set([key], [value], target_location, target_sizes)

    def batch_set(self, keys, values=None, target_locations=None, target_sizes=None):
        keys = list(keys)
        if values is None:
            return False
        try:
            self._grid.store(self._keys(keys), list(values))
            return True
        except Exception:
            return False

    def exists(self, key):
        return self.batch_exists([key]) == 1

    def batch_exists(self, keys, extra_info=None):
        keys = list(keys)
        parts = self._parts_per_page()
        return self._grid.lookup(self._keys(keys, parts)).hits // parts

    # -- zero-copy v1 ----------------------------------------------------------------------

    def register_mem_pool_host(self, mem_pool_host):
        self.mem_pool_host = mem_pool_host

    def batch_get_v1(self, keys, host_indices, extra_info=None):
        return self._v1(keys, host_indices, load=True)

    def batch_set_v1(self, keys, host_indices, extra_info=None):
        return self._v1(keys, host_indices, load=False)

    def _v1(self, keys, host_indices, load):
        keys = list(keys)
        if not keys:
            return []
        if self.mem_pool_host is None:
            raise RuntimeError("kvgrid: batch_%s_v1 before register_mem_pool_host" %
                               ("get" if load else "set"))
        ptrs, sizes = self.mem_pool_host.get_page_buffer_meta(host_indices)
        if len(ptrs) % len(keys):
            raise ValueError("kvgrid: %d buffer pointers for %d pages" % (len(ptrs), len(keys)))
        parts = len(ptrs) // len(keys)
        self._parts = parts
        if isinstance(sizes, int):
            sizes = [sizes] * len(ptrs)
        bufs = [Pointer(p, s, self.mem_pool_host) for p, s in zip(ptrs, sizes)]
        kl = self._keys(keys, parts)
        fut = (self._grid.load_async if load else self._grid.store_async)(kl, bufs)
        st = fut.statuses()
        moved = [s == 0 and (not load or n == size)
                 for s, n, size in zip(st, fut.lengths(), sizes)]
        return [all(moved[i * parts:(i + 1) * parts]) for i in range(len(keys))]

    def _parts_per_page(self):
        parts = getattr(self, "_parts", None)
        if parts:
            return parts
        pool = self.mem_pool_host
        if pool is not None and hasattr(pool, "get_page_buffer_meta"):
            try:  # ask the pool for the parts of one page
                import torch
                n = getattr(pool, "page_size", 1) or 1
                ptrs, _ = pool.get_page_buffer_meta(torch.arange(n))
                self._parts = max(1, len(ptrs))
                return self._parts
            except Exception:
                pass
        return 1

    def _page_buffer(self):
        pool = self.mem_pool_host
        if pool is not None and hasattr(pool, "get_dummy_flat_data_page"):
            return pool.get_dummy_flat_data_page()
        raise ValueError("kvgrid: get without a target_location needs a registered host pool")

    # -- the rest --------------------------------------------------------------------------

    def clear(self):
        """kvgrid is shared and evicts by itself: nothing is cleared (the blocks stay until
        evicted)."""
        return None

    def get_stats(self):
        return self._grid.stats()

    def close(self):
        if self._own_grid and self._grid is not None:
            self._grid.close()
            self._grid = None
