"""Description: the three adapters of python/kvgrid/adapters held to the contracts their
frameworks define (LMCache MP native_plugin L2 connector, vLLM SecondaryTierManager, SGLang
HiCacheStorage with the zero-copy v1 path), with the frameworks absent, on an embedded grid
and through a real kvgridd on an ephemeral 127.0.0.1 port: the exact method names,
arguments and result shapes; submits that return before their I/O has completed (a grid
whose disk holds every read back 400 ms; a kvgridd stopped with SIGSTOP); many jobs in
flight; data byte-exact; tenants (cache salts, ranks) kept apart; failures reported as a
failed job or a miss, never as wrong data.
"""
import ctypes
import os
import select
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyenv  # noqa: E402

TMP = pyenv.setup("test_python_adapters", need=("numpy", "torch"))
import numpy as np  # noqa: E402
import torch  # noqa: E402

import kvgrid  # noqa: E402
from kvgrid.adapters import lmcache, sglang, vllm  # noqa: E402

CHUNK = 256 * 1024
rng = np.random.default_rng(13)


def rand(n):
    return rng.integers(0, 256, n, dtype=np.uint8)


def slow_grid(name, n, size, key_of, **extra):
    """A grid holding n blocks (key_of(i) -> kvgrid key; data returned) on NVMe only,
    reopened on the fault backend with every read held back 400 ms (and extra settings)."""
    d = os.path.join(TMP, name)
    data = []
    opts = dict(dram_bytes="16M", dir=d, nvme_bytes="256M", segment_bytes="16M")
    with kvgrid.Grid(io_backend="psync", **opts) as g:
        for i in range(n):
            data.append(rand(size))
            g.store([key_of(g, i)], [data[-1]])
    return kvgrid.Grid(io_backend="fault", fault_plan="delay=read:1+:400;inner=psync",
                       promote_on_hit=0, **opts, **extra), data


# ---- LMCache ----------------------------------------------------------------------------

def mp_key(i, salt=None, model="meta-llama/Llama-3.1-8B"):
    """An LMCache MP key string, as _object_key_to_string writes it."""
    k = "%s@%08x@%x@%s" % (model, 1, 0, ("%064x" % (i * 7919 + 1)))
    return k + "@" + salt if salt else k


def drain_until(conn, fids, timeout=30):
    """What LMCache's demux thread does: poll event_fd, then drain_completions()."""
    p = select.poll()
    p.register(conn.event_fd(), select.POLLIN)
    got = {}
    deadline = time.time() + timeout
    while not set(fids) <= set(got) and time.time() < deadline:
        if p.poll(500):
            for c in conn.drain_completions():
                assert len(c) == 4 and isinstance(c[0], int) and isinstance(c[1], bool) \
                    and isinstance(c[2], str), c
                assert c[0] not in got, "future %d completed twice" % c[0]
                got[c[0]] = c
    missing = set(fids) - set(got)
    assert not missing, "futures %s never completed" % sorted(missing)
    # drain_completions clears event_fd (LMCache's demux would spin otherwise): once the
    # last signals have landed, one more drain finds nothing and leaves it unreadable
    time.sleep(0.02)
    assert conn.drain_completions() == []
    assert not p.poll(0), "event_fd still readable after draining"
    return got


def case_lmcache_contract_and_round_trip(conn):
    for m in ("event_fd", "submit_batch_get", "submit_batch_set", "submit_batch_exists",
              "submit_batch_delete", "drain_completions", "close"):
        assert callable(getattr(conn, m)), m
    assert isinstance(conn.event_fd(), int) and conn.drain_completions() == []
    keys = [mp_key(i) for i in range(32)]
    data = [rand(CHUNK) for _ in keys]
    # many batches in flight before any drain: 8 sets of 4 chunks
    fids = [conn.submit_batch_set(keys[b:b + 4], [memoryview(d) for d in data[b:b + 4]])
            for b in range(0, 32, 4)]
    assert len(set(fids)) == 8
    got = drain_until(conn, fids)
    assert all(got[f][1:] == (True, "", None) for f in fids), got
    out = [bytearray(CHUNK) for _ in keys]
    fids = [conn.submit_batch_get(keys[b:b + 8], [memoryview(o) for o in out[b:b + 8]])
            for b in range(0, 32, 8)]
    got = drain_until(conn, fids)
    assert all(got[f][1:] == (True, "", [True] * 8) for f in fids), got
    assert all(bytes(o) == d.tobytes() for o, d in zip(out, data))
    absent = mp_key(999)
    f1 = conn.submit_batch_exists([keys[0], absent, keys[5], keys[31]])
    f2 = conn.submit_batch_delete([keys[5], absent])
    got = drain_until(conn, [f1, f2])
    assert got[f1][1:] == (True, "", [True, False, True, True]), got[f1]
    assert got[f2][1:] == (True, "", [True, False]), got[f2]
    # a miss in a GET batch: that key False, the others loaded, the job not ok
    buf = [bytearray(CHUNK), bytearray(b"\x5a" * CHUNK)]
    f = conn.submit_batch_get([keys[0], keys[5]], [memoryview(b) for b in buf])
    fid, ok, err, bools = drain_until(conn, [f])[f]
    assert (ok, bools) == (False, [True, False]) and "1 of 2" in err
    assert bytes(buf[0]) == data[0].tobytes() and bytes(buf[1]) == b"\x5a" * CHUNK


def case_lmcache_failures_are_failed_jobs(conn):
    k = [mp_key(100), mp_key(101)]
    f = conn.submit_batch_set(k, [memoryview(rand(CHUNK)), memoryview(rand(CHUNK // 2))])
    assert drain_until(conn, [f])[f][1] is True
    # a buffer of another size than the stored chunk: False, never a partial chunk
    small, large = bytearray(CHUNK // 2), bytearray(CHUNK)
    f = conn.submit_batch_get(k, [memoryview(small), memoryview(large)])
    _, ok, err, bools = drain_until(conn, [f])[f]
    assert ok is False and bools == [False, False], (ok, bools)
    # read-only buffers for a GET: refused before any I/O, as a failed job
    f = conn.submit_batch_get(k, [memoryview(bytes(CHUNK)), memoryview(bytes(CHUNK))])
    _, ok, err, bools = drain_until(conn, [f])[f]
    assert ok is False and "read-only" in err and bools == [False, False], err


def case_lmcache_salts_are_tenants(conn):
    d = rand(CHUNK)
    f = conn.submit_batch_set([mp_key(4242, "tenantA")], [memoryview(d)])
    assert drain_until(conn, [f])[f][1]
    f = conn.submit_batch_exists([mp_key(4242, "tenantA"), mp_key(4242, "tenantB"), mp_key(4242)])
    assert drain_until(conn, [f])[f][3] == [True, False, False]
    out = bytearray(b"\x11" * CHUNK)
    f = conn.submit_batch_get([mp_key(4242, "tenantB")], [memoryview(out)])
    assert drain_until(conn, [f])[f][3] == [False] and out == b"\x11" * CHUNK
    assert lmcache.split_key(mp_key(7, "s")) == ("s", mp_key(7))
    other_model = mp_key(4242, "tenantA", model="other/model")
    f = conn.submit_batch_exists([other_model])
    assert drain_until(conn, [f])[f][3] == [False]


def case_lmcache_demux_thread_beside_submitters(conn):
    """LMCache's shape: a demux thread polls event_fd and drains while other threads submit;
    every future completes exactly once and every chunk comes back exact."""
    import threading
    done, stop, lock = {}, threading.Event(), threading.Lock()

    def demux():
        p = select.poll()
        p.register(conn.event_fd(), select.POLLIN)
        while not stop.is_set():
            if p.poll(100):
                for c in conn.drain_completions():
                    with lock:
                        assert c[0] not in done, "future %d completed twice" % c[0]
                        done[c[0]] = c
    t = threading.Thread(target=demux)
    t.start()
    errors = []

    def submitter(w):
        try:
            keys = [mp_key(20000 + w * 100 + i) for i in range(40)]
            data = [rand(16384) for _ in keys]
            sets = [conn.submit_batch_set(keys[i:i + 4], [memoryview(d) for d in data[i:i + 4]])
                    for i in range(0, 40, 4)]
            deadline = time.time() + 30
            while time.time() < deadline and not all(f in done for f in sets):
                time.sleep(0.005)
            assert all(done[f][1] for f in sets)
            outs = [bytearray(16384) for _ in keys]
            gets = [conn.submit_batch_get(keys[i:i + 8], [memoryview(o) for o in outs[i:i + 8]])
                    for i in range(0, 40, 8)]
            while time.time() < deadline and not all(f in done for f in gets):
                time.sleep(0.005)
            assert all(done[f][3] == [True] * 8 for f in gets)
            assert all(bytes(o) == d.tobytes() for o, d in zip(outs, data))
        except Exception as e:  # reported below
            errors.append("submitter %d: %r" % (w, e))
    ws = [threading.Thread(target=submitter, args=(w,)) for w in range(4)]
    [w.start() for w in ws]
    [w.join() for w in ws]
    stop.set()
    t.join()
    assert not errors, errors
    assert len(done) == 4 * (10 + 5)


def case_lmcache_full_request_pool():
    """With libkvgrid's request pool exhausted (req_max 2, reads held back), further batches
    go to the adapter thread and still complete, exactly, through drain_completions."""
    conn0 = lmcache.KvgridL2Connector(dram_bytes="8M")
    names = [mp_key(3000 + i) for i in range(6)]
    g, data = slow_grid("lmbusy", 6, CHUNK, lambda g, i: conn0.kvgrid_keys([names[i]])[0],
                        req_max=2)
    conn0.close()
    conn = lmcache.KvgridL2Connector(grid=g)
    try:
        try:  # the pool really is full
            fs = [g.load_async([conn.kvgrid_keys([names[0]])[0]], [bytearray(CHUNK)])
                  for _ in range(3)]
            raise AssertionError("a third request fitted in a pool of 2")
        except kvgrid.BusyError as e:
            assert e.code == kvgrid.EBUSY
        for f in g.reap() + list(g._pending.values()):
            f.wait()
        outs = [bytearray(CHUNK) for _ in names]
        t0 = time.monotonic()
        fids = [conn.submit_batch_get([k], [memoryview(o)]) for k, o in zip(names, outs)]
        assert time.monotonic() - t0 < 0.3, "submits waited for the full pool"
        got = drain_until(conn, fids)
        assert all(got[f][1:] == (True, "", [True]) for f in fids), got
        assert all(bytes(o) == d.tobytes() for o, d in zip(outs, data))
    finally:
        conn.close()
        g.close()


def case_lmcache_submit_does_not_wait_for_io():
    conn0 = lmcache.KvgridL2Connector(dram_bytes="8M")
    names = [mp_key(i) for i in range(4)]

    def key_of(g, i):
        return conn0.kvgrid_keys([names[i]])[0]  # same namespace: defaults on both grids
    g, data = slow_grid("lmslow", 4, CHUNK, key_of)
    conn0.close()
    conn = lmcache.KvgridL2Connector(grid=g)
    try:
        out = [bytearray(CHUNK) for _ in names]
        t0 = time.monotonic()
        f = conn.submit_batch_get(names, [memoryview(o) for o in out])
        assert time.monotonic() - t0 < 0.2, "submit_batch_get waited for the disk"
        assert conn.drain_completions() == []
        got = drain_until(conn, [f])
        assert time.monotonic() - t0 >= 0.39
        assert got[f][1:] == (True, "", [True] * 4)
        assert all(bytes(o) == d.tobytes() for o, d in zip(out, data))
    finally:
        conn.close()
        g.close()


def case_lmcache_through_kvgridd(srv):
    conn = lmcache.KvgridL2Connector(**{"servers": srv.addr, "timeout_ms": 20000})
    try:
        case_lmcache_contract_and_round_trip(conn)
        case_lmcache_salts_are_tenants(conn)
        case_lmcache_demux_thread_beside_submitters(conn)
        # a stopped server: submits still return at once, completions come after SIGCONT
        keys = [mp_key(500 + i) for i in range(4)]
        data = [rand(CHUNK) for _ in keys]
        f = conn.submit_batch_set(keys, [memoryview(d) for d in data])
        drain_until(conn, [f])
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            out = [bytearray(CHUNK) for _ in keys]
            t0 = time.monotonic()
            fg = conn.submit_batch_get(keys, [memoryview(o) for o in out])
            fe = conn.submit_batch_exists(keys)
            assert time.monotonic() - t0 < 0.2, "a submit waited for the stopped server"
            time.sleep(0.5)
            assert conn.drain_completions() == []
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        got = drain_until(conn, [fg, fe])
        assert got[fg][1:] == (True, "", [True] * 4) and got[fe][3] == [True] * 4
        assert all(bytes(o) == d.tobytes() for o, d in zip(out, data))
    finally:
        conn.close()


def case_lmcache_kvgridd_tenants_by_token():
    """Against a kvgridd with an auth file, each connector's token is its server-side
    tenant: a chunk stored under one token is invisible under the other, and a wrong
    token is refused at open with the library's error."""
    auth = os.path.join(TMP, "tokens")
    with open(auth, "w") as f:
        f.write("tok-a tenant-a\ntok-b tenant-b\n")
    files = {}
    for t in ("tok-a", "tok-b", "tok-x"):
        files[t] = os.path.join(TMP, t)
        with open(files[t], "w") as f:
            f.write(t + "\n")
    srv = pyenv.Kvgridd(TMP, "auth", "--auth-file", auth)
    a = lmcache.KvgridL2Connector(servers=srv.addr, auth_token_file=files["tok-a"])
    b = lmcache.KvgridL2Connector(servers=srv.addr, auth_token_file=files["tok-b"])
    try:
        k, d = mp_key(9090), rand(CHUNK)
        f = a.submit_batch_set([k], [memoryview(d)])
        assert drain_until(a, [f])[f][1]
        fa, fb = a.submit_batch_exists([k]), b.submit_batch_exists([k])
        assert drain_until(a, [fa])[fa][3] == [True] and drain_until(b, [fb])[fb][3] == [False]
        out = bytearray(CHUNK)
        f = b.submit_batch_get([k], [memoryview(out)])
        assert drain_until(b, [f])[f][3] == [False] and out == bytearray(CHUNK)
        try:
            x = lmcache.KvgridL2Connector(servers=srv.addr, auth_token_file=files["tok-x"])
            fx = x.submit_batch_exists([k])  # refused at open, or on first use
            got = drain_until(x, [fx])[fx]
            x.close()
            assert got[1] is False, got
        except kvgrid.Error as e:
            assert isinstance(e, kvgrid.AuthError) or "auth" in str(e).lower(), repr(e)
    finally:
        a.close()
        b.close()
        assert srv.stop() == 0


# ---- vLLM -------------------------------------------------------------------------------

@dataclass
class JobMetadata:  # vllm/v1/kv_offload/tiering/base.py
    job_id: int
    keys: list
    block_ids: np.ndarray
    is_promotion: bool = False
    req_context: object = None


@dataclass
class _ModelConfig:
    model: str = "Qwen/Qwen3-8B"


@dataclass
class _VllmConfig:
    model_config: _ModelConfig = field(default_factory=_ModelConfig)


SLOT = 64 * 1024


def offload_key(i, group=0):
    """vLLM's offload key: block hash bytes + 4-byte big-endian group index."""
    return (i * 2654435761 % 2**256).to_bytes(32, "big") + group.to_bytes(4, "big")


def finished(tier, job_ids, timeout=30):
    out = {}
    deadline = time.time() + timeout
    while not set(job_ids) <= set(out) and time.time() < deadline:
        for r in tier.get_finished():
            assert r.job_id not in out, "job %d reported twice" % r.job_id
            out[r.job_id] = r.success
        time.sleep(0.002)
    assert set(job_ids) <= set(out), "jobs %s never finished" % (set(job_ids) - set(out))
    return out


def case_vllm_store_lookup_load(tier, cpu):
    assert tier.lookup(offload_key(1), None) is False
    keys = [offload_key(i) for i in range(40)]
    for i in range(40):
        cpu[i] = rand(SLOT)
    want = cpu[:40].copy()
    # 10 store jobs in flight
    for j in range(10):
        tier.submit_store(JobMetadata(j, keys[j * 4:j * 4 + 4], np.arange(j * 4, j * 4 + 4)))
    assert finished(tier, range(10)) == {j: True for j in range(10)}
    assert all(tier.lookup(k, None) is True for k in keys)
    assert tier.lookup(offload_key(1, group=1), None) is False  # another group
    cpu[40:80] = 0
    tier.submit_load(JobMetadata(100, keys[:20], np.arange(60, 80), True))
    tier.submit_load(JobMetadata(101, keys[20:], np.arange(40, 60), True))
    assert finished(tier, [100, 101]) == {100: True, 101: True}
    assert np.array_equal(cpu[60:80], want[:20]) and np.array_equal(cpu[40:60], want[20:])
    # a job with a missing block fails; the missing block's slot is left alone
    cpu[90] = 0x33
    tier.submit_load(JobMetadata(102, [keys[0], offload_key(12345)], np.array([89, 90])))
    assert finished(tier, [102]) == {102: False}
    assert np.array_equal(cpu[89], want[0]) and (cpu[90] == 0x33).all()
    # a bad block id is a failed job, not an exception in the scheduler
    tier.submit_store(JobMetadata(103, [keys[0]], np.array([10**6])))
    assert finished(tier, [103]) == {103: False}
    tier.touch(keys[:2], None)
    assert tier.request_finished(None) is None


def case_vllm_embedded():
    cpu = np.zeros((128, SLOT), np.uint8)
    # as vLLM's SecondaryTierFactory builds it: the tier's entry, less "type", as keywords
    entry = {"type": "KvgridTierManager", "module_path": "kvgrid.adapters.vllm",
             "dram_bytes": "64M"}
    kwargs = {k: v for k, v in entry.items() if k != "type"}
    tier = vllm.KvgridTierManager(vllm_config=_VllmConfig(), primary_kv_view=memoryview(cpu),
                                  tier_type=entry["type"], **kwargs)
    try:
        assert tier.slot_bytes == SLOT and tier._grid.config["model_id"] == "Qwen/Qwen3-8B"
        case_vllm_store_lookup_load(tier, cpu)
    finally:
        tier.shutdown()
    # the base class's positional form; a one-dimensional view needs block_bytes
    flat = np.zeros(16 * 4096, np.uint8)
    try:
        vllm.KvgridTierManager(None, memoryview(flat), "kvgrid", dram_bytes="8M")
        raise AssertionError("1-D view without block_bytes accepted")
    except ValueError as e:
        assert "block_bytes" in str(e)
    try:
        vllm.KvgridTierManager(None, memoryview(bytes(4096)), "kvgrid", block_bytes=4096)
        raise AssertionError("read-only view accepted")
    except ValueError as e:
        assert "read-only" in str(e)
    t = vllm.KvgridTierManager(None, memoryview(flat), "kvgrid", block_bytes=4096,
                               dram_bytes="8M")
    assert t.slot_bytes == 4096
    t.shutdown()


def case_vllm_nonblocking_and_full_pool():
    """Loads from a disk that holds reads back 400 ms: submit_load returns at once; with
    libkvgrid's request pool full (req_max 2) the other jobs go to the adapter thread; all
    finish, byte-exact."""
    keys = [offload_key(50 + i) for i in range(5)]
    g, data = slow_grid("vllmslow", 5, SLOT,
                        lambda g, i: g.raw_key(vllm.KEY_DOMAIN + keys[i]), req_max=2)
    cpu = np.zeros((16, SLOT), np.uint8)
    tier = vllm.KvgridTierManager(None, memoryview(cpu), "kvgrid", grid=g)
    try:
        t0 = time.monotonic()
        for j in range(5):
            tier.submit_load(JobMetadata(j, [keys[j]], np.array([j + 8])))
        assert time.monotonic() - t0 < 0.3, "submit_load waited for the disk"
        assert list(tier.get_finished()) == []
        assert finished(tier, range(5)) == {j: True for j in range(5)}
        assert all(np.array_equal(cpu[j + 8], data[j]) for j in range(5))
    finally:
        tier.shutdown()
        g.close()


def case_vllm_through_kvgridd(srv):
    cpu = np.zeros((128, SLOT), np.uint8)
    tier = vllm.KvgridTierManager(None, memoryview(cpu), "kvgrid", servers=srv.addr,
                                  timeout_ms=20000)
    try:
        # remote lookups are asked on the adapter thread: None until the answer is back
        k = offload_key(777)
        assert tier.lookup(k, None) is None
        deadline = time.time() + 10
        ans = None
        while ans is None and time.time() < deadline:
            time.sleep(0.01)
            ans = tier.lookup(k, None)
        assert ans is False
        # a store in flight (server stopped): lookup answers None, never True early
        cpu[0] = rand(SLOT)
        os.kill(srv.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            tier.submit_store(JobMetadata(1, [k], np.array([0])))
            assert time.monotonic() - t0 < 0.2, "submit_store waited for the server"
            assert tier.lookup(k, None) is None
            time.sleep(0.3)
            assert list(tier.get_finished()) == []
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
        assert finished(tier, [1]) == {1: True}
        cpu[1] = 0
        tier.submit_load(JobMetadata(2, [k], np.array([1])))
        assert finished(tier, [2]) == {2: True} and np.array_equal(cpu[1], cpu[0])
    finally:
        tier.shutdown()


# ---- SGLang ------------------------------------------------------------------------------

@dataclass
class HiCacheStorageConfig:  # python/sglang/srt/mem_cache/hicache_storage.py
    tp_rank: int = 0
    tp_size: int = 2
    pp_rank: int = 0
    pp_size: int = 1
    attn_cp_rank: int = 0
    attn_cp_size: int = 1
    is_mla_model: bool = False
    enable_storage_metrics: bool = False
    is_page_first_layout: bool = True
    model_name: Optional[str] = "deepseek-ai/DeepSeek-V3"
    extra_config: Optional[dict] = None


class PageFirstMHAPool:
    """An MHA host pool in a page_first layout: kv_buffer (tokens, 2, layers, heads, dim);
    get_page_buffer_meta gives each page's K and V addresses, as SGLang's does."""
    layout = "page_first"

    def __init__(self, pages=32, page_size=4, layers=2, heads=2, dim=16):
        self.page_size, self.size = page_size, pages * page_size
        self.kv_buffer = torch.zeros((self.size, 2, layers, heads, dim), dtype=torch.bfloat16)
        self.part = page_size * layers * heads * dim * 2  # bytes of K (or V) of a page
        self.flat = self.kv_buffer.view(torch.uint8).view(pages, 2, self.part)

    def get_page_buffer_meta(self, indices):
        ptrs = []
        base = self.flat.data_ptr()
        for i in indices.tolist()[::self.page_size]:
            page = i // self.page_size
            ptrs += [base + (page * 2) * self.part, base + (page * 2 + 1) * self.part]
        return ptrs, [self.part] * len(ptrs)

    def get_dummy_flat_data_page(self):
        return torch.zeros(2 * self.part, dtype=torch.uint8)


def page_keys(n, seed=b""):
    import hashlib
    keys, prev = [], b""
    for i in range(n):
        h = hashlib.sha256(prev + seed + i.to_bytes(4, "little")).digest()
        keys.append(h.hex())
        prev = h
    return keys


def case_sglang_plain_and_v1(settings):
    cfg = HiCacheStorageConfig(extra_config={"backend_name": "kvgrid", "kvgrid": settings})
    st = sglang.KvgridHiCacheStorage(cfg, {})
    try:
        keys = page_keys(6)
        vals = [torch.randint(0, 255, (4096,), dtype=torch.uint8) for _ in keys]
        assert st.set(keys[0], vals[0]) is True
        assert st.batch_set(keys[1:4], vals[1:4]) is True
        assert st.exists(keys[0]) and not st.exists(keys[5])
        assert st.batch_exists(keys) == 4
        t = torch.zeros(4096, dtype=torch.uint8)
        assert st.get(keys[2], t) is t and torch.equal(t, vals[2])
        got = st.batch_get(keys[3:6], [torch.zeros(4096, dtype=torch.uint8) for _ in range(3)])
        assert torch.equal(got[0], vals[3]) and got[1] is None and got[2] is None
        # a target of another size than the stored page: None for it, the others loaded
        got = st.batch_get(keys[:2], [torch.zeros(100, dtype=torch.uint8),
                                      torch.zeros(4096, dtype=torch.uint8)])
        assert got[0] is None and torch.equal(got[1], vals[1])
        # the zero-copy v1 path over a page_first MHA host pool
        pool = PageFirstMHAPool()
        st.register_mem_pool_host(pool)
        v1 = page_keys(8, b"v1")
        pool.flat[:8].copy_(torch.randint(0, 255, (8, 2, pool.part), dtype=torch.uint8))
        want = pool.flat[:8].clone()
        src = torch.arange(0, 8 * pool.page_size)  # host slots of pages 0..7
        assert st.batch_set_v1(v1, src, None) == [True] * 8
        assert st.batch_exists(v1) == 8 and st.batch_exists(v1[:3] + page_keys(1, b"x")) == 3
        dst = torch.arange(16 * pool.page_size, 24 * pool.page_size)  # pages 16..23
        assert st.batch_get_v1(v1, dst, None) == [True] * 8
        assert torch.equal(pool.flat[16:24], want)
        # a page whose V part is gone is a miss, for exists and for get
        st._grid.delete(st._keys([v1[2]], 2)[1:2])
        assert st.batch_exists(v1) == 2
        pool.flat[24:27] = 0x77
        res = st.batch_get_v1(v1[:3], torch.arange(24 * pool.page_size, 27 * pool.page_size))
        assert res == [True, True, False], res
        assert torch.equal(pool.flat[24:26], want[:2])
        # SGLang's prefetch thread dies on None: unsupported calls raise, never return None
        st2 = sglang.KvgridHiCacheStorage(cfg, {})
        try:
            st2.batch_get_v1(v1, dst, None)
            raise AssertionError("v1 without a host pool did not raise")
        except RuntimeError as e:
            assert "register_mem_pool_host" in str(e)
        finally:
            st2.close()
        assert isinstance(st.get_stats(), dict)
    finally:
        st.close()


def case_sglang_namespaces():
    settings = {"dram_bytes": "32M"}
    g = kvgrid.Grid(**settings)
    try:
        def storage(**kw):
            extra = {"kvgrid": settings}
            if "tenant" in kw:
                extra["tenant"] = kw.pop("tenant")
            return sglang.KvgridHiCacheStorage(HiCacheStorageConfig(extra_config=extra, **kw),
                                               {}, grid=g)
        keys = page_keys(2, b"ns")
        v = torch.ones(1024, dtype=torch.uint8)
        assert storage(tp_rank=0).batch_set(keys, [v, v])
        assert storage(tp_rank=0).batch_exists(keys) == 2
        assert storage(tp_rank=1).batch_exists(keys) == 0  # another TP shard's KV
        assert storage(tenant="acme").batch_exists(keys) == 0
        assert storage(model_name="other").batch_exists(keys) == 0
        assert storage(tp_rank=0, is_mla_model=True).batch_set(keys, [v, v])
        assert storage(tp_rank=1, is_mla_model=True).batch_exists(keys) == 2  # MLA: shared
    finally:
        g.close()


def case_sglang_through_kvgridd(srv):
    case_sglang_plain_and_v1({"servers": srv.addr})


FAKE_VLLM = """
from abc import ABC, abstractmethod
from dataclasses import dataclass
@dataclass
class JobResult:
    job_id: int
    success: bool
class SecondaryTierManager(ABC):
    def __init__(self, offloading_spec, primary_kv_view, tier_type):
        self._primary_kv_view = primary_kv_view
        self.tier_type = tier_type
    @abstractmethod
    def lookup(self, key, req_context): ...
    @abstractmethod
    def submit_store(self, job_metadata): ...
    @abstractmethod
    def submit_load(self, job_metadata): ...
    @abstractmethod
    def get_finished(self): ...
"""
FAKE_SGLANG = """
from abc import ABC, abstractmethod
class HiCacheStorage(ABC):
    def register_mem_pool_host(self, mem_pool_host):
        self.mem_pool_host = mem_pool_host
    def batch_get_v1(self, keys, host_indices, extra_info=None):
        raise NotImplementedError()
    @abstractmethod
    def get(self, key, target_location=None, target_sizes=None): ...
    @abstractmethod
    def batch_get(self, keys, target_locations=None, target_sizes=None): ...
    @abstractmethod
    def set(self, key, value=None, target_location=None, target_sizes=None): ...
    @abstractmethod
    def batch_set(self, keys, values=None, target_locations=None, target_sizes=None): ...
    @abstractmethod
    def exists(self, key): ...
"""
PROBE = """
import numpy as np
from kvgrid.adapters import vllm, sglang
from vllm.v1.kv_offload.tiering.base import SecondaryTierManager, JobResult
from sglang.srt.mem_cache.hicache_storage import HiCacheStorage
assert issubclass(vllm.KvgridTierManager, SecondaryTierManager)
assert vllm.JobResult is JobResult
t = vllm.KvgridTierManager(None, memoryview(np.zeros((4, 64), np.uint8)), "kvgrid",
                           dram_bytes="8M")
assert t._primary_kv_view is not None and t.lookup(b"k" * 36, None) is False
t.shutdown()
assert issubclass(sglang.KvgridHiCacheStorage, HiCacheStorage)
print("base classes used")
"""


def case_framework_base_classes_when_installed():
    """With (stand-ins for) vLLM and SGLang importable, the adapters subclass their real
    base classes and every abstract method is implemented (they instantiate)."""
    root = os.path.join(TMP, "frameworks")
    for rel, text in (("vllm/v1/kv_offload/tiering/base.py", FAKE_VLLM),
                      ("sglang/srt/mem_cache/hicache_storage.py", FAKE_SGLANG)):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        d = os.path.dirname(path)
        while d != root:  # packages all the way down
            open(os.path.join(d, "__init__.py"), "a").close()
            d = os.path.dirname(d)
    import subprocess
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.path.join(pyenv.ROOT, "python"))
    probe = PROBE + (
        "st = sglang.KvgridHiCacheStorage(type('C', (), {'extra_config': {'kvgrid': "
        "{'dram_bytes': '8M'}}})(), {})\nassert isinstance(st, HiCacheStorage)\n"
        "assert st.set('ab' * 32, np.ones(8, np.uint8)) and st.exists('ab' * 32)\n"
        "st.close()\n")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "base classes used" in out.stdout, out.stderr


if __name__ == "__main__":
    conn = lmcache.KvgridL2Connector(dram_bytes="64M")
    try:
        pyenv.run_cases([case_lmcache_contract_and_round_trip, case_lmcache_failures_are_failed_jobs,
                         case_lmcache_salts_are_tenants,
                         case_lmcache_demux_thread_beside_submitters], conn)
    finally:
        conn.close()
    pyenv.run_cases([case_lmcache_submit_does_not_wait_for_io, case_lmcache_full_request_pool,
                     case_vllm_embedded, case_vllm_nonblocking_and_full_pool,
                     case_sglang_namespaces, case_framework_base_classes_when_installed])
    pyenv.run_cases([case_sglang_plain_and_v1], {"dram_bytes": "64M"})
    if not os.access(pyenv.KVGRIDD, os.X_OK):
        print("kvgridd is not built (make): the cases through it did not run")
        sys.exit(77)
    srv = pyenv.Kvgridd(TMP, "adapters")
    try:
        pyenv.run_cases([case_lmcache_through_kvgridd, case_vllm_through_kvgridd,
                         case_sglang_through_kvgridd], srv)
        pyenv.run_cases([case_lmcache_kvgridd_tenants_by_token])
    finally:
        assert srv.stop() == 0
    shutil.rmtree(TMP, ignore_errors=True)
