"""The job bench_core.py enqueues and drains."""

import quebec


class NoopJob(quebec.BaseClass):
    """Does nothing, so the benchmark measures Quebec and the database alone."""

    def perform(self):
        pass
