"""A fixed pool of daemon threads that run claimed jobs."""

import logging
import queue
import threading
import time

from django.db import connections

_STOP = object()
logger = logging.getLogger("quebec.worker")


class Pool:
    """``size`` threads taking work from a queue.

    More items than threads may be posted: they wait in the queue and count as in flight. An
    item that waited longer than ``max_wait`` seconds is not run: it goes to ``on_expired``
    instead (say, a process that was frozen must not start jobs it claimed long ago), and
    ``cancel_waiting()`` takes back items no thread has started. Daemon threads, so a job stuck
    past the shutdown timeout cannot keep the process alive.
    """

    def __init__(self, size, run, on_idle, name="quebec-pool", max_wait=None, on_expired=None):
        self.size = size
        self._run = run
        self._on_idle = on_idle
        self._max_wait = max_wait
        self._on_expired = on_expired
        self._queue = queue.SimpleQueue()
        self._in_flight = 0
        self._waiting_cut_short = False
        self._lock = threading.Condition()
        # One flag per thread, each written only by its thread: counting the busy ones takes no lock.
        self._running = [False] * size
        self._threads = [
            threading.Thread(target=self._work, args=(index,), name=f"{name}-{index}", daemon=True)
            for index in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def in_flight(self):
        with self._lock:
            return self._in_flight

    def busy(self):
        """How many threads are running an item now."""
        return sum(self._running)

    def post(self, item, on_done=None):
        with self._lock:
            self._in_flight += 1
        self._queue.put((item, on_done, time.monotonic()))

    def cancel_waiting(self, older_than=None):
        """Take back the posted items no thread has started (only those that waited longer
        than ``older_than`` seconds, if given); returns them. Their ``on_done`` is called."""
        waiting = []
        while True:
            try:
                posted = self._queue.get_nowait()
            except queue.Empty:
                break
            if posted is _STOP:  # stop() came first: leave it for a thread
                self._queue.put(_STOP)
                break
            waiting.append(posted)
        now = time.monotonic()
        cancelled = []
        for posted in waiting:  # those kept go back in the same order
            if older_than is None or now - posted[2] > older_than:
                cancelled.append(posted)
            else:
                self._queue.put(posted)
        self._settle(len(cancelled))
        for _, on_done, _ in cancelled:
            if on_done is not None:
                on_done()
        return [item for item, _, _ in cancelled]

    def drain(self, timeout):
        """Wait until every posted item is done, ``timeout`` passes or ``stop_waiting()`` is
        called; True when drained."""
        with self._lock:
            self._lock.wait_for(lambda: self._in_flight == 0 or self._waiting_cut_short, timeout)
            return self._in_flight == 0

    def stop_waiting(self):
        """End a ``drain()`` now, and any later one at once: the process is stopping immediately."""
        with self._lock:
            self._waiting_cut_short = True
            self._lock.notify_all()

    def stop(self):
        """Let idle threads exit; a thread still running a job exits after it."""
        for _ in self._threads:
            self._queue.put(_STOP)

    def _settle(self, count):
        with self._lock:
            self._in_flight -= count
            self._lock.notify_all()

    def _work(self, index):
        try:
            while (posted := self._queue.get()) is not _STOP:
                item, on_done, posted_at = posted
                try:
                    if self._max_wait is not None and time.monotonic() - posted_at > self._max_wait:
                        self._on_expired(item)
                    else:
                        self._running[index] = True
                        self._run(item)
                except BaseException:  # a thread that dies would still be counted as idle
                    logger.exception("Unexpected error in %s", threading.current_thread().name)
                finally:
                    self._running[index] = False
                    self._settle(1)
                    if on_done is not None:
                        on_done()
                    self._on_idle()
        finally:
            connections.close_all()
