"""Description: kvgridd on an ephemeral 127.0.0.1 port, driven by real clients: python3-redis
(RESP) and tests/lmclient.py (LMCache's lm:// byte format), both on the one port.  Random binary
values round-trip; pipelining; LMCache's redis:// two-key pattern; lm:// golden bytes and
fmt/dtype/shape echoed exactly; AUTH refused and accepted; tenants kept apart; quotas evict the
tenant's own oldest blocks; oversized, malformed and cut-off requests get errors and the server
keeps serving; /metrics; SIGHUP reopens the log; SIGTERM exits cleanly.

Each case is one function; they run in order, each with its own server where it needs one.
"""
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request

try:
    import redis
except ImportError:  # python3-redis is Debian's: use Debian's interpreter
    if os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3":
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("python3-redis is not installed")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
import lmclient  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KVGRIDD = os.environ.get("KVGRIDD", os.path.join(ROOT, "build", "kvgridd"))
TMP = os.path.join(os.environ.get("KVG_TEST_TMP", os.path.join(ROOT, "build", "tmp")),
                   "test_server_py.%d" % os.getpid())
FIX = os.path.join(ROOT, "tests", "fixtures", "lm")
rng = random.Random(4)


class Server:
    """A kvgridd process on an ephemeral port; stopped with SIGTERM."""

    def __init__(self, name, *args):
        self.name = name
        self.port_file = os.path.join(TMP, name + ".port")
        self.log = os.path.join(TMP, name + ".log")
        cmd = [KVGRIDD, "--port", "0", "--port-file", self.port_file, "--dram", "128M",
               "--metrics-port", "0", "--log-file", self.log] + list(args)
        self.proc = subprocess.Popen(cmd)
        deadline = time.time() + 30
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("kvgridd %s did not start: %s" % (name, open(self.log).read()))
            time.sleep(0.05)
        self.port, self.metrics_port = map(int, open(self.port_file).read().split())

    def redis(self, **kw):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10, **kw)

    def alive(self):
        return self.proc.poll() is None and self.redis().ping()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def raw(port, data, read_until_close=True):
    """Sends data on a fresh connection and returns what comes back before the server closes
    (or before 5 s)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    out = raw_reply(s) if read_until_close else b""
    s.close()
    return out


def case_roundtrip_random_values(srv):
    r = srv.redis()
    sizes = [0, 1, 2, 1000, 65536, 256 * 1024, 1 << 20, 5 * (1 << 20) + 7]
    values = {}
    for i, n in enumerate(sizes):
        key = b"k\x00\xff" + bytes([i]) + os.urandom(8)
        values[key] = os.urandom(n)
        assert r.set(key, values[key]) is True
    for key, v in values.items():
        assert r.get(key) == v, "value of %d bytes came back different" % len(v)
    keys = list(values)
    assert r.exists(*keys, b"missing", keys[0]) == len(keys) + 1
    assert r.mget(keys[:3] + [b"missing"]) == [values[k] for k in keys[:3]] + [None]
    assert r.mset({b"m1": b"one", b"m2": b"\r\n\x00two"}) is True
    assert r.mget([b"m1", b"m2"]) == [b"one", b"\r\n\x00two"]
    assert r.set(keys[1], b"replaced") and r.get(keys[1]) == b"replaced"
    assert r.delete(keys[0], keys[2], b"missing") == 2
    assert r.get(keys[0]) is None
    assert r.dbsize() >= len(keys) - 2
    assert r.ping() is True
    assert r.execute_command("SELECT", 0) in (b"OK", True, "OK")
    hello = r.execute_command("HELLO", 2)
    assert b"proto" in hello and hello[hello.index(b"proto") + 1] == 2
    # the largest value the default configuration takes: 64 MiB, binary
    big = os.urandom(64 << 20)
    assert r.set(b"big\x00", big) is True and r.get(b"big\x00") == big
    assert r.delete(b"big\x00") == 1
    info = r.info()
    assert info["redis_version"] and "db0" in info


def case_pipelining(srv):
    r = srv.redis()
    p = r.pipeline(transaction=False)
    vals = [os.urandom(rng.randrange(1, 70000)) for _ in range(200)]
    for i, v in enumerate(vals):
        p.set("pipe:%d" % i, v)
    for i in range(len(vals)):
        p.get("pipe:%d" % i)
    out = p.execute()
    assert out[:200] == [True] * 200
    assert out[200:] == vals
    # raw pipelining of inline and multibulk commands in one write
    reply = raw(srv.port, b"PING\r\n*2\r\n$3\r\nGET\r\n$6\r\npipe:0\r\n*1\r\n$4\r\nQUIT\r\n")
    assert reply.startswith(b"+PONG\r\n$%d\r\n" % len(vals[0]) + vals[0] + b"\r\n+OK\r\n")


def case_lmcache_redis_pattern(srv):
    """What LMCache's redis:// connector does: kv_bytes, then 28 bytes of metadata."""
    r = srv.redis()
    key = "meta-llama/Llama-3.1-8B@1@0@-5f3e@bfloat16"
    kv = os.urandom(2 * 4 * 256 * 128 * 2)
    meta = b"".join(x.to_bytes(4, "little", signed=True) for x in (len(kv), 1, 3, 2, 4, 256, 128))
    assert not r.exists(key + "metadata")
    r.set(key + "kv_bytes", kv)
    r.set(key + "metadata", meta)
    assert r.exists(key + "metadata") == 1
    assert r.get(key + "metadata") == meta
    assert r.get(key + "kv_bytes") == kv


def case_unknown_and_errors_keep_connection(srv):
    r = srv.redis()
    try:
        r.execute_command("NOSUCHCOMMAND", "x")
        raise AssertionError("unknown command accepted")
    except redis.ResponseError as e:
        assert "unknown command" in str(e)
    try:
        r.execute_command("GET")
        raise AssertionError("GET without a key accepted")
    except redis.ResponseError:
        pass
    assert r.ping() is True
    assert r.execute_command("COMMAND") == [] or True


def case_lm_golden_bytes(srv):
    fx = {n: open(os.path.join(FIX, n), "rb").read() for n in os.listdir(FIX) if n.endswith(".bin")}
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(fx["health_request.bin"])
    assert s.recv(36, socket.MSG_WAITALL) == fx["reply_success.bin"]
    s.sendall(fx["exist_request.bin"])
    assert s.recv(36, socket.MSG_WAITALL) == fx["reply_fail.bin"]
    s.sendall(fx["get_request.bin"])
    assert s.recv(36, socket.MSG_WAITALL) == fx["reply_fail.bin"]
    s.sendall(fx["put_request.bin"] + fx["put_payload.bin"])  # no reply
    s.sendall(fx["exist_request.bin"])
    assert s.recv(36, socket.MSG_WAITALL) == fx["reply_success.bin"]
    s.sendall(fx["get_request.bin"])
    assert s.recv(36, socket.MSG_WAITALL) == fx["get_reply_hit.bin"]
    assert s.recv(192, socket.MSG_WAITALL) == fx["put_payload.bin"]
    s.close()


def case_lm_client(srv):
    c = lmclient.LMClient("127.0.0.1", srv.port)
    assert c.health()
    key = "model/x@2@1@%x@float16" % rng.getrandbits(64)
    assert not c.exists(key) and c.get(key) is None
    for n, dtype, shape in [(1, 6, (1, 0, 0, 0)), (4096, 2, (2, 4, 16, 32)),
                            (3 << 20, 3, (2, 32, 256, 96))]:
        data = os.urandom(n)
        c.put(key, data, fmt=1, dtype=dtype, shape=shape)
        assert c.exists(key)
        assert c.get(key) == (data, 1, dtype, shape)
    assert c.list() == lmclient.FAIL
    # RESP and lm:// share string keys on one port
    assert srv.redis().get(key) == data
    c.close()
    # an unknown command closes that connection only
    bad = lmclient.REQ.pack(7, 0, 1, 2, 0, 0, 0, 0, 0, b" " * 150)
    assert raw(srv.port, bad) == b""
    assert srv.alive()


def case_oversized_malformed_and_cut(srv):
    """Server started with --value-max 1M."""
    r = srv.redis()
    try:
        r.set("big", b"x" * ((1 << 20) + 1))
        raise AssertionError("oversized value accepted")
    except (redis.ResponseError, redis.ConnectionError):
        pass
    assert srv.alive()
    assert raw(srv.port, b"*1\r\n$abc\r\n").startswith(b"-ERR Protocol error")
    assert raw(srv.port, b"*999999999\r\n").startswith(b"-ERR Protocol error")
    assert raw(srv.port, b"\x00\x01\x02\x03garbage") == b""
    assert raw(srv.port, b"KVGN\x09\x01\x00\x00" + b"\x00" * 16).endswith(b"") is not None
    # a client that disconnects in the middle of a value
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\ncut\r\n$500000\r\n" + b"y" * 1000)
    s.close()
    s = socket.create_connection(("127.0.0.1", srv.port))
    lm = lmclient.pack_request(lmclient.PUT, "cut-lm", 500000)
    s.sendall(lm + b"z" * 100)
    s.close()
    time.sleep(0.2)
    assert srv.alive()
    assert r.get("cut") is None
    assert not lmclient.LMClient("127.0.0.1", srv.port).exists("cut-lm")
    # a long inline line without a newline is refused
    assert raw(srv.port, b"GET " + b"a" * 70000).startswith(b"-ERR Protocol error")
    assert srv.alive()


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def case_slow_reader_backpressure(srv):
    """A client that pipelines 300 GETs of 512 KiB (150 MiB of replies) and reads nothing
    for a while holds at most its own buffers of server memory; then it gets every reply."""
    val = os.urandom(512 * 1024)
    srv.redis().set("slow", val)
    before = rss_kib(srv.proc.pid)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"*2\r\n$3\r\nGET\r\n$4\r\nslow\r\n" * 300)
    time.sleep(1.0)
    grown = rss_kib(srv.proc.pid) - before
    assert grown < 64 * 1024, "server grew by %d KiB for one slow reader" % grown
    assert srv.alive()  # other clients are served meanwhile
    want = b"$%d\r\n" % len(val) + val + b"\r\n"
    buf = bytearray()
    while len(buf) < 300 * len(want):
        b = s.recv(1 << 20)
        assert b, "connection closed early"
        buf += b
    s.close()
    assert bytes(buf) == want * 300


def read_bulk(s, buf):
    """Reads one RESP bulk reply from socket s (buf: bytes already read); returns (value or
    None, the rest)."""
    while b"\r\n" not in buf:
        b = s.recv(1 << 20)
        assert b, "connection closed early"
        buf += b
    head, rest = buf.split(b"\r\n", 1)
    n = int(head[1:])
    if n < 0:
        return None, rest
    while len(rest) < n + 2:
        b = s.recv(1 << 20)
        assert b, "connection closed early"
        rest += b
    assert rest[n:n + 2] == b"\r\n"
    return bytes(rest[:n]), rest[n + 2:]


def case_get_sent_from_dram_while_replaced(srv):
    """GET replies leave straight from the DRAM arena: a client that has asked for a 16 MiB
    value and reads nothing does not hold up a SET, GET or DEL of that key from another
    client, and then receives the value exactly as it was when it asked."""
    v1, v2 = os.urandom(16 << 20), os.urandom(16 << 20)
    r = srv.redis()
    r.set("lent", v1)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"*2\r\n$3\r\nGET\r\n$4\r\nlent\r\n" * 3)
    time.sleep(0.3)
    t0 = time.time()
    r.set("lent", v2)
    assert r.get("lent") == v2
    assert r.delete("lent") == 1
    assert r.get("lent") is None
    assert time.time() - t0 < 5, "a replace waited for a slow reader"
    buf = b""
    got = []
    for _ in range(3):
        v, buf = read_bulk(s, buf)
        got.append(v)
    s.close()
    assert got[0] == v1, "the first reply is not the value at the time of the GET"
    assert all(v in (v1, v2, None) for v in got)


def async_loads(srv):
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % srv.metrics_port).read()
    n = [l for l in m.decode().splitlines() if l.startswith("kvgrid_async_loads_total")]
    assert n, "no kvgrid_async_loads_total in /metrics"
    return int(n[0].split()[1])


def metric(srv, name):
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % srv.metrics_port).read()
    n = [l for l in m.decode().splitlines() if l.startswith(name + " ")]
    assert n, "no %s in /metrics" % name
    return int(n[0].split()[1])


def case_large_sets_received_into_dram():
    """Large SET values are read from the socket straight into the DRAM arena: values of
    64 KiB to 9 MiB, sent whole or dribbled in small pieces, pipelined with GETs and with a
    SET that has options (the ordinary path), all read back exactly; values cut short by a
    disconnect or not followed by CRLF give their room back (a 64 MiB arena takes 30 cut
    16 MiB values and still stores three whole ones) and never appear."""
    srv = Server("direct", "--dram", "64M")
    try:
        r = srv.redis()
        before = metric(srv, "kvgrid_direct_sets_total")
        vals = {}
        for i, n in enumerate([64 << 10, (64 << 10) + 1, 1 << 20, 3000001, 9 << 20]):
            vals["d%d" % i] = os.urandom(n)
        for k, v in vals.items():  # whole requests
            assert r.set(k, v) is True
        for k, v in vals.items():
            assert r.get(k) == v
        assert metric(srv, "kvgrid_direct_sets_total") > before
        # dribbled: head and value in small pieces with pauses, then a pipelined GET
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        v = os.urandom(700000)
        req = b"*3\r\n$3\r\nSET\r\n$7\r\ndribble\r\n$%d\r\n" % len(v) + v + b"\r\n"
        for off in range(0, len(req), 65536):
            s.sendall(req[off:off + 65536])
            time.sleep(0.01)
        s.sendall(b"*2\r\n$3\r\nGET\r\n$7\r\ndribble\r\n"
                  b"*5\r\n$3\r\nSET\r\n$4\r\nopts\r\n$%d\r\n" % len(v) + v +
                  b"\r\n$2\r\nEX\r\n$2\r\n60\r\n")
        want = b"+OK\r\n$%d\r\n" % len(v) + v + b"\r\n+OK\r\n"
        buf = b""
        while len(buf) < len(want):
            b = s.recv(1 << 20)
            assert b, "closed early"
            buf += b
        assert buf == want
        s.close()
        assert r.get("opts") == v
        # cut short: the room goes back, nothing is published
        for i in range(30):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\ncut\r\n$%d\r\n" % (16 << 20))
            s.sendall(os.urandom(8 << 20))
            s.close()
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbad\r\n$%d\r\n" % (1 << 20) +
                  os.urandom(1 << 20) + b"XX")
        assert raw_reply(s).startswith(b"-ERR Protocol error")
        s.close()
        assert r.get("cut") is None and r.get("bad") is None
        # lm:// PUTs take the same path: fmt, dtype and shape come back exactly; a PUT cut
        # short publishes nothing
        before = metric(srv, "kvgrid_direct_sets_total")
        c = lmclient.LMClient("127.0.0.1", srv.port)
        lmv = [os.urandom(n) for n in (64 << 10, 1 << 20, 5000000)]
        for i, v in enumerate(lmv):
            c.put("lmd%d" % i, v, fmt=2, dtype=1, shape=(i + 1, 2, 3, 4))
        for i, v in enumerate(lmv):
            assert c.get("lmd%d" % i) == (v, 2, 1, (i + 1, 2, 3, 4))
        c.close()
        assert metric(srv, "kvgrid_direct_sets_total") >= before + 2
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(lmclient.pack_request(1, "lmcut", length=16 << 20) + os.urandom(4 << 20))
        s.close()
        c = lmclient.LMClient("127.0.0.1", srv.port)
        assert not c.exists("lmcut")
        c.close()
        big = [os.urandom(16 << 20) for _ in range(3)]
        for i, v in enumerate(big):
            assert r.set("big%d" % i, v) is True
        for i, v in enumerate(big):
            assert r.get("big%d" % i) == v
        assert srv.alive()
    finally:
        assert srv.stop() == 0


def raw_reply(s):
    """What comes back on socket s until the server closes it (or 5 s pass)."""
    out = b""
    s.settimeout(5)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        pass
    return out


def case_nvme_async_loads():
    """With a small DRAM tier, values live on NVMe: GETs and MGETs (RESP and lm://, pipelined) load
    them without blocking the worker, in order, byte for byte; the server restarts with them."""
    d = os.path.join(TMP, "nvme")
    os.makedirs(d, exist_ok=True)
    args = ("--dram", "16M", "--dir", d, "--nvme", "256M", "--set", "segment_bytes=32M",
            "--set", "io_backend=psync")
    srv = Server("nvme", *args)
    vals = [os.urandom((1 << 20) - i * 1000) for i in range(40)]
    try:
        r = srv.redis()
        for i, v in enumerate(vals):
            r.set("nv%d" % i, v)
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        s.sendall(b"".join(b"*2\r\n$3\r\nGET\r\n$%d\r\nnv%d\r\n" % (len(b"nv%d" % i), i)
                           for i in range(40)))
        want = b"".join(b"$%d\r\n" % len(v) + v + b"\r\n" for v in vals)
        got = bytearray()
        while len(got) < len(want):
            b = s.recv(1 << 20)
            assert b, "closed early"
            got += b
        s.close()
        assert bytes(got) == want
        # MGET: items on NVMe only wait asynchronously, one after another, in order
        before = async_loads(srv)
        assert r.mget(["nv%d" % i for i in range(40)] + ["nope"]) == vals + [None]
        assert async_loads(srv) > before
        c = lmclient.LMClient("127.0.0.1", srv.port)
        for i in range(0, 40, 5):
            c.put("lmnv%d" % i, vals[i], fmt=1, dtype=3, shape=(2, 1, 2, i + 1))
        for i in range(0, 40, 5):
            assert c.get("lmnv%d" % i) == (vals[i], 1, 3, (2, 1, 2, i + 1))
        c.close()
        assert async_loads(srv) > 0
    finally:
        assert srv.stop() == 0
    srv = Server("nvme2", *args)
    try:
        assert srv.redis().get("nv3") == vals[3]
    finally:
        assert srv.stop() == 0


def case_auth_and_tenants():
    auth = os.path.join(TMP, "auth")
    with open(auth, "w") as f:
        f.write("# token tenant quota\ns3cret-a alice\ns3cret-b bob 300K\n")
    srv = Server("auth", "--auth-file", auth)
    try:
        anon = srv.redis()
        assert anon.ping() is True
        try:
            anon.get("k")
            raise AssertionError("GET without AUTH accepted")
        except redis.AuthenticationError:
            pass
        except redis.ResponseError as e:
            assert "NOAUTH" in str(e)
        try:
            srv.redis(password="wrong").ping()
            raise AssertionError("wrong password accepted")
        except (redis.AuthenticationError, redis.ResponseError):
            pass
        alice = srv.redis(password="s3cret-a")
        bob = srv.redis(username="bob", password="s3cret-b")
        assert alice.set("shared-name", b"alice's") is True
        assert bob.get("shared-name") is None
        assert bob.exists("shared-name") == 0
        assert bob.delete("shared-name") == 0
        assert alice.get("shared-name") == b"alice's"
        try:
            srv.redis(username="alice", password="s3cret-b").ping()
            raise AssertionError("bob's token accepted for alice")
        except (redis.AuthenticationError, redis.ResponseError):
            pass
        # bob's quota is 300 KiB: his oldest blocks go first, alice's stay
        for i in range(8):
            bob.set("q%d" % i, os.urandom(100 * 1024))
        assert bob.get("q7") is not None and bob.get("q6") is not None
        assert bob.get("q0") is None and bob.get("q1") is None
        assert bob.dbsize() <= 3
        try:
            bob.set("too-big", os.urandom(400 * 1024))
            raise AssertionError("value over the quota accepted")
        except redis.ResponseError:
            pass
        assert alice.get("shared-name") == b"alice's"
        # lm:// has no auth: only HEALTH works on an auth server
        c = lmclient.LMClient("127.0.0.1", srv.port)
        assert c.health() and not c.exists("shared-name")
        c.close()
        m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % srv.metrics_port).read()
        assert b'kvgrid_tenant_blocks{tenant="bob"}' in m
        assert b"kvgrid_auth_failures_total" in m
        # kvgrid stats --server with bob's token: bob's tenant figures, nobody else's
        tok = os.path.join(TMP, "bob.token")
        with open(tok, "w") as f:
            f.write("s3cret-b\n")
        st = kvgrid_stats(srv, "--set", "auth_token_file=" + tok)
        assert set(st["server"]["tenants"]) == {"bob"}, st["server"]["tenants"]
        assert st["server"]["tenants"]["bob"]["blocks"] >= 1
        assert st["server"]["auth_failures"] >= 2
    finally:
        assert srv.stop() == 0


def case_protected_mode():
    p = subprocess.run([KVGRIDD, "--port", "0", "--bind", "0.0.0.0"], capture_output=True,
                       timeout=30)
    assert p.returncode != 0 and b"protected mode" in p.stderr
    p = subprocess.run([KVGRIDD, "--no-such-flag", "1"], capture_output=True, timeout=30)
    assert p.returncode != 0 and b"no-such-flag" in p.stderr
    p = subprocess.run([KVGRIDD, "--help"], capture_output=True, timeout=30)
    assert p.returncode == 0 and b"--port" in p.stdout


def case_native_raw(srv):
    """Native frames pipelined in one write, the second at an odd offset: each gets its own
    reply, in order, with its id."""
    import struct

    def frame(op, body, rid):
        return b"KVGN" + bytes([1, op, 0, 0]) + struct.pack("<QiI", rid, 0, len(body)) + body
    hello = frame(1, struct.pack("<II", 1, 1) + b"x", 7)  # 33 bytes: misaligns the next
    tokens = frame(3, struct.pack("<II", 512, 0) + struct.pack("<512I", *range(512)), 8)
    stats = frame(9, b"", 9)
    bad = frame(2, struct.pack("<II", 3, 0) + b"\0" * 32, 10)  # count says 3, one key sent
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(hello + tokens + stats + bad)
    got = []
    for _ in range(4):
        h = s.recv(24, socket.MSG_WAITALL)
        assert h[:5] == b"KVGN\x01", h
        rid, status, n = struct.unpack("<QiI", h[8:24])
        body = s.recv(n, socket.MSG_WAITALL) if n else b""
        got.append((h[5], rid, status, body))
    s.close()
    assert [g[:2] for g in got] == [(1, 7), (3, 8), (9, 9), (2, 10)]
    assert got[0][2] == 0 and struct.unpack("<IIQQ", got[0][3])[0] == 1
    assert got[1][2] == 0 and struct.unpack("<Q", got[1][3])[0] == 0
    assert got[2][2] == 0 and struct.unpack("<I", got[2][3][:4])[0] == 35
    assert got[3][2] == -30709 and got[3][3] == b""  # KVG_EPROTO, connection kept


def case_port_in_use(srv):
    """A second server on a port in use refuses to start (it would otherwise share it)."""
    p = subprocess.run([KVGRIDD, "--port", str(srv.port), "--dram", "16M"], capture_output=True,
                       timeout=60)
    assert p.returncode != 0 and b"in use" in p.stderr, p.stderr
    assert srv.alive()


def case_config_file():
    """A config file sets server options and grid settings; a bad line names its place."""
    conf = os.path.join(TMP, "kvgridd.conf")
    pf = os.path.join(TMP, "conf.port")
    with open(conf, "w") as f:
        f.write("# kvgridd\nport = 0\nport-file = %s\ndram = 32M\nthreads = 1\n"
                "policy = lru   # a grid setting\nvalue-max = 2M\n" % pf)
    p = subprocess.Popen([KVGRIDD, "--config", conf])
    try:
        deadline = time.time() + 30
        while not os.path.exists(pf) and time.time() < deadline and p.poll() is None:
            time.sleep(0.05)
        port = int(open(pf).read().split()[0])
        r = redis.Redis(port=port, socket_timeout=10)
        assert r.set("c", b"x" * (2 << 20)) is True
        try:
            r.set("c", b"x" * ((2 << 20) + 1))
            raise AssertionError("value-max from the config file not applied")
        except (redis.ResponseError, redis.ConnectionError):
            pass
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
    with open(conf, "a") as f:
        f.write("threads = many\n")
    p = subprocess.run([KVGRIDD, "--config", conf], capture_output=True, timeout=30)
    assert p.returncode == 2 and (conf + ":8: threads").encode() in p.stderr, p.stderr


KVGRID = os.path.join(ROOT, "build", "kvgrid")


def kvgrid_stats(srv, *extra):
    """`kvgrid stats --server` against srv, as JSON; also checks the text form prints."""
    base = [KVGRID, "stats", "--server", "127.0.0.1:%d" % srv.port] + list(extra)
    p = subprocess.run(base, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert b"latency get" in p.stdout and b"tenant " in p.stdout, p.stdout
    p = subprocess.run(base + ["--json"], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    import json
    return json.loads(p.stdout)


def case_metrics_sighup_sigterm(srv):
    srv.redis().get("metrics-miss")
    # kvgrid stats --server prints what /metrics serves, for a person and as JSON
    st = kvgrid_stats(srv)
    assert st["server"]["misses"] >= 1 and st["server"]["requests"]["resp"] >= 1
    assert st["server"]["latency"]["get"]["count"] >= 1
    assert st["server"]["latency"]["get"]["p99_le_s"] > 0
    assert st["server"]["tenants"]["default"]["requests"] >= 1
    assert st["dram"]["blocks"] >= 1
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % srv.metrics_port).read().decode()
    for name in ['kvgrid_requests_total{proto="resp"}', 'kvgrid_requests_total{proto="lm"}',
                 "kvgrid_misses_total", 'kvgrid_request_duration_seconds_bucket{op="get"',
                 'kvgrid_tier_blocks{tier="dram"}', "kvgrid_connections"]:
        assert name in m, name
    os.rename(srv.log, srv.log + ".old")
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while not os.path.exists(srv.log) and time.time() < deadline:
        time.sleep(0.05)
    assert "log reopened" in open(srv.log).read()


def case_mget_many_values():
    """MGET of hundreds of keys: each value is a segment or more of the reply, far more than
    a connection queues at once (256), from DRAM and from NVMe; every value comes back whole
    and the server keeps serving (an MGET of 130 keys used to write past the segment array
    and crash the server)."""
    nvme = os.path.join(TMP, "mget.nvme")
    os.makedirs(nvme, exist_ok=True)
    for name, args in (("mget-dram", ("--dram", "512M")),
                       ("mget-nvme", ("--dram", "8M", "--dir", nvme, "--nvme", "256M",
                                      "--set", "segment_bytes=16M"))):
        srv = Server(name, *args)
        try:
            r = srv.redis()
            vals = {"mget:%d" % i: os.urandom(rng.randrange(1, 3000)) for i in range(600)}
            assert r.mset(vals)
            for n in (130, 300, 600):
                keys = list(vals)[:n]
                got = r.mget(keys + ["mget:absent"])
                assert got[-1] is None, "%s: an absent key in MGET of %d" % (name, n)
                have = [v for k, v in zip(keys, got) if v is not None]
                wrong = [k for k, v in zip(keys, got) if v is not None and v != vals[k]]
                assert not wrong, "%s: MGET of %d keys: %d wrong values, first %s" % (
                    name, n, len(wrong), wrong[0])
                assert len(have) >= n * 9 // 10 or name == "mget-nvme", \
                    "%s: MGET of %d keys found only %d" % (name, n, len(have))
            assert r.ping(), "%s: the server stopped serving after MGETs" % name
        finally:
            assert srv.stop() == 0, "%s did not exit cleanly" % name


def main():
    os.makedirs(TMP, exist_ok=True)
    if not os.access(KVGRIDD, os.X_OK):
        print("kvgridd is not built")
        return 77
    case_protected_mode()
    case_config_file()
    srv = Server("main")
    try:
        case_roundtrip_random_values(srv)
        case_pipelining(srv)
        case_get_sent_from_dram_while_replaced(srv)
        case_lmcache_redis_pattern(srv)
        case_unknown_and_errors_keep_connection(srv)
        case_lm_golden_bytes(srv)
        case_lm_client(srv)
        case_native_raw(srv)
        case_port_in_use(srv)
        case_metrics_sighup_sigterm(srv)
    finally:
        assert srv.stop() == 0
    small = Server("small", "--value-max", "1M")
    try:
        case_oversized_malformed_and_cut(small)
        case_slow_reader_backpressure(small)
    finally:
        assert small.stop() == 0
    case_auth_and_tenants()
    case_large_sets_received_into_dram()
    case_nvme_async_loads()
    case_mget_many_values()
    print("test_server.py: all cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
