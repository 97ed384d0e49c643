"""Exclusive jobs: while one runs, nothing else runs in this worker process.

A worker that claims an exclusive job holds it, and every worker of the process stops claiming;
once all their running jobs are done the held job runs alone, and claiming resumes when it ends.
The scope is the process: pair ``exclusive`` with ``concurrency_limit = 1`` and a
``concurrency_key`` for one-at-a-time across the cluster.
"""

import threading


class ExclusiveGate:
    def __init__(self):
        self._lock = threading.Lock()
        self._workers = set()
        self._holders = set()  # workers holding or running an exclusive job
        self._running = None  # the worker whose exclusive job runs now
        self._claiming = 0  # workers inside a claim right now, whose jobs are not yet in flight

    def add(self, worker):
        with self._lock:
            self._workers.add(worker)

    def remove(self, worker):
        with self._lock:
            self._workers.discard(worker)
            self._holders.discard(worker)
            if self._running is worker:
                self._running = None

    def enter(self, worker):
        with self._lock:
            self._holders.add(worker)

    def leave(self, worker, still_holding=False):
        with self._lock:
            if not still_holding:
                self._holders.discard(worker)
            if self._running is worker:
                self._running = None
        self.wake_all()

    def holding(self):
        """Whether a worker of the process holds or runs an exclusive job."""
        with self._lock:
            return bool(self._holders)

    def begin_claim(self):
        """Whether a worker may claim now (no exclusive job held or running); pair with end_claim()."""
        with self._lock:
            if self._holders:
                return False
            self._claiming += 1
            return True

    def end_claim(self):
        with self._lock:
            self._claiming -= 1

    def try_start(self, worker):
        """Let ``worker`` start its exclusive job if nothing runs in the process; True if so."""
        with self._lock:
            busy = self._claiming or any(w.pool.in_flight() for w in self._workers if w.pool is not None)
            if self._running is not None or busy:
                return False
            self._running = worker
            return True

    def wake_all(self):
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.wake()


EXCLUSIVE = ExclusiveGate()
