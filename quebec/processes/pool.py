"""A fixed pool of daemon threads that run claimed jobs."""

import logging
import queue
import threading

from django.db import connections

_STOP = object()
logger = logging.getLogger("quebec.worker")


class Pool:
    """``size`` threads taking work from a queue; ``idle()`` says how many could start one now.

    More items than threads may be posted: they wait in the queue, count as in flight, and
    ``cancel_waiting()`` takes back those no thread has started. Daemon threads, so a job stuck
    past the shutdown timeout cannot keep the process alive.
    """

    def __init__(self, size, run, on_idle, name="quebec-pool"):
        self.size = size
        self._run = run
        self._on_idle = on_idle
        self._queue = queue.SimpleQueue()
        self._in_flight = 0
        self._lock = threading.Condition()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True) for index in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def idle(self):
        with self._lock:
            return max(0, self.size - self._in_flight)

    def in_flight(self):
        with self._lock:
            return self._in_flight

    def post(self, item, on_done=None):
        with self._lock:
            self._in_flight += 1
        self._queue.put((item, on_done))

    def cancel_waiting(self):
        """Take back the posted items no thread has started; returns them."""
        cancelled = []
        while True:
            try:
                posted = self._queue.get_nowait()
            except queue.Empty:
                break
            if posted is _STOP:  # stop() came first: leave it for a thread
                self._queue.put(_STOP)
                break
            cancelled.append(posted[0])
        with self._lock:
            self._in_flight -= len(cancelled)
            self._lock.notify_all()
        return cancelled

    def drain(self, timeout):
        """Wait until every posted item is done or ``timeout`` passes; True when drained."""
        with self._lock:
            return self._lock.wait_for(lambda: self._in_flight == 0, timeout)

    def stop(self):
        """Let idle threads exit; a thread still running a job exits after it."""
        for _ in self._threads:
            self._queue.put(_STOP)

    def _work(self):
        try:
            while (posted := self._queue.get()) is not _STOP:
                item, on_done = posted
                try:
                    self._run(item)
                except BaseException:  # a thread that dies would still be counted as idle
                    logger.exception("Unexpected error in %s", threading.current_thread().name)
                finally:
                    with self._lock:
                        self._in_flight -= 1
                        self._lock.notify_all()
                    if on_done is not None:
                        on_done()
                    self._on_idle()
        finally:
            connections.close_all()
