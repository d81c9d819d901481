"""Thin adapters that plug kvgrid into Python serving stacks, each pinned to the interface
it was written against (its module's INTERFACE string) and each importing its framework's
base class when the framework is installed, running without it otherwise:

- kvgrid.adapters.lmcache.KvgridL2Connector: LMCache multiprocess mode, native_plugin L2
  adapter (``{"type": "native_plugin", "module_path": "kvgrid.adapters.lmcache", ...}``);
- kvgrid.adapters.vllm.KvgridTierManager: a vLLM secondary tier (TieringOffloadingSpec);
- kvgrid.adapters.sglang.KvgridHiCacheStorage: SGLang HiCache storage, dynamic backend.

All the work is libkvgrid's (kvgrid.Grid); doc/INTEGRATIONS.md gives the configurations.
"""
