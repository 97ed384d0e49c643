"""Memory recycling: notice a process whose RSS stays above ``worker_max_rss_mb``."""

import logging
import time

import psutil

logger = logging.getLogger("quebec.memory")


class MemoryWatch:
    """Samples this process's resident memory every ``interval`` seconds.

    ``over_limit()`` turns true once ``confirmations`` samples in a row were above the limit, so a
    short spike does not recycle a worker. Without a limit it only reports the RSS.
    """

    def __init__(self, limit_mb, confirmations, interval):
        self.limit_mb = limit_mb
        self.confirmations = confirmations
        self.interval = interval
        self.rss_mb = 0.0
        self.strikes = 0
        self._process = psutil.Process()
        self._next_sample = 0.0

    @classmethod
    def from_settings(cls, settings):
        return cls(
            settings.worker_max_rss_mb,
            settings.worker_memory_recycle_confirmations,
            settings.worker_memory_check_interval,
        )

    def sample(self):
        self.rss_mb = self._process.memory_info().rss / 2**20
        return self.rss_mb

    def over_limit(self):
        if self.limit_mb is None or time.monotonic() < self._next_sample:
            return False
        self._next_sample = time.monotonic() + self.interval
        if self.sample() <= self.limit_mb:
            self.strikes = 0
            return False
        self.strikes += 1
        logger.warning(
            "RSS %.0f MB is above worker_max_rss_mb=%d (%d of %d)",
            self.rss_mb,
            self.limit_mb,
            self.strikes,
            self.confirmations,
        )
        return self.strikes >= self.confirmations

    def metadata(self):
        return {"rss_mb": round(self.sample(), 1)}
