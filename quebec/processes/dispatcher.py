"""Dispatchers move due scheduled jobs to ready, clear old finished jobs (and batches) and
rollups, repair batches whose counters disagree with their members, and prune dead processes."""

import logging
import time
from datetime import timedelta

from django.utils import timezone

from quebec import maintenance
from quebec.lifecycle import batches, queueing, stats
from quebec.models import Batch, Job, Semaphore
from quebec.processes.poller import Poller

logger = logging.getLogger("quebec.dispatcher")

CLEAR_EVERY = 60.0  # seconds between passes over finished jobs
CLEAR_BATCH = 500
CLEAR_BATCHES_PER_PASS = 20  # bounded, so a large backlog never holds up dispatching
CHECK_BATCHES_EVERY = 60.0  # seconds between checks of running batches' counters


class Dispatcher(Poller):
    kind = "Dispatcher"

    def __init__(self, config, *, settings, quebec):
        super().__init__(polling_interval=config.polling_interval, settings=settings, quebec=quebec)
        self.batch_size = config.batch_size
        self._next_clear = time.monotonic()
        self._next_prune = time.monotonic()
        self._next_maintenance = time.monotonic()
        self._next_batch_check = time.monotonic() + CHECK_BATCHES_EVERY

    def metadata(self):
        return {**super().metadata(), "batch_size": self.batch_size}

    def poll(self):
        moved = queueing.dispatch_due(self.using, self.batch_size, skip_locked=self.settings.use_skip_locked)
        if moved:
            logger.debug("%s dispatched %d scheduled job(s)", self.name, moved)
        if time.monotonic() >= self._next_clear:
            self._next_clear = time.monotonic() + CLEAR_EVERY
            self.clear_finished_jobs()
            self.prune_stats()
        if time.monotonic() >= self._next_batch_check:
            self._next_batch_check = time.monotonic() + CHECK_BATCHES_EVERY
            self.check_batches()
        if time.monotonic() >= self._next_maintenance:
            self._next_maintenance = time.monotonic() + self.settings.dispatcher_concurrency_maintenance_interval
            self.concurrency_maintenance()
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + self.settings.process_heartbeat_interval
            maintenance.prune_dead_processes(self.settings, self.quebec, exclude=[self.process.pk])
        return moved == self.batch_size

    def concurrency_maintenance(self):
        """Free the slots of holders that outlived their TTL (crashed), and let blocked jobs in."""
        expired = Semaphore.objects.using(self.using).expired().delete()[0]
        released = queueing.release_expired(self.using)
        if expired or released:
            logger.info("%s: %d expired semaphore(s) cleared, %d blocked job(s) released", self.name, expired, released)

    def check_batches(self):
        """Repair running batches whose counters disagree with their members (a member ended by
        a route that bypassed the lifecycle, a row edited by hand), finishing those that are due."""
        repaired = batches.repair(self.using)
        if repaired:
            logger.warning("%s repaired the counters of %d batch(es): %s", self.name, len(repaired), repaired)
        return repaired

    def clear_finished_jobs(self):
        """Delete finished jobs older than ``clear_finished_jobs_after``, in small batches, then
        the batches finished as long ago that no member is left of."""
        if not self.settings.clear_finished_jobs_after:
            return 0
        before = timezone.now() - timedelta(seconds=self.settings.clear_finished_jobs_after)
        cleared = self._clear_jobs(before) if self.settings.preserve_finished_jobs else 0
        # A failed batch keeps its failed members, and so stays until they are gone.
        batches_cleared = Batch.objects.using(self.using).clear_finished(before, CLEAR_BATCH)
        if batches_cleared:
            logger.info("%s cleared %d finished batch(es)", self.name, batches_cleared)
        return cleared

    def _clear_jobs(self, before):
        cleared = 0
        for _ in range(CLEAR_BATCHES_PER_PASS):
            deleted = Job.objects.using(self.using).clear_finished(before, CLEAR_BATCH)
            cleared += deleted
            if deleted < CLEAR_BATCH:
                break
        else:
            self._next_clear = time.monotonic()  # more to clear: continue on the next poll
        if cleared:
            logger.info("%s cleared %d finished job(s)", self.name, cleared)
        return cleared

    def prune_stats(self):
        """Fold finished minutes of rollups into their totals, then delete those older than
        ``stats_retention``, in batches, bounded per pass like ``clear_finished_jobs``."""
        stats.fold(self.using)
        pruned = 0
        for _ in range(CLEAR_BATCHES_PER_PASS):
            deleted = stats.prune(self.using, self.settings.stats_retention, stats.PRUNE_BATCH)
            pruned += deleted
            if deleted < stats.PRUNE_BATCH:
                break
        else:
            self._next_clear = time.monotonic()
        if pruned:
            logger.info("%s pruned %d rollup row(s) past stats_retention", self.name, pruned)
        return pruned
