"""Workers claim ready jobs in batches and run them on a pool of threads."""

import logging
import threading
import time

from django.db import DatabaseError, InterfaceError, OperationalError
from django.utils import timezone

from quebec import execution, maintenance
from quebec.db import close_broken_connections
from quebec.lifecycle import outcome as outcomes, running
from quebec.lifecycle.concurrency import ensure_queue_semaphores, queue_limits
from quebec.models import ClaimedExecution
from quebec.processes.poller import DEREGISTER_PATIENCE, Poller
from quebec.processes import listener
from quebec.processes.exclusive import EXCLUSIVE
from quebec.processes.pool import Pool
from quebec.registry import UnknownJobClass

logger = logging.getLogger("quebec.worker")

# How long a thread keeps trying to record a job's outcome while the database is away (a
# failover, a restart). Past that the claim stays, and the job runs again once it is released.
RECORD_PATIENCE = 600.0
# Claiming ahead: with short jobs, a worker claims more jobs than it has idle threads, so that a
# claim (one round trip, one commit) moves a batch of jobs, not one or two. Per thread, it claims
# as many more as the thread runs in CLAIM_AHEAD_WAIT seconds at the average run time so far, up
# to ``worker_claim_ahead``, so a job claimed ahead usually waits about that long at most for a
# thread of this process. Jobs averaging longer than that are claimed only for idle threads, and
# so is everything while a queue has a concurrency limit (claims ahead would hold its slots).
CLAIM_AHEAD_WAIT = 0.05
# A job claimed ahead that waited this long for a thread (every thread busy with a long job, or
# the process frozen) is not started: its claim goes back to ready, for other workers.
CLAIM_AHEAD_MAX_WAIT = 1.0
# Finished jobs wait at most this long (or a polling interval, if shorter) to be recorded with
# the next claim.
FINISH_RECORD_DELAY = 0.1


class Worker(Poller):
    """Claims jobs for its threads (and ahead of them while jobs are short), recording the
    finished ones in the same short transaction."""

    kind = "Worker"

    def __init__(self, config, *, settings, quebec):
        super().__init__(polling_interval=config.polling_interval, settings=settings, quebec=quebec)
        self.queues = config.queues
        self.threads = config.threads
        self.pool = None
        self.abandoned = 0  # jobs still running when shutdown gave up waiting for them
        self.quiet = False  # set by SIGUSR1/SIGTSTP: run what we have, claim nothing more
        self._held_exclusive = []  # exclusive jobs claimed, each waiting for the process to be idle
        # Jobs that ran successfully, whose end the loop records with its next claim. A thread
        # adds its job before it counts as idle, so the loop that claims for that thread records
        # the job first, and the process never holds more claims than threads plus claim-ahead.
        self._finished = []
        self._finished_lock = threading.Lock()
        self._listener = None
        self._average_run = None  # seconds, a moving average over the jobs this process ran
        self._recorded_at = 0.0  # time.monotonic() of the last look at the finished jobs
        self._to_release = []  # jobs claimed ahead that will not run here, whose claims go back
        self._stalled = False  # jobs claimed ahead waited too long; no more until a thread frees up
        self._next_stale_check = 0.0

    def metadata(self):
        return {**super().metadata(), "queues": list(self.queues), "threads": self.threads, "quiet": self.quiet}

    def register(self):
        if self.settings.use_listen_notify and listener.available(self.using):
            # Listening before the first poll: nothing made ready after that poll goes unheard.
            self._listener = listener.Listener(self.using, self.wake, self.name)
            self._listener.start()
        super().register()
        self.pool = Pool(self.threads, self._perform, on_idle=self._thread_freed, name=self.name,
                         max_wait=CLAIM_AHEAD_MAX_WAIT, on_expired=self._not_started)
        EXCLUSIVE.add(self)
        ensure_queue_semaphores(self.using)
        orphans = maintenance.handle_orphaned_claims(self.settings, self.quebec)
        if orphans:
            logger.warning("%s: handled %d job(s) claimed by processes that no longer exist", self.name, orphans)
        self.quebec.run_hooks("on_worker_start", self)

    def go_quiet(self):
        """Stop claiming; jobs already claimed run to their end."""
        if not self.quiet:
            logger.info("%s going quiet: no new jobs will be claimed", self.name)
        self.quiet = True

    def drained(self):
        if self.pool is None or self.pool.in_flight() != 0:
            return False
        with self._finished_lock:
            return not self._finished and not self._to_release

    def poll(self):
        """Record the jobs finished since the last poll and claim jobs for the threads, in one
        transaction; True when it got all it asked for (there may be more)."""
        self._release_stale_claims()
        wanted = self._room_to_claim()
        if not wanted and self._finished_can_wait():
            return False
        claiming = wanted > 0 and EXCLUSIVE.begin_claim()
        try:
            jobs = self._record_and_claim(wanted if claiming else 0)
            for job in jobs:
                if self._is_exclusive(job):
                    self._held_exclusive.append(job)
                    EXCLUSIVE.enter(self)
                else:
                    self.pool.post(job)
        finally:
            if claiming:
                EXCLUSIVE.end_claim()
        if self._held_exclusive:
            return self._start_exclusive_when_alone()
        return claiming and len(jobs) == wanted  # else sleep until a thread frees up and wakes us

    def _claim_ahead(self):
        """How many jobs this process may hold beyond one per thread (see CLAIM_AHEAD_WAIT)."""
        if self._average_run is None or self._stalled or queue_limits():
            return 0
        per_thread = int(CLAIM_AHEAD_WAIT / max(self._average_run, 1e-6))
        return self.threads * min(per_thread, self.settings.worker_claim_ahead)

    def _room_to_claim(self):
        """How many jobs to claim now: 0 while quiet or holding an exclusive job, and 0 while the
        jobs claimed ahead leave room for less than a batch."""
        if self._held_exclusive or self.quiet:
            return 0
        ahead = self._claim_ahead()
        room = self.threads + ahead - self.pool.in_flight()
        # With jobs claimed ahead, wait until a batch fits: claiming for each thread as it frees
        # up would cost a round trip per job again.
        return room if room >= (min(self.threads, ahead) or 1) else 0

    def _finished_can_wait(self):
        """Whether the finished jobs can wait for the next claim to be recorded with it: yes while
        threads are busy, for up to FINISH_RECORD_DELAY (a finished job must soon look finished)."""
        if self.quiet or self._held_exclusive or self.pool.in_flight() == 0:
            return False
        return time.monotonic() - self._recorded_at < min(self.polling_interval, FINISH_RECORD_DELAY)

    def _thread_freed(self):
        """A pool thread finished a job: wake the loop when there is room to claim a batch, or
        when other workers of the process may be waiting for it to be idle (exclusive jobs)."""
        self._stalled = False
        if EXCLUSIVE.holding():
            EXCLUSIVE.wake_all()
        elif self.quiet or self._room_to_claim() or self.pool.in_flight() == 0:
            self.wake()

    def _record_and_claim(self, limit):
        with self._finished_lock:
            finished, self._finished = self._finished, []
        self._recorded_at = time.monotonic()
        try:
            recorded, jobs = running.end_and_claim(
                self.using, finished, self.process.pk, self.settings.preserve_finished_jobs, self.queues, limit,
                self.settings.use_skip_locked,
            )
        except (OperationalError, InterfaceError):
            # The connection or a deadlock: the batch is recorded once the poll is retried.
            with self._finished_lock:
                self._finished[:0] = finished
            raise
        except DatabaseError:
            # Something in the batch the database refuses: record each job on its own, so that
            # one job's outcome cannot hold back the others', then let the poll be retried.
            self._record_one_by_one(finished)
            raise
        self._warn_unrecorded(finished, recorded)
        return jobs

    def _record_one_by_one(self, finished):
        for run in finished:
            try:
                recorded = running.end([run], self.process.pk, self.settings.preserve_finished_jobs, self.using)
            except Exception:
                logger.exception("%s: could not record the outcome of job #%s", self.name, run.job.pk)
            else:
                self._warn_unrecorded([run], recorded)

    def _flush_finished(self):
        """Record what is left of the finished jobs before the process deregisters."""
        try:
            self._retrying(lambda: self._record_and_claim(0), patience=DEREGISTER_PATIENCE)
        except Exception:
            # Their claims stay, and deregistering puts the jobs back in line.
            logger.exception("%s: could not record the jobs that finished last", self.name)

    def _warn_unrecorded(self, finished, recorded):
        if len(recorded) == len(finished):
            return
        recorded_ids = {run.job.pk for run in recorded}
        for run in finished:
            if run.job.pk not in recorded_ids:
                logger.warning("%s: job #%s was released while it ran; its outcome is not recorded", self.name,
                               run.job.pk)

    def _is_exclusive(self, job):
        try:
            return self.quebec.resolve(job.class_name).exclusive
        except UnknownJobClass:
            return False

    def _start_exclusive_when_alone(self):
        """Run the held exclusive job once every job of this process has finished."""
        if EXCLUSIVE.try_start(self):
            job = self._held_exclusive.pop(0)
            self.pool.post(job, on_done=lambda: EXCLUSIVE.leave(self, still_holding=bool(self._held_exclusive)))
        return False

    def shutdown(self):
        if self._listener is not None:
            self._listener.stop()
        if self.pool is not None:
            self._release_unstarted()
            timeout = self.shutdown_timeout
            if not self.pool.drain(timeout):
                self.abandoned = self.pool.in_flight()
                logger.warning(
                    "%s: %d job(s) still running after shutdown_timeout (%ss); they go back to ready",
                    self.name,
                    self.abandoned,
                    timeout,
                )
            self.pool.stop()
        self._flush_finished()
        if self._held_exclusive:
            EXCLUSIVE.leave(self)  # never started: deregistering puts them back to ready
        EXCLUSIVE.remove(self)
        super().shutdown()
        self.quebec.run_hooks("on_worker_stop", self)

    def _not_started(self, job):
        """A pool thread found ``job`` waited too long to be started (CLAIM_AHEAD_MAX_WAIT)."""
        with self._finished_lock:
            self._to_release.append(job)
        self.wake()

    def _release_stale_claims(self):
        """Give back the claims of jobs claimed ahead that waited too long for a thread."""
        now = time.monotonic()
        if now >= self._next_stale_check:
            self._next_stale_check = now + CLAIM_AHEAD_MAX_WAIT / 2
            stale = self.pool.cancel_waiting(older_than=CLAIM_AHEAD_MAX_WAIT)
            if stale:
                self._stalled = True  # else the claims released would be taken straight back
            with self._finished_lock:
                self._to_release += stale
        self._release_claims()

    def _release_claims(self):
        """Put the jobs in ``_to_release`` back to ready; kept for the next poll on failure."""
        with self._finished_lock:
            jobs, self._to_release = self._to_release, []
        if not jobs:
            return
        claims = ClaimedExecution.objects.using(self.using).filter(
            process_id=self.process.pk, job_id__in=[job.pk for job in jobs]
        )
        try:
            running.release(claims)
        except Exception:
            with self._finished_lock:  # tried again with the next poll
                self._to_release[:0] = jobs
            raise

    def _release_unstarted(self):
        """Hand back the jobs claimed ahead that no thread has started: they go back to ready at
        once, for other workers, instead of waiting for the running ones to end."""
        unstarted = self.pool.cancel_waiting()
        with self._finished_lock:
            self._to_release += unstarted
        try:
            self._retrying(self._release_claims, patience=DEREGISTER_PATIENCE)
        except Exception:
            # Their claims stay, and deregistering puts the jobs back in line.
            logger.exception("%s: could not release the jobs claimed ahead", self.name)

    def _perform(self, job):
        try:
            close_broken_connections(ping=True)
            self._perform_and_record(job)
        except Exception:
            # Only recording the outcome can get here; the claim stays until this process
            # deregisters, which puts the job back in line.
            logger.exception("%s: could not record the outcome of job #%s", self.name, job.pk)
        finally:
            close_broken_connections()

    def _perform_and_record(self, job):
        running.start(job, self.name, self.using)
        started_at, started = timezone.now(), time.monotonic()
        instance, outcome = execution.run_stored(job, self.quebec)
        if instance is not None:
            job.exception_executions = instance.exception_executions
        execution.add_attempt(job, outcome, started_at, self.name)
        elapsed = time.monotonic() - started
        average = self._average_run
        self._average_run = elapsed if average is None else 0.8 * average + 0.2 * elapsed
        run = outcomes.Run(job, outcome, elapsed)
        if outcome.state == outcomes.FINISHED:
            # Recorded by the loop, batched with others and with the next claim.
            with self._finished_lock:
                self._finished.append(run)
            return
        recorded = self._retrying(
            lambda: running.end([run], self.process.pk, self.settings.preserve_finished_jobs, self.using),
            patience=RECORD_PATIENCE,
        )
        self._warn_unrecorded([run], recorded)
