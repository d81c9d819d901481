"""Shared set-up of the Python package's tests: the package from python/, the library from
this build (build/libkvgrid.so.1 through KVGRID_LIB), Debian's interpreter (python3-numpy,
python3-torch, python3-redis are Debian's), a scratch directory, and kvgridd on an
ephemeral 127.0.0.1 port."""
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# KVG_TEST_LIB runs the tests on another build of the library (build/asan/libkvgrid.so.1
# with LD_PRELOAD of the sanitizer runtime)
LIB = os.environ.get("KVG_TEST_LIB") or os.path.join(ROOT, "build", "libkvgrid.so.1")
KVGRIDD = os.environ.get("KVGRIDD", os.path.join(ROOT, "build", "kvgridd"))


def setup(name, need=()):
    """Prepares the import of kvgrid and returns a scratch directory; skips (exit 77) when
    the library is not built or a needed module (numpy, torch) is missing."""
    if os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3" \
            and not os.environ.get("KVG_PY_REEXEC"):
        os.environ["KVG_PY_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    if not os.path.exists(LIB):
        print("%s is not built (make)" % LIB)
        sys.exit(77)
    os.environ["KVGRID_LIB"] = LIB
    sys.path.insert(0, os.path.join(ROOT, "python"))
    for mod in need:
        try:
            __import__(mod)
        except ImportError:
            print("python3 module %s is missing (sh scripts/deps.sh test)" % mod)
            sys.exit(77)
    base = os.environ.get("KVG_TEST_TMP", os.path.join(ROOT, "build", "tmp"))
    tmp = os.path.join(base, "%s.%d" % (name, os.getpid()))
    os.makedirs(tmp, exist_ok=True)
    return tmp


class Kvgridd:
    """build/kvgridd on an ephemeral port (DRAM only unless args say otherwise); stopped
    with SIGTERM."""

    def __init__(self, tmp, name, *args):
        self.port_file = os.path.join(tmp, name + ".port")
        self.log = os.path.join(tmp, name + ".log")
        cmd = [KVGRIDD, "--port", "0", "--port-file", self.port_file, "--dram", "256M",
               "--metrics-port", "0", "--log-file", self.log] + list(args)
        self.proc = subprocess.Popen(cmd)
        deadline = time.time() + 30
        while not os.path.exists(self.port_file) or not open(self.port_file).read().strip():
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("kvgridd did not start: " + open(self.log).read())
            time.sleep(0.05)
        self.port, self.metrics_port = map(int, open(self.port_file).read().split()[:2])
        self.addr = "127.0.0.1:%d" % self.port

    def metric(self, name):
        """The value of one Prometheus metric line (no labels) of /metrics."""
        import urllib.request
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        for line in urllib.request.urlopen(url, timeout=10).read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def run_cases(cases, *args):
    """Runs each case(*args) in order, printing its name; exit 1 at the first failure."""
    for case in cases:
        t0 = time.time()
        case(*args)
        print("ok   %s (%.2fs)" % (case.__name__, time.time() - t0), flush=True)
