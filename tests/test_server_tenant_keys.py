"""Description: tenants stay apart for keys of every length over RESP.  kvgridd (on an ephemeral
127.0.0.1 port, --auth-file with tenants alice and carol: names of one length, so that their
inline rooms agree) derives a key from a short inline buffer or, for a key longer than the
buffer's room, from the key's own hash (server/kv.c, kv_key: room = SRV_TENANT_NAME_MAX + 2 +
1024 - len(tenant) - 2, so 1083 bytes for both).  For keys of 1000 and 1024 bytes, one under the
room, exactly the room, one and two over it, and 2, 4, 4 KiB + 1 and 16 KiB: alice's keys are
invisible to carol (EXISTS 0, GET nil, MGET nil, DEL 0), carol's SET of the same key name is her
own and leaves alice's value alone, and alice reads hers back byte for byte.  lm:// has no
authentication (doc/SERVER.md): on this server it sees none of it.
"""
import os
import signal
import subprocess
import sys
import time

try:
    import redis
except ImportError:  # python3-redis is Debian's: use Debian's interpreter
    if os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3":
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("python3-redis is not installed")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmclient  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KVGRIDD = os.environ.get("KVGRIDD", os.path.join(ROOT, "build", "kvgridd"))
TMP = os.path.join(os.environ.get("KVG_TEST_TMP", os.path.join(ROOT, "build", "tmp")),
                   "test_server_tenant_keys.%d" % os.getpid())

# server/srv.h SRV_TENANT_NAME_MAX and server/kv.c KV_RAW_MAX: the inline buffer holds
# tenant || 0 || kind || key; a longer key goes through the separate long-key branch.
SRV_TENANT_NAME_MAX = 64
KV_RAW_MAX = SRV_TENANT_NAME_MAX + 2 + 1024


def inline_room(tenant):
    return KV_RAW_MAX - len(tenant) - 2


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def start(auth):
    port_file = os.path.join(TMP, "port")
    log = os.path.join(TMP, "kvgridd.log")
    p = subprocess.Popen([KVGRIDD, "--port", "0", "--port-file", port_file, "--dram", "64M",
                          "--threads", "2", "--log-file", log, "--auth-file", auth])
    deadline = time.time() + 20
    while not (os.path.exists(port_file) and os.path.getsize(port_file)):
        if p.poll() is not None or time.time() > deadline:
            p.kill()
            fail("kvgridd did not start: " + open(log).read())
        time.sleep(0.05)
    return p, int(open(port_file).read().split()[0])


def key_of(n, i):
    """A key of exactly n bytes, binary, different for every (n, i)."""
    head = b"tk\x00%d:%d:" % (n, i)
    body = bytes((7 * j + i) & 0xFF for j in range(n))
    return (head + body)[:n] if n >= len(head) else body


def main():
    if not os.access(KVGRIDD, os.X_OK):
        print("kvgridd is not built")
        return 77
    os.makedirs(TMP, exist_ok=True)
    auth = os.path.join(TMP, "auth")
    with open(auth, "w") as f:
        f.write("# token tenant\ntok-alice alice\ntok-carol carol\n")
    room = inline_room("alice")
    sizes = [1000, 1024, room - 1, room, room + 1, room + 2, 2048, 4096, 4097, 16384]
    proc, port = start(auth)
    try:
        alice = redis.Redis(host="127.0.0.1", port=port, username="alice", password="tok-alice",
                            socket_timeout=5)
        carol = redis.Redis(host="127.0.0.1", port=port, username="carol", password="tok-carol",
                          socket_timeout=5)
        keys = [key_of(n, 0) for n in sizes]
        vals = {k: os.urandom(100 + len(k)) + b"alice:%d" % len(k) for k in keys}
        for k in keys:
            if alice.set(k, vals[k]) is not True:
                fail("alice's SET of a %d-byte key was refused" % len(k))
        for k in keys:
            n = len(k)
            where = "inline" if n <= room else "long-key branch"
            if carol.exists(k) != 0:
                fail("carol sees alice's %d-byte key (%s, room %d): EXISTS 1; tenants must never "
                     "see each other's keys" % (n, where, room))
            got = carol.get(k)
            if got is not None:
                fail("carol's GET of alice's %d-byte key (%s, room %d) returned %d bytes%s; a "
                     "tenant must never read another's data" %
                     (n, where, room, len(got), " (alice's value)" if got == vals[k] else ""))
        if carol.mget(keys) != [None] * len(keys):
            fail("carol's MGET of alice's long keys returned values; tenants must stay apart")
        if carol.delete(*keys) != 0:
            fail("carol's DEL removed alice's keys; tenants must stay apart")
        # carol writes the same key names: his own values, alice's unchanged
        for k in keys:
            if carol.set(k, b"carol:%d" % len(k)) is not True:
                fail("carol's SET of a %d-byte key was refused" % len(k))
        for k in keys:
            n = len(k)
            got = alice.get(k)
            if got != vals[k]:
                fail("alice's %d-byte key (%s) read back %s after carol's SET of the same name; "
                     "another tenant overwrote it" %
                     (n, "inline" if n <= room else "long-key branch",
                      "nil" if got is None else "%d different bytes" % len(got)))
            if carol.get(k) != b"carol:%d" % n:
                fail("carol's own %d-byte key did not read back his value" % n)
        # two long keys of one tenant that differ only in their last byte stay apart
        a, b = key_of(8192, 1), key_of(8192, 1)[:-1] + b"\xfe"
        alice.set(a, b"A")
        alice.set(b, b"B")
        if alice.get(a) != b"A" or alice.get(b) != b"B":
            fail("two 8 KiB keys differing in their last byte share a block")
        # lm:// carries no tenant: on an auth server it serves nobody's data
        c = lmclient.LMClient("127.0.0.1", port, timeout=5)
        lmkey = "x" * lmclient.MAX_KEY_LENGTH
        alice.set(lmkey, b"alice's lm key")
        if c.exists(lmkey) or c.get(lmkey) is not None:
            fail("lm:// (no authentication) sees alice's key on an auth server")
        c.close()
        if alice.get(lmkey) != b"alice's lm key":
            fail("alice's 150-byte key lost")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    print("test_server_tenant_keys.py: tenants apart for keys of %s bytes (inline room %d)" %
          (", ".join(map(str, sizes)), room))
    return 0


if __name__ == "__main__":
    sys.exit(main())
