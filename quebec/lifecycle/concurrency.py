"""The limits as lifecycle participants: concurrency keys and per-queue limits; and rate limits.

Concurrency keys and queue limits are semaphores: a row per key counting free slots, taken and
given back only by guarded single-statement updates. A due job whose key has no free slot waits
as a blocked execution; when a holder's run ends, its slot passes straight to the next job
blocked on the key, in the same transaction, or goes back to the semaphore if none waits.
"""

import collections
from datetime import timedelta

from django.utils import timezone

from quebec import conf
from quebec.concurrency import QUEUE_KEY, RATE_KEY, ConcurrencyConflict, Limit, seconds
from quebec.db import operations
from quebec.lifecycle.participants import Participant, register
from quebec.models import RateLimitStart, Semaphore
from quebec.registry import UnknownJobClass, find_job_class
from quebec.storable import check_key, nul_refused_by


def limit_for(job):
    """The concurrency limit of a job's class: the class a new job was built from, else the
    registered class of a stored one (defaults if the class is unknown here)."""
    job_class = getattr(job, "job_class", None)
    if job_class is None:
        try:
            job_class = find_job_class(job.class_name)
        except UnknownJobClass:
            return Limit()
    return Limit(
        limit=job_class.concurrency_limit or 1,
        duration=seconds(job_class.concurrency_duration),
        discard=job_class.concurrency_on_conflict == ConcurrencyConflict.Discard,
    )


def queue_limits():
    return conf.get().queue_concurrency


class ConcurrencyKeys(Participant):
    """A job with a concurrency key runs only while it holds one of its key's slots."""

    def concerns(self, jobs):
        return any(job.concurrency_key for job in jobs)

    def admit(self, placement, using):
        keyed = [job for job in placement.ready if job.concurrency_key]
        if not keyed:
            return
        semaphores = Semaphore.objects.using(using)
        # Slots are taken in key order, so two batches with the same keys cannot deadlock.
        for job in sorted(keyed, key=lambda job: job.concurrency_key):
            limit = limit_for(job)
            if not semaphores.wait(job.concurrency_key, limit.limit, limit.duration):
                if limit.discard:
                    placement.discard(job)
                else:
                    placement.block(job, placement.now + timedelta(seconds=limit.duration))

    def ended(self, jobs, using):
        """Give back each ended job's slot and let as many jobs blocked on its key in as now fit.

        The same as giving each slot back and then releasing blocked jobs one by one, in a few
        statements for the whole batch: the keys' semaphores are locked (in key order, so two
        batches cannot deadlock), the blocked jobs that fit are locked with SKIP LOCKED (one
        another process is moving is left to it) and moved to ready, and each semaphore is set
        to what is left.
        """
        ending = collections.Counter(job.concurrency_key for job in jobs if job.concurrency_key)
        if not ending:
            return
        limits = {job.concurrency_key: limit_for(job) for job in jobs if job.concurrency_key}
        ops = operations(using)
        now = timezone.now()
        missing = ops.pass_slots(
            [
                (key, count, limits[key].limit, now + timedelta(seconds=limits[key].duration))
                for key, count in sorted(ending.items())
            ],
            now,
        )
        if missing:
            _let_in_without_semaphore(missing, ending, limits, using, now)

    def withdrawn(self, jobs, using):
        """A ready job holds its key's slot, as a running one does."""
        self.ended(jobs, using)


def force_slots(jobs, using):
    """Take a slot of each job's key whether or not one is free (an operator's override)."""
    semaphores = Semaphore.objects.using(using)
    for job in sorted(jobs, key=lambda job: job.concurrency_key or ""):
        if job.concurrency_key:
            limit = limit_for(job)
            semaphores.force(job.concurrency_key, limit.limit, limit.duration)


def _let_in_without_semaphore(keys, ending, limits, using, now):
    """Keys whose semaphore expired meanwhile: each blocked job takes a slot the usual way,
    which creates the row again."""
    ops = operations(using)
    semaphores = Semaphore.objects.using(using)
    let_in = []
    for key in keys:
        for row in ops.lock_blocked([(key, ending[key])]):
            if not semaphores.wait(key, limits[key].limit, limits[key].duration):
                break
            let_in.append(row)
    ops.move_to_ready(let_in, now)


class QueueLimits(Participant):
    """At most ``queue_concurrency[queue]`` jobs of a queue are claimed at once."""

    def concerns(self, jobs):
        limits = queue_limits()
        return bool(limits) and any(job.queue_name in limits for job in jobs)

    def claim_gate(self, using):
        limits = queue_limits()
        return QueueGate(limits, using) if limits else None

    def ended(self, jobs, using):
        self._give_back([job.queue_name for job in jobs], using)

    def released(self, jobs, using):
        self._give_back([job.queue_name for job in jobs], using)

    def _give_back(self, queue_names, using):
        limits = queue_limits()
        semaphores = Semaphore.objects.using(using)
        for queue_name in sorted(queue_names):
            if queue_name in limits:
                semaphores.signal(QUEUE_KEY.format(queue_name), limits[queue_name], None)


class QueueGate:
    """Keeps a claim within the queues' limits: full queues are left out of the claim, so they
    cannot crowd out the others, and each claimed job takes a slot of its queue."""

    def __init__(self, limits, using):
        self.limits = limits
        self.semaphores = Semaphore.objects.using(using)

    def full_queues(self):
        keys = {QUEUE_KEY.format(queue): queue for queue in self.limits}
        return [keys[key] for key in self.semaphores.full(list(keys))]

    def __call__(self, rows):
        """The ids of the locked (job id, queue) rows whose queue had a free slot, in order."""
        # Queue slots are taken in queue order, so two claimers cannot deadlock on them.
        taken = {
            job_id
            for job_id, queue in sorted(rows, key=lambda row: row[1])
            if queue not in self.limits or self.semaphores.wait(QUEUE_KEY.format(queue), self.limits[queue], None)
        }
        return [job_id for job_id, _ in rows if job_id in taken]


def ensure_queue_semaphores(using):
    """Create the semaphore of each limited queue (outside transactions: racing creators of
    one key cannot then deadlock)."""
    for queue, limit in queue_limits().items():
        Semaphore.objects.using(using).ensure(QUEUE_KEY.format(queue), limit)


def rate_limit_delay(job, args, kwargs, using):
    """None when ``job`` may start now (its start is recorded); else (bucket, when the window has room)."""
    job_class = type(job)
    if not job_class.rate_limit_max:
        return None
    bucket = f"{job_class.__qualname__}/{job.rate_limit_key(*args, **kwargs)}"
    check_key("rate limit bucket", bucket, job_class.__qualname__, nul_refused_by(using))
    until = RateLimitStart.objects.using(using).admit(
        bucket,
        job_class.rate_limit_max,
        seconds(job_class.rate_limit_duration),
        timezone.now(),
        RATE_KEY.format(bucket),
    )
    return None if until is None else (bucket, until)


CONCURRENCY_KEYS = register(ConcurrencyKeys())
QUEUE_LIMITS = register(QueueLimits())
