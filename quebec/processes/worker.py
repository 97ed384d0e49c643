"""Workers claim ready jobs in batches and run them on a pool of threads."""

import logging
import threading
import time

from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.utils import timezone

from quebec import execution, maintenance, tracing
from quebec.db import close_broken_connections, hygiene, operations
from quebec.errors import TransactionLeftOpenError
from quebec.lifecycle import outcome as outcomes, progress, running, stats
from quebec.lifecycle.concurrency import ensure_queue_semaphores, queue_limits
from quebec.models import ClaimedExecution
from quebec.processes.claiming import ClaimBudget, Outbox
from quebec.processes.poller import DEREGISTER_PATIENCE, MAX_ERROR_BACKOFF, Poller
from quebec.processes import listener
from quebec.processes.exclusive import EXCLUSIVE
from quebec.processes.pool import Pool
from quebec.registry import UnknownJobClass

logger = logging.getLogger("quebec.worker")

# How long a thread keeps trying to record a job's outcome while the database is away (a
# failover, a restart). Past that the claim stays, and the job runs again once it is released.
RECORD_PATIENCE = 600.0
# A job claimed ahead that waited this long for a thread (every thread busy with a long job, or
# the process frozen) is not started: its claim goes back to ready, for other workers.
CLAIM_AHEAD_MAX_WAIT = 1.0


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
        self.budget = ClaimBudget(self.threads, settings.worker_claim_ahead)
        self.outbox = Outbox()
        self.rollups = stats.Buffer()
        self._held_exclusive = []  # exclusive jobs claimed, each waiting for the process to be idle
        self._listener = None
        self._next_stale_check = 0.0
        # A claim failed with the connection: it may have committed with its reply lost, leaving
        # claims in this process's name that no thread will run (see _release_claims_in_doubt).
        self._claims_in_doubt = False
        self._claimed_short = True  # the first poll looks before it claims
        # Two loops may claim at once (see ``_claim_alongside``): the room each takes is reserved
        # under this lock until its jobs are in flight, so that together they never hold more
        # than the budget.
        self._claim_lock = threading.Lock()
        self._reserved = 0  # jobs being claimed right now, not yet in flight
        self._main_claiming = False  # the main loop is in an end and claim
        self._second_loop = None
        self._second_wake = threading.Event()

    def metadata(self):
        return {**super().metadata(), "queues": list(self.queues), "threads": self.threads, "quiet": self.quiet}

    def title(self):
        busy = self.pool.busy() if self.pool is not None else 0
        return f"worker queues={','.join(self.queues)} threads={self.threads} busy={busy}"

    def register(self):
        # Listening before the first poll: nothing made ready after that poll goes unheard.
        self._listener = listener.listener_for(self.settings, self.using, self._notified, self.name)
        if self._listener is not None:
            self._listener.start()
        super().register()
        self.pool = Pool(
            self.threads,
            self._perform,
            on_idle=self._thread_freed,
            name=self.name,
            max_wait=CLAIM_AHEAD_MAX_WAIT,
            on_expired=self._not_started,
        )
        EXCLUSIVE.add(self)
        if operations(self.using).claims_alongside:
            self._second_loop = threading.Thread(target=self._second_loop_run, name=f"{self.name}-claims", daemon=True)
            self._second_loop.start()
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

    def interrupting(self):
        """Whether continuable jobs should stop at their next checkpoint and go back in line:
        the worker is stopping or quiet (a signal, memory recycling, a supervisor's shutdown)."""
        return self.quiet or self.stopping.is_set()

    def drained(self):
        return self.pool is not None and self.pool.in_flight() == 0 and not self._reserved and self.outbox.empty()

    def poll(self):
        """Record the jobs finished since the last poll and claim jobs for the threads, in one
        transaction; True when it got all it asked for (there may be more)."""
        self._release_stale_claims()
        if self._claims_in_doubt and not self._release_claims_in_doubt():
            wanted = 0
        else:
            wanted = self._reserve_room()
        try:
            if not wanted and self._runs_can_wait() or wanted and self._idle_with_nothing_ready():
                self.rollups.write(self.using)  # when due: no end or claim would carry them
                return False
            self._main_claiming = True
            return self._claim(wanted)
        finally:
            self._main_claiming = False
            self._unreserve(wanted)

    def _claim(self, wanted):
        """Record the finished runs and claim ``wanted`` jobs (reserved by the caller), posting
        them to the threads; True when it got all it asked for."""
        claiming = wanted > 0 and EXCLUSIVE.begin_claim()
        try:
            jobs = self._record_and_claim(wanted if claiming else 0)
            if claiming:
                self._claimed_short = len(jobs) < wanted
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

    def _reserve_room(self):
        """Reserve the room to claim now (see ``_room_to_claim``) for the calling loop; none while
        claims are in doubt. Given back with ``_unreserve`` once the jobs claimed are in flight."""
        with self._claim_lock:
            room = 0 if self._claims_in_doubt else self._room_to_claim()
            self._reserved += room
            return room

    def _unreserve(self, count):
        with self._claim_lock:
            self._reserved -= count

    def _second_loop_run(self):
        """A second loop on a connection of its own: while the main loop waits for its end and
        claim, threads keep freeing up, and this loop records their runs and claims for them in
        a second transaction. One loop sends one statement at a time and waits for it; on a busy
        worker that wait, not Python or the database, is what limits the drain. It polls only
        when woken by a thread freed while the main loop is in a statement, so an idle worker
        sends nothing more."""
        errors_in_a_row = 0
        try:
            while not self.stopping.is_set():
                self._second_wake.wait()
                self._second_wake.clear()
                try:
                    while not self.stopping.is_set() and self._claim_alongside():
                        pass
                except Exception:
                    # Logged, and tried again later; the main loop claims on meanwhile.
                    errors_in_a_row += 1
                    pause = min(self.polling_interval * 2**errors_in_a_row, MAX_ERROR_BACKOFF)
                    logger.exception("%s: error in the second claim loop; retrying in %.1fs", self.name, pause)
                    close_broken_connections()
                    self.stopping.wait(pause)
                else:
                    errors_in_a_row = 0
        finally:
            connections.close_all()

    def _claim_alongside(self):
        """One end and claim of the second loop; True to go on at once (it got all it asked for
        and the main loop is still in a statement)."""
        wanted = self._reserve_room()
        if not wanted:
            return False
        try:
            return self._claim(wanted) and self._main_claiming
        finally:
            self._unreserve(wanted)

    def _notified(self):
        """Jobs became ready: claim at once, without looking first."""
        self._claimed_short = False
        self.wake()

    def _idle_with_nothing_ready(self):
        """Whether this poll can end at once: the last claim found fewer jobs than it asked for,
        nothing waits to be recorded, and a look without a transaction finds no ready job. An
        idle worker's poll is then that one look, not a claim's transaction."""
        if not self._claimed_short or not self.outbox.empty():
            return False
        return not operations(self.using).worth_claiming(self.queues)

    def claim_ahead(self):
        """How many jobs this process may now hold beyond one per thread."""
        return self.budget.ahead(queues_limited=bool(queue_limits()))

    def _room_to_claim(self):
        """How many jobs to claim now: none while quiet or holding an exclusive job. Jobs being
        claimed by a loop count as held."""
        if self._held_exclusive or self.quiet:
            return 0
        return self.budget.room(self.pool.in_flight() + self._reserved, queues_limited=bool(queue_limits()))

    def _runs_can_wait(self):
        """Whether the finished runs can wait to be recorded with the next claim: only while
        threads are busy (see ``Outbox.runs_can_wait``)."""
        if self.quiet or self._held_exclusive or self.pool.in_flight() == 0:
            return False
        return self.outbox.runs_can_wait(self.polling_interval)

    def _thread_freed(self):
        """A pool thread finished a job: wake the loop when there is room to claim a batch, or
        when other workers of the process may be waiting for it to be idle (exclusive jobs)."""
        self.budget.stalled = False
        if EXCLUSIVE.holding():
            EXCLUSIVE.wake_all()
        elif self._second_loop is not None and self._main_claiming and self._room_to_claim():
            self._second_wake.set()  # the main loop waits for its statement: claim alongside it
        elif self.quiet or self._room_to_claim() or self.pool.in_flight() == 0:
            self.wake()

    def _record_and_claim(self, limit):
        finished = self.outbox.take_runs()
        try:
            recorded, jobs = running.end_and_claim(
                self.using,
                finished,
                self.process.pk,
                self.settings.preserve_finished_jobs,
                self.queues,
                limit,
                self.settings.use_skip_locked,
                buffer=self.rollups,
            )
        except (OperationalError, InterfaceError):
            # The connection or a deadlock: the batch is recorded once the poll is retried.
            self.outbox.put_back_runs(finished)
            if limit and not self._connection_usable():
                self._claims_in_doubt = True  # a deadlock rolled back; a lost reply may not have
            raise
        except DatabaseError:
            # Something in the batch the database refuses: record each job on its own, so that
            # one job's outcome cannot hold back the others', then let the poll be retried.
            self._record_one_by_one(finished)
            raise
        self._warn_unrecorded(finished, recorded)
        return jobs

    def _connection_usable(self):
        connection = connections[self.using]
        try:
            return connection.connection is not None and connection.is_usable()
        except Exception:
            return False

    def _release_claims_in_doubt(self):
        """Once this worker holds no job (none running, waiting, held or to record), put back
        every claim still in its process's name: a claim whose reply was lost, which no thread
        knows of. Until then nothing is claimed, so none of them can be one it knows. True once
        done."""
        if self.pool.in_flight() or self._reserved or not self.outbox.empty() or self._held_exclusive:
            return False
        released = running.release(ClaimedExecution.objects.using(self.using).filter(process_id=self.process.pk))
        if released:
            logger.warning("%s: %d job(s) claimed as the connection failed go back to ready", self.name, released)
        self._claims_in_doubt = False
        return True

    def _record_one_by_one(self, finished):
        for run in finished:
            try:
                recorded = running.end(
                    [run], self.process.pk, self.settings.preserve_finished_jobs, self.using, self.rollups
                )
            except Exception:
                logger.exception("%s: could not record the outcome of job #%s", self.name, run.job.pk)
            else:
                self._warn_unrecorded([run], recorded)

    def _flush_finished(self):
        """Record what is left of the finished jobs, then their rollups, before the process
        deregisters."""
        try:
            self._retrying(lambda: self._record_and_claim(0), patience=DEREGISTER_PATIENCE)
        except Exception:
            # Their claims stay, and deregistering puts the jobs back in line.
            logger.exception("%s: could not record the jobs that finished last", self.name)
        try:
            self._retrying(lambda: self.rollups.write(self.using, everything=True), patience=DEREGISTER_PATIENCE)
        except Exception:
            logger.exception("%s: could not write the rollups of the jobs that finished last", self.name)

    def _warn_unrecorded(self, finished, recorded):
        if len(recorded) == len(finished):
            return
        recorded_ids = {run.job.pk for run in recorded}
        for run in finished:
            if run.job.pk not in recorded_ids:
                logger.warning(
                    "%s: job #%s was released while it ran; its outcome is not recorded", self.name, run.job.pk
                )

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

    def stop(self, timeout=None):
        super().stop(timeout)
        self._second_wake.set()
        if timeout == 0 and self.pool is not None:
            self.pool.stop_waiting()  # a shutdown already waiting for running jobs gives up now

    def shutdown(self):
        if self._listener is not None:
            self._listener.stop()
        if self._second_loop is not None:
            self.stopping.set()  # also when the loop ended otherwise (a failed registration)
            self._second_wake.set()
            # Its statement in flight ends (it then claims nothing more), unless the database
            # hangs: deregistering puts back whatever it claimed after.
            self._second_loop.join(DEREGISTER_PATIENCE)
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
        self.outbox.add_releases([job])
        self.wake()

    def _release_stale_claims(self):
        """Give back the claims of jobs claimed ahead that waited too long for a thread."""
        now = time.monotonic()
        if now >= self._next_stale_check:
            self._next_stale_check = now + CLAIM_AHEAD_MAX_WAIT / 2
            stale = self.pool.cancel_waiting(older_than=CLAIM_AHEAD_MAX_WAIT)
            if stale:
                self.budget.stalled = True  # else the claims released would be taken straight back
            self.outbox.add_releases(stale)
        self._release_claims()

    def _release_claims(self):
        """Put the outbox's jobs to release back to ready; kept for the next poll on failure."""
        jobs = self.outbox.take_releases()
        if not jobs:
            return
        claims = ClaimedExecution.objects.using(self.using).filter(
            process_id=self.process.pk, job_id__in=[job.pk for job in jobs]
        )
        try:
            running.release(claims)
        except Exception:
            self.outbox.put_back_releases(jobs)  # tried again with the next poll
            raise

    def _release_unstarted(self):
        """Hand back the jobs claimed ahead that no thread has started: they go back to ready at
        once, for other workers, instead of waiting for the running ones to end."""
        self.outbox.add_releases(self.pool.cancel_waiting())
        try:
            self._retrying(self._release_claims, patience=DEREGISTER_PATIENCE)
        except Exception:
            # Their claims stay, and deregistering puts the jobs back in line.
            logger.exception("%s: could not release the jobs claimed ahead", self.name)

    def _perform(self, job):
        try:
            hygiene.ping_before_job()
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
        with tracing.running(job.class_name, job.queue_name, job.executions, job.pk, job.arguments) as traced:
            with progress.running(job, self.using, stopping=self.interrupting):
                instance, outcome = execution.run_stored(job, self.quebec)
            if left_open := hygiene.reset_after_job():
                outcome = left_transaction_open(job, left_open, outcome)
            traced.ended(outcome)
        if instance is not None:
            job.exception_executions = instance.exception_executions
        execution.add_attempt(job, outcome, started_at, self.name)
        elapsed = time.monotonic() - started
        self.budget.ran(elapsed)
        run = outcomes.Run(job, outcome, elapsed, waited=outcomes.waited(job, started_at))
        if outcome.state == outcomes.FINISHED:
            # Recorded by the loop, batched with others and with the next claim.
            self.outbox.add_run(run)
            return
        recorded = self._retrying(
            lambda: running.end([run], self.process.pk, self.settings.preserve_finished_jobs, self.using, self.rollups),
            patience=RECORD_PATIENCE,
        )
        self._warn_unrecorded([run], recorded)


def left_transaction_open(job, aliases, outcome):
    """The outcome of a run that left a transaction open: failed, whatever the job returned or
    raised (its error is kept as the cause), since what it wrote in that transaction is gone."""
    names = ", ".join(repr(alias) for alias in aliases)
    error = TransactionLeftOpenError(
        f"{job.class_name} left a transaction open on database connection {names}; the worker "
        "rolled it back, and with it what the job wrote in it (commit or roll back before returning)"
    )
    error.__cause__ = outcome.error
    return outcomes.Outcome(outcomes.FAILED, error=error)
