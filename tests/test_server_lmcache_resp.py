"""Description: kvgridd honours the contract of LMCache's `resp` L2 adapter
(csrc/storage_backends/redis/connector.cpp, docs/source/mp/l2_storage/resp.rst), spoken here
byte for byte as that adapter speaks it: N connections (8), one command in flight on each,
no pipelining; `AUTH user password` and `AUTH password` answered with a line starting
`+OK\\r\\n`; `SET key <chunk>` answered with exactly `+OK\\r\\n` and nothing more; `GET`
answered `$<chunk size>\\r\\n`, the whole chunk and `\\r\\n`, or exactly `$-1\\r\\n`; `EXISTS`
and `DEL` answered exactly `:1\\r\\n` or `:0\\r\\n`.  Run on a DRAM-only server and on one whose
DRAM is smaller than the data (GETs served from NVMe), with an auth file; wrong passwords and
unauthenticated commands get errors; python3-redis agrees with the raw client.
"""
import os
import shutil
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyenv  # noqa: E402

TMP = pyenv.setup("test_server_lmcache_resp")
try:
    import redis
except ImportError:
    print("python3-redis is not installed (sh scripts/deps.sh test)")
    sys.exit(77)

CHUNK = 256 * 1024 + 4096  # LMCache's fixed chunk bytes (any size: fixed per deployment)
CONNS = 8
TOKENS = {"tok-a": "tenant-a", "tok-b": "tenant-b"}


class RespConn:
    """One of the adapter's worker connections: send a command, read exactly the reply the
    adapter expects, and check nothing else arrived."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else a.encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)

    def exactly(self, n):
        buf = b""
        while len(buf) < n:
            part = self.s.recv(n - len(buf))
            if not part:
                raise AssertionError("connection closed after %r" % buf)
            buf += part
        return buf

    def line(self):
        buf = b""
        while not buf.endswith(b"\r\n"):
            buf += self.exactly(1)
        return buf

    def nothing_more(self):
        self.s.setblocking(False)
        try:
            extra = self.s.recv(65536)
            raise AssertionError("bytes after the reply: %r" % extra[:80])
        except BlockingIOError:
            pass
        finally:
            self.s.settimeout(20)

    def auth(self, password, user=None):
        self.cmd(*(["AUTH", user, password] if user else ["AUTH", password]))
        return self.line()

    def set(self, key, chunk):
        self.cmd("SET", key, chunk)
        assert self.exactly(5) == b"+OK\r\n"
        self.nothing_more()

    def get(self, key):
        self.cmd("GET", key)
        head = self.line()
        if head == b"$-1\r\n":
            self.nothing_more()
            return None
        assert head == b"$%d\r\n" % CHUNK, head
        data = self.exactly(CHUNK)
        assert self.exactly(2) == b"\r\n"
        self.nothing_more()
        return data

    def int_reply(self, *args):
        self.cmd(*args)
        r = self.exactly(4)
        assert r in (b":1\r\n", b":0\r\n"), r
        self.nothing_more()
        return r == b":1\r\n"


def lm_key(i, salt=""):
    return "meta-llama/Llama-3.1-8B@%08x@0@%064x%s" % (1, i, "@" + salt if salt else "")


def worker(port, w, errors, user, password):
    try:
        c = RespConn(port)
        reply = c.auth(password, user)
        assert reply.startswith(b"+OK\r\n"), reply
        c.nothing_more()
        chunks = {}
        for i in range(12):
            k = lm_key(w * 1000 + i)
            chunks[k] = os.urandom(CHUNK)
            assert not c.int_reply("EXISTS", k)
            assert c.get(k) is None
            c.set(k, chunks[k])
            assert c.int_reply("EXISTS", k)
        for k, v in chunks.items():  # read back after the others' writes (NVMe on the small one)
            assert c.get(k) == v, "chunk %s came back different" % k
        for i, k in enumerate(chunks):
            if i % 3 == 0:
                assert c.int_reply("DEL", k) and not c.int_reply("DEL", k)
                assert not c.int_reply("EXISTS", k) and c.get(k) is None
        c.s.close()
    except Exception as e:  # reported by the main thread
        errors.append("connection %d: %r" % (w, e))


def contract(srv):
    errors = []
    creds = [("tenant-a", "tok-a"), (None, "tok-a"), ("default", "tok-b"), ("tenant-b", "tok-b")]
    ts = [threading.Thread(target=worker, args=(srv.port, w, errors, *creds[w % 4]))
          for w in range(CONNS)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors, "\n".join(errors)


def auth_refusals(srv):
    c = RespConn(srv.port)
    c.cmd("GET", lm_key(1))
    assert c.line().startswith(b"-NOAUTH")
    assert c.auth("wrong").startswith(b"-WRONGPASS")
    assert c.auth("tok-a", "tenant-b").startswith(b"-WRONGPASS")  # another tenant's token
    assert c.auth("tok-a", "tenant-a") == b"+OK\r\n"


def tenants_apart(srv):
    a, b = RespConn(srv.port), RespConn(srv.port)
    assert a.auth("tok-a").startswith(b"+OK") and b.auth("tok-b").startswith(b"+OK")
    k = lm_key(777777)
    v = os.urandom(CHUNK)
    a.set(k, v)
    assert a.get(k) == v and b.get(k) is None and not b.int_reply("EXISTS", k)
    assert not b.int_reply("DEL", k) and a.get(k) == v


def redis_py_agrees(srv):
    r = redis.Redis(host="127.0.0.1", port=srv.port, username="tenant-a", password="tok-a",
                    socket_timeout=20)
    k = lm_key(888888)
    v = os.urandom(CHUNK)
    assert r.set(k, v) is True and r.exists(k) == 1 and r.get(k) == v
    assert r.delete(k) == 1 and r.exists(k) == 0 and r.get(k) is None
    c = RespConn(srv.port)
    c.auth("tok-a")
    r.set(k, v)
    assert c.get(k) == v  # the raw client reads what redis-py wrote


if __name__ == "__main__":
    if not os.access(pyenv.KVGRIDD, os.X_OK):
        print("kvgridd is not built (make)")
        sys.exit(77)
    auth = os.path.join(TMP, "tokens")
    with open(auth, "w") as f:
        f.write("".join("%s %s\n" % kv for kv in TOKENS.items()))
    runs = [("dram", []),
            ("nvme", ["--dram", "8M", "--dir", os.path.join(TMP, "nvme"), "--nvme", "512M"])]
    for name, args in runs:
        srv = pyenv.Kvgridd(TMP, name, "--auth-file", auth, *args)
        try:
            for case in (contract, auth_refusals, tenants_apart, redis_py_agrees):
                case(srv)
                print("ok   %s [%s]" % (case.__name__, name), flush=True)
            if name == "nvme":  # the whole chunk came back from NVMe too, not only DRAM
                assert srv.metric("kvgrid_async_loads_total") > 0
        finally:
            assert srv.stop() == 0
    shutil.rmtree(TMP, ignore_errors=True)
