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
