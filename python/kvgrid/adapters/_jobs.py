"""What the adapters share: an eventfd of their own, and one background thread for the
calls that libkvgrid answers synchronously (exists, delete, lookup on a remote grid) so that
an adapter's submit never waits for them.  Both are plain stdlib."""
import os
import queue
import threading


def new_eventfd():
    return os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)


def clear_eventfd(fd):
    try:
        os.eventfd_read(fd)
    except BlockingIOError:
        pass


class Worker:
    """Runs submitted callables in order on one daemon thread.  fn() returns the
    completion to record; an exception becomes on_error(exc)'s.  Each completion is
    passed to deliver() on the worker thread."""

    def __init__(self, name, deliver):
        self._q = queue.Queue()
        self._deliver = deliver
        self._t = threading.Thread(target=self._run, name=name, daemon=True)
        self._t.start()

    def submit(self, fn, on_error):
        self._q.put((fn, on_error))

    def _run(self):
        while True:
            item = self._q.get()
            if item is None:
                return
            fn, on_error = item
            try:
                out = fn()
            except Exception as e:  # reported as a failed job, never raised away
                out = on_error(e)
            self._deliver(out)

    def close(self):
        """Finishes what was submitted, then stops."""
        self._q.put(None)
        self._t.join()
