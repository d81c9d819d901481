"""Description: a GET of a value served from NVMe comes back byte for byte, promptly, over RESP and
lm://.  kvgridd runs with a 4 MiB DRAM tier and an NVMe directory; values of 1 byte, around 4 KiB
(not multiples of it), just under, at and just over the DRAM chunk (256 KiB, value plus the
32-byte header) and near 1 MiB are stored, then pushed out of DRAM by filler.  Each GET must
raise the server's NVMe hit count (so it really was loaded from NVMe, not lent from the arena)
and return exactly the bytes stored: a reply one byte short or long fails within seconds with
"GET from NVMe returned N bytes, expected M", never by hanging on a socket.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmclient  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KVGRIDD = os.environ.get("KVGRIDD", os.path.join(ROOT, "build", "kvgridd"))
TMP = os.path.join(os.environ.get("KVG_TEST_TMP", os.path.join(ROOT, "build", "tmp")),
                   "test_server_nvme_get.%d" % os.getpid())
WAIT_S = 3  # how long a reply may stall before it is declared short
CHUNK = 256 << 10  # the grid's default chunk_bytes (include/kvgrid.h)
HDR = 32  # server/kv.h KV_HDR_BYTES: the value header stored in front of every value
SIZES = [1, 4095, 4097, 12345, CHUNK - HDR - 1, CHUNK - HDR, CHUNK - HDR + 1, CHUNK, CHUNK + 1,
         700001, (1 << 20) + 7]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


class Server:
    def __init__(self, d):
        self.port_file = os.path.join(TMP, "port")
        self.log = os.path.join(TMP, "kvgridd.log")
        self.proc = subprocess.Popen(
            [KVGRIDD, "--port", "0", "--port-file", self.port_file, "--metrics-port", "0",
             "--log-file", self.log, "--threads", "2", "--dram", "4M", "--dir", d,
             "--nvme", "128M", "--set", "segment_bytes=16M", "--set", "io_backend=psync"])
        deadline = time.time() + 20
        while not (os.path.exists(self.port_file) and os.path.getsize(self.port_file)):
            if self.proc.poll() is not None or time.time() > deadline:
                self.proc.kill()
                fail("kvgridd did not start: " + open(self.log).read())
            time.sleep(0.05)
        self.port, self.metrics_port = map(int, open(self.port_file).read().split())

    def nvme_hits(self):
        m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                   timeout=WAIT_S).read().decode()
        for line in m.splitlines():
            if line.startswith('kvgrid_tier_hits_total{tier="nvme"}'):
                return int(line.split()[1])
        fail("no kvgrid_tier_hits_total{tier=\"nvme\"} in /metrics")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def recv_until(s, want, buf):
    """Reads into buf until it holds want bytes, the peer closes, or WAIT_S pass without a
    byte; returns buf."""
    s.settimeout(WAIT_S)
    while len(buf) < want:
        try:
            b = s.recv(min(1 << 20, want - len(buf)))
        except socket.timeout:
            break
        if not b:
            break
        buf += b
    return buf


def resp_cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def resp_get(port, key, expect):
    """One RESP GET on a fresh connection; fails unless it is exactly `expect`."""
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    s.sendall(resp_cmd(b"GET", key))
    buf = bytearray()
    while b"\r\n" not in buf:
        n = len(buf)
        recv_until(s, n + 1, buf)
        if len(buf) == n:
            fail("RESP GET from NVMe of a %d-byte value: no reply header within %d s (got %r)"
                 % (len(expect), WAIT_S, bytes(buf)))
    head, rest = bytes(buf).split(b"\r\n", 1)
    if not head.startswith(b"$") or int(head[1:]) < 0:
        fail("RESP GET from NVMe of a %d-byte value answered %r" % (len(expect), head))
    declared = int(head[1:])
    # read what the header promised plus CRLF, and one more byte to see whether it overruns
    body = recv_until(s, declared + 2, bytearray(rest))
    s.settimeout(0.2)
    try:
        extra = s.recv(1)
    except (socket.timeout, BlockingIOError):
        extra = b""
    s.close()
    if declared != len(expect):
        fail("RESP GET from NVMe returned a header of %d bytes, expected %d" %
             (declared, len(expect)))
    if len(body) < declared + 2 or not body.endswith(b"\r\n"):
        fail("RESP GET from NVMe returned %d bytes, expected %d (a %d-byte value and CRLF), "
             "then nothing for %d s" % (len(body), declared + 2, declared, WAIT_S))
    if extra:
        fail("RESP GET from NVMe returned more than %d bytes (the header promised %d)" %
             (len(expect), declared))
    if bytes(body[:-2]) != expect:
        first = next(i for i in range(len(expect)) if body[i] != expect[i])
        fail("RESP GET from NVMe of a %d-byte value differs from what was stored at byte %d"
             % (len(expect), first))


def lm_get(port, key, expect, meta):
    """One lm:// GET on a fresh connection; fails unless it is exactly `expect` and meta."""
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    s.sendall(lmclient.pack_request(lmclient.GET, key))
    rep = recv_until(s, lmclient.REPLY.size, bytearray())
    if len(rep) < lmclient.REPLY.size:
        fail("lm:// GET from NVMe of a %d-byte value: %d of 36 reply bytes within %d s" %
             (len(expect), len(rep), WAIT_S))
    code, length, fmt, dtype, shape, _ = lmclient.unpack_reply(bytes(rep))
    if code != lmclient.SUCCESS:
        fail("lm:// GET from NVMe of a %d-byte value answered %d" % (len(expect), code))
    if length != len(expect):
        fail("lm:// GET from NVMe returned a length of %d bytes, expected %d" %
             (length, len(expect)))
    body = recv_until(s, length, bytearray())
    s.settimeout(0.2)
    try:
        extra = s.recv(1)
    except (socket.timeout, BlockingIOError):
        extra = b""
    s.close()
    if len(body) != len(expect):
        fail("lm:// GET from NVMe returned %d bytes, expected %d (then nothing for %d s)" %
             (len(body), len(expect), WAIT_S))
    if extra:
        fail("lm:// GET from NVMe returned more than the %d bytes it announced" % length)
    if bytes(body) != expect:
        first = next(i for i in range(len(expect)) if body[i] != expect[i])
        fail("lm:// GET from NVMe of a %d-byte value differs from what was stored at byte %d" %
             (len(expect), first))
    if (fmt, dtype, shape) != meta:
        fail("lm:// GET from NVMe echoed fmt/dtype/shape %r, stored %r" %
             ((fmt, dtype, shape), meta))


def main():
    if not os.access(KVGRIDD, os.X_OK):
        print("kvgridd is not built")
        return 77
    d = os.path.join(TMP, "nvme")
    os.makedirs(d, exist_ok=True)
    srv = Server(d)
    try:
        vals = {n: os.urandom(n) for n in SIZES}
        lm = lmclient.LMClient("127.0.0.1", srv.port, timeout=WAIT_S)
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=WAIT_S)
        req = b"".join(resp_cmd(b"SET", b"r%d" % n, v) for n, v in vals.items())
        s.sendall(req)
        ok = recv_until(s, 5 * len(vals), bytearray())
        if bytes(ok) != b"+OK\r\n" * len(vals):
            fail("SETs answered %r" % bytes(ok[:80]))
        for n, v in vals.items():
            lm.put("l%d" % n, v, fmt=2, dtype=3, shape=(n % 7, 2, 3, 4))
        if not lm.health():  # PUT has no reply: a HEALTH after them orders them
            fail("lm:// HEALTH")
        # filler, four times the DRAM tier, pushes every value out of DRAM onto NVMe
        filler = os.urandom(CHUNK - HDR)
        s.sendall(b"".join(resp_cmd(b"SET", b"fill%d" % i, filler) for i in range(64)))
        ok = recv_until(s, 5 * 64, bytearray())
        if bytes(ok) != b"+OK\r\n" * 64:
            fail("filler SETs answered %r" % bytes(ok[:80]))
        s.close()
        lm.close()
        for n, v in vals.items():
            before = srv.nvme_hits()
            resp_get(srv.port, b"r%d" % n, v)
            if srv.nvme_hits() <= before:
                fail("RESP GET of the %d-byte value did not count an NVMe hit: it was not "
                     "served from NVMe, so this test checked nothing" % n)
        for n, v in vals.items():
            before = srv.nvme_hits()
            lm_get(srv.port, "l%d" % n, v, (2, 3, (n % 7, 2, 3, 4)))
            if srv.nvme_hits() <= before:
                fail("lm:// GET of the %d-byte value did not count an NVMe hit: it was not "
                     "served from NVMe, so this test checked nothing" % n)
    finally:
        rc = srv.stop()
    if rc != 0:
        fail("kvgridd exited %d on SIGTERM" % rc)
    print("test_server_nvme_get.py: RESP and lm:// GETs from NVMe exact for %s bytes" %
          ", ".join(map(str, SIZES)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
