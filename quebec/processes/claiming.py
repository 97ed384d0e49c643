"""What a worker's loop keeps between polls, each testable without threads: how many jobs it may
claim (``ClaimBudget``) and what it owes the database (``Outbox``: successful runs to record
with the next claim, claims to hand back)."""

import threading
import time

# Claiming ahead: with short jobs, a worker claims more jobs than it has idle threads, so that a
# claim (one round trip, one commit) moves a batch of jobs, not one or two. Per thread, it claims
# as many more as the thread runs in CLAIM_AHEAD_WAIT seconds at the average run time so far, up
# to ``worker_claim_ahead``, so a job claimed ahead usually waits about that long at most for a
# thread of this process. Jobs averaging longer than that are claimed only for idle threads, and
# so is everything while a queue has a concurrency limit (claims ahead would hold its slots).
CLAIM_AHEAD_WAIT = 0.05
# Finished jobs wait at most this long (or a polling interval, if shorter) to be recorded with
# the next claim.
FINISH_RECORD_DELAY = 0.1


class ClaimBudget:
    """How many jobs a worker with ``threads`` threads may claim now."""

    def __init__(self, threads, max_ahead_per_thread):
        self.threads = threads
        self.max_ahead_per_thread = max_ahead_per_thread
        self.average_run = None  # seconds, a moving average over the jobs this process ran
        self.stalled = False  # jobs claimed ahead waited too long; none more until a thread frees up

    def ran(self, seconds):
        """A job ran for ``seconds``."""
        average = self.average_run
        self.average_run = seconds if average is None else 0.8 * average + 0.2 * seconds

    def ahead(self, queues_limited=False):
        """How many jobs the process may hold beyond one per thread (see CLAIM_AHEAD_WAIT)."""
        if self.average_run is None or self.stalled or queues_limited:
            return 0
        per_thread = int(CLAIM_AHEAD_WAIT / max(self.average_run, 1e-6))
        return self.threads * min(per_thread, self.max_ahead_per_thread)

    def room(self, in_flight, queues_limited=False):
        """How many jobs to claim with ``in_flight`` held: 0 while the jobs claimed ahead leave
        room for less than a batch (claiming for each thread as it frees up would cost a round
        trip per job again)."""
        ahead = self.ahead(queues_limited)
        room = self.threads + ahead - in_flight
        return room if room >= (min(self.threads, ahead) or 1) else 0


class Outbox:
    """Successful runs whose end the loop records with its next claim, and claimed jobs that
    will not run here, whose claims go back to ready. Filled by pool threads, emptied by the loop.

    A thread adds its run before it counts as idle, so the loop that claims for that thread
    records the run first, and the process never holds more claims than threads plus claim-ahead.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._runs = []
        self._releases = []
        self.taken_at = 0.0  # time.monotonic() of the last look at the runs

    def add_run(self, run):
        with self._lock:
            self._runs.append(run)

    def take_runs(self):
        with self._lock:
            runs, self._runs = self._runs, []
        self.taken_at = time.monotonic()
        return runs

    def put_back_runs(self, runs):
        """Runs whose recording failed, first in line for the next attempt."""
        with self._lock:
            self._runs[:0] = runs

    def runs_can_wait(self, polling_interval):
        """Whether the runs can wait for the next claim: for up to FINISH_RECORD_DELAY (or a
        polling interval), as a finished job must soon look finished."""
        return time.monotonic() - self.taken_at < min(polling_interval, FINISH_RECORD_DELAY)

    def add_releases(self, jobs):
        with self._lock:
            self._releases += jobs

    def take_releases(self):
        with self._lock:
            jobs, self._releases = self._releases, []
        return jobs

    def put_back_releases(self, jobs):
        with self._lock:
            self._releases[:0] = jobs

    def empty(self):
        with self._lock:
            return not self._runs and not self._releases
