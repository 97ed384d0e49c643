"""The jobs the benchmarks enqueue and drain."""

import os
import time

import quebec


class NoopJob(quebec.BaseClass):
    """Does nothing, so the benchmark measures Quebec and the database alone."""

    def perform(self):
        pass


class StampJob(quebec.BaseClass):
    """Writes the moment it starts, so run.py can measure the latency from enqueue to start."""

    def perform(self, token):
        with open(os.environ["QUEBEC_BENCH_STAMPS"], "a") as stamps:
            stamps.write(f"{token} {time.time()!r}\n")


class KeyedNoopJob(quebec.BaseClass):
    """Does nothing, one at a time per key: the concurrency participant's cost, and nothing else."""

    concurrency_limit = 1

    def concurrency_key(self, key):
        return key

    def perform(self, key):
        pass


class KeyNoopJob(quebec.BaseClass):
    """Does nothing with one argument: the plain side of the unique enqueue benchmark."""

    def perform(self, key):
        pass


class UniqueNoopJob(KeyNoopJob):
    """The same, unique per key: what taking a unique key adds to an enqueue."""

    unique_until = "finished"

    def unique_key(self, key):
        return key


class RunLogJob(quebec.BaseClass):
    """Does nothing but note its run, one line per run in a file of its worker process's own
    (under ``QUEBEC_BENCH_RUN_LOG``): a count of each job's runs that does not rest on Quebec's
    own bookkeeping."""

    def perform(self):
        os.write(_run_log(), f"{self.id}\n".encode())  # one O_APPEND write: whole, whatever the threads


_run_logs = {}


def _run_log():
    """This process's run log file descriptor, opened once."""
    pid = os.getpid()
    if pid not in _run_logs:
        name = f"{os.environ.get('QUEBEC_BENCH_HOST', 'host')}-{pid}.log"
        path = os.path.join(os.environ["QUEBEC_BENCH_RUN_LOG"], name)
        _run_logs[pid] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    return _run_logs[pid]
