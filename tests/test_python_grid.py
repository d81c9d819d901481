"""Description: the kvgrid Python package (python/kvgrid) over this build's libkvgrid.so.1.
Its mirror of struct kvg_config has the library's size; keys are the vectors of doc/KEYS.md;
store and load move bytes exactly between the grid and bytearrays, memoryviews, numpy arrays
of several dtypes and shapes, CPU torch tensors and raw pointers, without a copy in Python;
a miss is None, not an exception; wrong sizes, read-only, non-contiguous and non-CPU buffers
are refused with a clear error before any I/O; library errors are typed exceptions with
kvg_strerror's message; asynchronous batches return futures at once (proved on the fault
backend's slow disk), many run at once and their completions wake poll() and asyncio through
the grid's eventfd; the GIL is released while a call waits; many threads share a grid;
pin, delete, prefetch and stats work; `pip install ./python` works offline in a venv.
"""
import asyncio
import ctypes
import os
import select
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyenv  # noqa: E402

TMP = pyenv.setup("test_python_grid", need=("numpy", "torch"))
import numpy as np  # noqa: E402
import torch  # noqa: E402

import kvgrid  # noqa: E402
from kvgrid import _lib  # noqa: E402

MiB = 1 << 20
KEYS_MD = {  # doc/KEYS.md, "Test vectors"
    "block0": "57e98703a087a28ecd6fe92b7fe94f4cae745366d11e637e206f0e6a56df7db5",
    "block1": "e2bf7d1a50de53c17c5310a828a33fb096f541513c71cf96c30719dcb7a2a445",
    "block2": "3a55a6c7aece1999b00025e40a60508f354fc147b407bf14f9a8d3db3624005f",
    "raw": "cfc8db9a22f4c755cc5f3df41803c83050bc94f3087249d30b23f9638592c1f7",
    "acme.block0": "8ae477a894201fae9b584494f68e0aaa2e94a72f7f450a0f97deb8b0bde3367b",
}
LAYOUT = dict(model_id="meta-llama/Llama-3.1-8B", dtype="bf16", layers=32, kv_heads=8,
              head_dim=128, block_tokens=16)


def grid(**kw):
    kw.setdefault("dram_bytes", "64M")
    return kvgrid.Grid(**kw)


def case_config_mirror_matches_library():
    # a config buffer larger than any struct: kvg_config_of reports the library's own size
    big = ctypes.create_string_buffer(ctypes.sizeof(_lib.Config) + 4096)
    assert _lib.lib.kvg_config_init_size(big, len(big)) == 0
    assert _lib.lib.kvg_config_set(big, b"dram_bytes", b"8M", None, 0) == 0
    g = ctypes.c_void_p()
    assert _lib.lib.kvg_open(big, ctypes.byref(g), None, 0) == 0
    size = ctypes.c_uint32.from_address(_lib.lib.kvg_config_of(g)).value
    _lib.lib.kvg_close(g)
    assert size == ctypes.sizeof(_lib.Config), (size, ctypes.sizeof(_lib.Config))
    assert kvgrid.version().startswith("1.") and int(kvgrid.version().split(".")[1]) >= 1
    with grid(**LAYOUT) as g:
        c = g.config
        assert c["model_id"] == LAYOUT["model_id"] and c["block_tokens"] == 16
        assert c["dram_bytes"] == 64 * MiB
        assert g.block_bytes == 2 * 32 * 8 * 128 * 2 * 16


def case_keys_are_the_documented_vectors():
    with grid(**LAYOUT) as g:
        keys = g.block_keys(range(48))
        assert keys.hex() == [KEYS_MD["block0"], KEYS_MD["block1"], KEYS_MD["block2"]]
        assert g.raw_key(b"vllm:block:0").hex() == KEYS_MD["raw"]
        assert g.raw_keys([b"vllm:block:0"])[0] == g.raw_key("vllm:block:0")
        # chained: the keys of the later blocks from the first block's key as parent
        assert list(g.block_keys(np.arange(16, 48, dtype=np.uint32), parent=keys[0])) == \
            list(keys[1:])
        assert len(g.block_keys(range(47))) == 2  # full blocks only
        try:
            g.block_keys(np.arange(48, dtype=np.int64))
            raise AssertionError("64-bit token ids accepted")
        except ValueError as e:
            assert "32-bit" in str(e)
    with grid(tenant="acme", **LAYOUT) as g:
        assert g.block_keys(range(16))[0].hex() == KEYS_MD["acme.block0"]


def case_round_trip_every_buffer_kind():
    rng = np.random.default_rng(1)
    with grid(**LAYOUT) as g:
        n = 6
        keys = g.raw_keys([b"kind%d" % i for i in range(n)])
        src = [
            bytearray(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()),
            memoryview(bytearray(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())),
            rng.standard_normal((16, 64)).astype(np.float16),
            rng.integers(0, 2**31, (3, 4, 5), dtype=np.int32),
            torch.randn(2, 128, dtype=torch.bfloat16),
            bytes(rng.integers(0, 256, 777, dtype=np.uint8).tobytes()),  # read-only: stores
        ]
        g.store(keys, src)
        assert g.lookup(keys) == (n, ["dram"] * n)
        dst = [bytearray(4096), memoryview(bytearray(5000)), np.zeros((16, 64), np.float16),
               np.zeros((3, 4, 5), np.int32), torch.zeros(2, 128, dtype=torch.bfloat16),
               np.zeros(777, np.uint8)]
        lengths = g.load(keys, dst)
        assert lengths == [4096, 5000, 2048, 240, 512, 777], lengths
        assert dst[0] == src[0] and dst[1] == src[1]
        assert np.array_equal(dst[2], src[2]) and np.array_equal(dst[3], src[3])
        assert torch.equal(dst[4], src[4]) and dst[5].tobytes() == src[5]
        # a slice of a larger array, loaded in place (no copy: the parent sees the bytes)
        parent = np.zeros((4, 4096), np.uint8)
        assert g.load(keys[:1], [parent[2]]) == [4096]
        assert parent[2].tobytes() == bytes(src[0]) and not parent[[0, 1, 3]].any()
        # a raw pointer (what SGLang's host pool hands out)
        buf = (ctypes.c_char * 4096)()
        assert g.load(keys[:1], [kvgrid.Pointer(ctypes.addressof(buf), 4096, buf)]) == [4096]
        assert buf.raw == bytes(src[0])
        # a buffer larger than the block: the block's length comes back
        big = bytearray(10000)
        assert g.load(keys[:1], [big]) == [4096] and big[:4096] == src[0]


def case_miss_is_a_result():
    with grid() as g:
        k = g.raw_keys([b"present", b"absent"])
        g.store(k[:1], [b"x" * 100])
        out = [bytearray(100), bytearray(b"\x01" * 100)]
        assert g.load(k, out) == [100, None]
        assert g.lookup(k) == (1, ["dram"])
        assert g.exists(k) == [True, False]
        assert g.exists([k[1], k[0], k[1]]) == [False, True, False]
        f = g.load_async(k, out)
        assert f.result(10) == [100, None]
        assert f.statuses() == [0, kvgrid.ENOTFOUND]


def case_bad_buffers_refused_before_io():
    with grid() as g:
        k = g.raw_keys([b"a", b"b"])
        g.store(k, [b"1" * 64, b"2" * 64])
        before = g.stats()["loads"]

        def refused(bufs, exc, words, fn=g.load):
            try:
                fn(k, bufs)
            except exc as e:
                assert all(w in str(e) for w in words), str(e)
                return
            raise AssertionError("accepted %r" % (bufs,))
        refused([bytearray(64), b"\0" * 64], ValueError, ["load buffer 1", "read-only"])
        refused([bytearray(64), np.zeros((8, 16), np.uint8)[:, ::2]], ValueError,
                ["load buffer 1", "not C-contiguous"])
        refused([bytearray(64), torch.zeros(8, 16).t()], ValueError,
                ["load buffer 1", "not a contiguous tensor"])
        refused([bytearray(64), 12345], TypeError, ["load buffer 1", "no buffer protocol"])
        refused([bytearray(64)], ValueError, ["2 keys but 1 buffers"])
        refused([np.zeros(64, np.uint8)[::2], b"x"], ValueError, ["store buffer 0"], g.store)
        if torch.cuda.is_available():  # never on the test machines; kept for GPU hosts
            refused([bytearray(64), torch.zeros(64, device="cuda")], ValueError, ["cuda"])
        assert g.stats()["loads"] == before, "a refused batch reached the grid"
        try:
            g.lookup([b"short"])
            raise AssertionError("a 5-byte key accepted")
        except ValueError as e:
            assert "32" in str(e)
        # a buffer smaller than the block: the library's error, typed, with its message
        out = [bytearray(64), bytearray(10)]
        try:
            g.load(k, out)
            raise AssertionError("short buffer accepted")
        except kvgrid.BufferSizeError as e:
            assert e.code == kvgrid.EBUFSIZE and "block 1" in str(e)
            assert e.statuses == [0, kvgrid.EBUFSIZE]
            assert "buffer" in str(e).lower()


def case_errors_are_typed_with_the_library_message():
    try:
        kvgrid.Grid(dram_bytes="lots")
        raise AssertionError("bad size accepted")
    except kvgrid.ConfigError as e:
        assert "dram_bytes" in str(e) or "lots" in str(e), str(e)
    try:
        kvgrid.Grid(no_such_setting=1)
        raise AssertionError("unknown setting accepted")
    except kvgrid.ConfigError as e:
        assert "no_such_setting" in str(e), str(e)
    try:
        kvgrid.Grid(os.path.join(TMP, "missing.conf"))
        raise AssertionError("missing config file accepted")
    except kvgrid.ConfigError as e:
        assert "missing.conf" in str(e), str(e)
    conf = os.path.join(TMP, "g.conf")
    with open(conf, "w") as f:
        f.write("dram_bytes = 32M\nblock_tokens = 32\n")
    with kvgrid.Grid(conf, max_value_bytes="1K") as g:
        assert g.config["dram_bytes"] == 32 * MiB and g.block_tokens == 32
        try:
            g.store([g.raw_key("big")], [bytearray(4096)])
            raise AssertionError("value over max_value_bytes accepted")
        except kvgrid.TooBigError as e:
            assert e.code == kvgrid.ETOOBIG and _lib.strerror(kvgrid.ETOOBIG) in str(e)
    g.close()  # closed twice: nothing happens
    try:
        g.lookup([bytes(32)])
        raise AssertionError("a closed grid answered")
    except kvgrid.ClosedError:
        pass


def case_many_async_batches_and_eventfd():
    with grid(dram_bytes="256M") as g:
        rng = np.random.default_rng(2)
        batches, futs = [], []
        for b in range(64):
            keys = g.raw_keys([b"async%d.%d" % (b, i) for i in range(8)])
            data = [rng.integers(0, 256, 32768, dtype=np.uint8) for _ in range(8)]
            batches.append((keys, data))
            futs.append(g.store_async(keys, data))
        p = select.poll()
        p.register(g.event_fd, select.POLLIN)
        done = set()
        deadline = time.time() + 30
        while len(done) < len(futs) and time.time() < deadline:
            if p.poll(1000):
                done.update(id(f) for f in g.reap())
        assert len(done) == len(futs), "%d of %d stores signalled" % (len(done), len(futs))
        assert g.in_flight() == 0 and all(f.done() and f.result() is None for f in futs)
        outs = [[np.zeros(32768, np.uint8) for _ in range(8)] for _ in batches]
        futs = [g.load_async(k, o) for (k, _), o in zip(batches, outs)]
        assert [f.result(30) for f in futs] == [[32768] * 8] * 64
        for (_, data), out in zip(batches, outs):
            assert all(np.array_equal(a, b) for a, b in zip(data, out))

        async def main():  # an asyncio loop waits on the eventfd
            loop = asyncio.get_running_loop()
            ready = asyncio.Event()
            loop.add_reader(g.event_fd, ready.set)
            out = [np.zeros(32768, np.uint8) for _ in range(8)]
            f = g.load_async(batches[5][0], out)
            got = []
            while not got:
                await asyncio.wait_for(ready.wait(), 10)
                ready.clear()
                got = g.reap()
            loop.remove_reader(g.event_fd)
            assert got == [f] and f.result(0) == [32768] * 8
            assert all(np.array_equal(a, b) for a, b in zip(out, batches[5][1]))
        asyncio.run(main())


def slow_grid(dirpath, n, size):
    """A grid whose n blocks are on NVMe only, reopened on the fault backend with every
    read held back 400 ms."""
    keys_data = []
    with kvgrid.Grid(dram_bytes="16M", dir=dirpath, nvme_bytes="256M",
                     segment_bytes="16M", io_backend="psync") as g:
        for i in range(n):
            k = g.raw_key(b"slow%d" % i)
            d = np.frombuffer(os.urandom(size), np.uint8)
            g.store([k], [d])
            keys_data.append((k, d))
    g = kvgrid.Grid(dram_bytes="16M", dir=dirpath, nvme_bytes="256M", segment_bytes="16M",
                    io_backend="fault", fault_plan="delay=read:1+:400;inner=psync",
                    promote_on_hit=0)
    return g, keys_data


def case_async_submit_returns_before_io():
    d = os.path.join(TMP, "slow")
    g, kd = slow_grid(d, 4, 256 * 1024)
    try:
        assert g.lookup([k for k, _ in kd]).tiers == ["nvme"] * 4
        out = [np.zeros(256 * 1024, np.uint8) for _ in kd]
        t0 = time.monotonic()
        f = g.load_async([k for k, _ in kd], out)
        submit_s = time.monotonic() - t0
        assert submit_s < 0.2 and not f.done(), "submit waited %.3fs" % submit_s
        assert not f.wait(0.05)
        assert f.result(30) == [256 * 1024] * 4
        assert time.monotonic() - t0 >= 0.39
        assert all(np.array_equal(a, b) for a, (_, b) in zip(out, kd))
        assert f.tiers() == ["nvme"] * 4
        # the GIL is released while the synchronous load waits: this thread keeps running
        ticks = [0]
        stop = threading.Event()

        def count():
            while not stop.is_set():
                ticks[0] += 1
        t = threading.Thread(target=count)
        t.start()
        t0 = time.monotonic()
        assert g.load([kd[0][0]], [out[0]]) == [256 * 1024]
        waited = time.monotonic() - t0
        stop.set()
        t.join()
        assert waited >= 0.39 and ticks[0] > 1000, (waited, ticks[0])
    finally:
        g.close()


def case_threads_share_a_grid():
    with grid(dram_bytes="256M") as g:
        errors = []

        def worker(t):
            try:
                rng = np.random.default_rng(t)
                for r in range(40):
                    keys = g.raw_keys([b"t%d.%d.%d" % (t, r, i) for i in range(4)])
                    data = [rng.integers(0, 256, 65536, dtype=np.uint8) for _ in range(4)]
                    g.store(keys, data)
                    out = [np.empty(65536, np.uint8) for _ in range(4)]
                    assert g.load(keys, out) == [65536] * 4
                    assert all(np.array_equal(a, b) for a, b in zip(out, data))
            except Exception as e:  # reported below
                errors.append(repr(e))
        ts = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        assert not errors, errors
        assert g.stats()["stores"] >= 160


def case_pin_delete_prefetch_stats():
    with grid() as g:
        k = g.raw_keys([b"p%d" % i for i in range(3)])
        g.store(k, [b"v" * 1000] * 3)
        assert g.pin(k[:2]) == 2 and g.unpin(k[:2]) == 2
        assert g.pin([g.raw_key("missing")]) == 0
        assert g.prefetch(k) == 0  # DRAM only: nothing to promote
        assert g.delete(k[1:]) == 2 and g.delete(k[1:]) == 0
        assert g.lookup(k) == (1, ["dram"])
        st = g.stats()
        assert st["dram"]["blocks"] == 1 and st["dram"]["backend"] == "arena"
        assert st["nvme"]["capacity_bytes"] == 0 and st["stores"] >= 1
        assert isinstance(st["dram"]["degraded"], bool)


def case_shared_tier_seen_by_another_grid():
    shared = os.path.join(TMP, "shared")
    data = [os.urandom(5000 + i) for i in range(4)]
    with kvgrid.Grid(dram_bytes="8M", shared_dir=shared, shared_bytes="64M") as a:
        keys = a.raw_keys([b"s%d" % i for i in range(4)])
        a.store(keys, data)
        st = a.stats()
        assert st["shared"]["blocks"] >= 4, st["shared"]
        assert st["shared"]["capacity_bytes"] == 64 << 20
    # another grid (another host) on the same directory: found and loaded from the shared tier
    with kvgrid.Grid(dram_bytes="8M", shared_dir=shared, shared_bytes="64M") as c:
        keys = c.raw_keys([b"s%d" % i for i in range(4)])
        assert c.lookup(keys) == (4, ["shared"] * 4)
        out = [bytearray(6000) for _ in keys]
        assert c.load(keys, out) == [len(d) for d in data]
        assert all(bytes(o[:len(d)]) == d for o, d in zip(out, data))
    with grid() as g:  # no shared_dir: no "shared" entry
        assert "shared" not in g.stats()


def case_remote_grid_through_kvgridd():
    if not os.access(pyenv.KVGRIDD, os.X_OK):
        print("skip remote: kvgridd not built")
        return
    srv = pyenv.Kvgridd(TMP, "grid")
    try:
        with kvgrid.Grid(servers=srv.addr) as g:
            keys = g.raw_keys([b"r%d" % i for i in range(16)])
            data = [np.frombuffer(os.urandom(100000), np.uint8) for _ in keys]
            g.store_async(keys, data).result(30)
            out = [np.zeros(100000, np.uint8) for _ in keys]
            assert g.load(keys, out) == [100000] * 16
            assert all(np.array_equal(a, b) for a, b in zip(out, data))
            assert g.lookup(keys).hits == 16
            assert g.load([g.raw_key("nope")], [bytearray(10)]) == [None]
            assert repr(g).startswith("<kvgrid.Grid servers=")
    finally:
        assert srv.stop() == 0


def case_pip_install_offline_in_a_venv():
    if os.environ.get("KVG_TEST_LIB"):
        print("     (packaging, not the library: run on the plain build only)")
        return
    venv = os.path.join(TMP, "venv")
    src = os.path.join(TMP, "src")
    shutil.copytree(os.path.join(pyenv.ROOT, "python"), src,
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
    pip = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--no-index",
                          "--no-build-isolation", "--disable-pip-version-check", "-q", src],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    probe = ("import kvgrid, kvgrid.adapters.lmcache, kvgrid.adapters.vllm, "
             "kvgrid.adapters.sglang; print(kvgrid.__file__); print(kvgrid.version()); "
             "g = kvgrid.Grid(dram_bytes='8M'); g.store([g.raw_key('k')], [b'v']); "
             "print(g.load([g.raw_key('k')], [bytearray(1)])); g.close()")
    env = dict(os.environ, KVGRID_LIB=pyenv.LIB)
    env.pop("PYTHONPATH", None)
    out = subprocess.run([os.path.join(venv, "bin", "python"), "-c", probe], cwd="/",
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0].startswith(venv) and lines[1].startswith("1.") and lines[2] == "[1]", lines
    # without a library to load: one clear error naming KVGRID_LIB
    env["KVGRID_LIB"] = os.path.join(TMP, "no-such-lib.so")
    out = subprocess.run([os.path.join(venv, "bin", "python"), "-c", "import kvgrid"],
                         cwd="/", capture_output=True, text=True, env=env)
    assert out.returncode != 0 and "KVGRID_LIB" in out.stderr, out.stderr


if __name__ == "__main__":
    pyenv.run_cases([
        case_config_mirror_matches_library,
        case_keys_are_the_documented_vectors,
        case_round_trip_every_buffer_kind,
        case_miss_is_a_result,
        case_bad_buffers_refused_before_io,
        case_errors_are_typed_with_the_library_message,
        case_many_async_batches_and_eventfd,
        case_async_submit_returns_before_io,
        case_threads_share_a_grid,
        case_pin_delete_prefetch_stats,
        case_shared_tier_seen_by_another_grid,
        case_remote_grid_through_kvgridd,
        case_pip_install_offline_in_a_venv,
    ])
    shutil.rmtree(TMP, ignore_errors=True)
