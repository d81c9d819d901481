"""kvgrid: a KV-cache memory grid for LLM inference (DRAM + NVMe tiers, or kvgridd servers),
from Python.

    import kvgrid, numpy as np
    with kvgrid.Grid(dram_bytes="4G", dir="/mnt/nvme/kvgrid", model_id="my-model",
                     dtype="bf16", layers=32, kv_heads=8, head_dim=128) as g:
        keys = g.block_keys(token_ids)                 # chained block keys
        hits, tiers = g.lookup(keys)                   # longest cached prefix
        bufs = [np.empty(g.block_bytes, np.uint8) for _ in range(hits)]
        g.load(keys[:hits], bufs)                      # into the arrays, no copy in Python
        fut = g.store_async(new_keys, new_bufs)        # a Future; Grid.event_fd wakes pollers

A thin layer over libkvgrid.so through ctypes (kvgrid/_lib.py says why and where the library
is found); the library does all the work.  Adapters for LMCache, vLLM and SGLang are in
kvgrid.adapters; doc/INTEGRATIONS.md shows how to configure each.
"""
from .grid import (EBASE, ENOTFOUND, ECORRUPT, ECONFIG, EFULL, ETOOBIG, EBUFSIZE, EDEGRADED,
                   EBUSY, ECLOSED, EPROTO, ETIMEDOUT, EAUTH, EINPROGRESS, LOAD_NOPROMOTE,
                   STORE_NVME, STORE_CONTINUES, STORE_LAST, AuthError, BufferSizeError,
                   BusyError, ClosedError, ConfigError, DegradedError, Error, FullError,
                   Future, Grid, KeyList, Lookup, Pointer, ProtocolError, RemoteTimeoutError,
                   TooBigError, buffer_address, error, version)
from ._lib import path as library_path

__all__ = [
    "Grid", "Future", "KeyList", "Lookup", "Pointer", "Error", "ConfigError", "FullError", "TooBigError",
    "BufferSizeError", "DegradedError", "BusyError", "ClosedError", "ProtocolError",
    "RemoteTimeoutError", "AuthError", "error", "version", "buffer_address", "library_path",
    "EBASE", "ENOTFOUND", "ECORRUPT", "ECONFIG", "EFULL", "ETOOBIG", "EBUFSIZE", "EDEGRADED",
    "EBUSY", "ECLOSED", "EPROTO", "ETIMEDOUT", "EAUTH", "EINPROGRESS", "LOAD_NOPROMOTE",
    "STORE_NVME", "STORE_CONTINUES", "STORE_LAST",
]
__version__ = "1.1.0"
