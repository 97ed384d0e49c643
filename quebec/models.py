"""Quebec's tables, after Solid Queue: a permanent ``Job`` row plus one small table per state.

A job waiting to run has exactly one execution row (ready, scheduled, claimed, blocked or
failed) keyed by its id; a finished job has none. Workers poll only the small ready table, whose
index carries everything the claim query reads, so keeping millions of finished jobs costs the
claim nothing. Only the tables live here: every change of a job's state is a transition in
``quebec.lifecycle``, and the statements behind it are in ``quebec.db``.
"""

import os
import socket
import uuid
from datetime import timedelta

from django.db import IntegrityError, models, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from quebec.db.connection import write_transaction

class JobQuerySet(models.QuerySet):
    def finished(self):
        return self.filter(finished_at__isnull=False)

    def with_status(self):
        """Annotate ``status`` from the execution table that holds each job."""
        cases = [
            models.When(discarded_at__isnull=False, then=models.Value("discarded")),
            models.When(finished_at__isnull=False, then=models.Value("finished")),
            *(
                models.When(Exists(model.objects.filter(job=OuterRef("pk"))), then=models.Value(name))
                for name, model in EXECUTION_STATES.items()
            ),
        ]
        return self.annotate(status=models.Case(*cases, default=None, output_field=models.CharField()))

    def clear_finished(self, before, batch_size=500):
        """Delete up to ``batch_size`` jobs finished before ``before``; returns how many."""
        ids = list(self.finished().filter(finished_at__lt=before).values_list("pk", flat=True)[:batch_size])
        return self.filter(pk__in=ids).delete()[0] if ids else 0


class Job(models.Model):
    """The permanent record of one enqueued job."""

    queue_name = models.CharField(max_length=255, verbose_name=_("queue name"))
    class_name = models.CharField(max_length=255, verbose_name=_("class name"))
    arguments = models.JSONField(default=dict, verbose_name=_("arguments"))
    priority = models.IntegerField(default=0, verbose_name=_("priority"))
    active_job_id = models.UUIDField(default=uuid.uuid4, verbose_name=_("active job id"))
    executions = models.PositiveIntegerField(default=0, verbose_name=_("executions"))
    # attempts per retry strategy
    exception_executions = models.JSONField(default=dict, blank=True, verbose_name=_("exception executions"))
    # One entry per run: when, on which process, how it ended, and its error if any.
    attempts = models.JSONField(default=list, blank=True, verbose_name=_("attempts"))
    # What ``perform`` returned, when it is JSON; kept as long as the job row is.
    return_value = models.JSONField(null=True, blank=True, verbose_name=_("return value"))
    concurrency_key = models.CharField(max_length=255, null=True, blank=True, verbose_name=_("concurrency key"))
    scheduled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("scheduled at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    discarded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("discarded at"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(default=timezone.now, verbose_name=_("updated at"))

    objects = JobQuerySet.as_manager()

    class Meta:
        db_table = "quebec_jobs"
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        indexes = [
            models.Index(fields=["active_job_id"], name="quebec_jobs_active_job_id"),
            models.Index(fields=["class_name"], name="quebec_jobs_class_name"),
            models.Index(fields=["finished_at"], name="quebec_jobs_finished_at"),
            models.Index(fields=["queue_name", "finished_at"], name="quebec_jobs_for_filtering"),
        ]

    def __str__(self):
        return f"{self.class_name} #{self.pk}"


class Execution(models.Model):
    """A job's current state; the row's primary key is the job's id."""

    # DO_NOTHING: a job is deleted only once no execution holds it, and the database's foreign
    # key refuses anything else. It also lets Django delete jobs without visiting these tables.
    job = models.OneToOneField(
        Job, on_delete=models.DO_NOTHING, primary_key=True, related_name="+", verbose_name=_("job")
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    class Meta:
        abstract = True

    def __str__(self):
        return f"{type(self).__name__} for job #{self.job_id}"



class ReadyExecutionQuerySet(models.QuerySet):
    def for_queues(self, selector):
        """Rows matching one queue selector: ``"*"``, an exact name, or ``"prefix*"``."""
        if selector == "*":
            return self
        if selector.endswith("*"):
            return self.filter(queue_name__startswith=selector[:-1])
        return self.filter(queue_name=selector)

    def not_paused(self):
        return self.exclude(queue_name__in=Pause.objects.values("queue_name"))


class ReadyExecution(Execution):
    queue_name = models.CharField(max_length=255, verbose_name=_("queue name"))
    priority = models.IntegerField(default=0, verbose_name=_("priority"))

    objects = ReadyExecutionQuerySet.as_manager()

    class Meta:
        db_table = "quebec_ready_executions"
        verbose_name = _("ready execution")
        verbose_name_plural = _("ready executions")
        indexes = [
            models.Index(fields=["priority", "job"], name="quebec_ready_poll_all"),
            models.Index(fields=["queue_name", "priority", "job"], name="quebec_ready_poll_by_queue"),
        ]


class ScheduledExecutionQuerySet(models.QuerySet):
    def due(self, now=None):
        return self.filter(scheduled_at__lte=now or timezone.now())



class ScheduledExecution(Execution):
    queue_name = models.CharField(max_length=255, verbose_name=_("queue name"))
    priority = models.IntegerField(default=0, verbose_name=_("priority"))
    scheduled_at = models.DateTimeField(verbose_name=_("scheduled at"))
    # why it waits, when not just its schedule
    reason = models.CharField(max_length=255, blank=True, verbose_name=_("reason"))

    objects = ScheduledExecutionQuerySet.as_manager()

    class Meta:
        db_table = "quebec_scheduled_executions"
        verbose_name = _("scheduled execution")
        verbose_name_plural = _("scheduled executions")
        indexes = [
            models.Index(fields=["scheduled_at", "priority", "job"], name="quebec_scheduled_dispatch"),
        ]


class ClaimedExecution(Execution):
    """A job a worker process has taken; it runs, or waits for a free thread, in that process."""

    # No index on process: this table holds only the jobs running right now, so finding a
    # process's claims is a cheap scan, and with only the primary key to choose from MySQL
    # never locks a claim through a second index (which deadlocked finish against release).
    process = models.ForeignKey(
        "Process",
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="claimed_executions",
        verbose_name=_("process"),
    )

    class Meta:
        db_table = "quebec_claimed_executions"
        verbose_name = _("claimed execution")
        verbose_name_plural = _("claimed executions")


class BlockedExecution(Execution):
    """A job waiting for a free slot of its concurrency key."""

    queue_name = models.CharField(max_length=255, verbose_name=_("queue name"))
    priority = models.IntegerField(default=0, verbose_name=_("priority"))
    concurrency_key = models.CharField(max_length=255, verbose_name=_("concurrency key"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))

    class Meta:
        db_table = "quebec_blocked_executions"
        verbose_name = _("blocked execution")
        verbose_name_plural = _("blocked executions")
        indexes = [
            models.Index(fields=["concurrency_key", "priority", "job"], name="quebec_blocked_release"),
            models.Index(fields=["expires_at", "concurrency_key"], name="quebec_blocked_maintenance"),
        ]


class FailedExecutionQuerySet(models.QuerySet):
    def matching(self, class_name=None, queue_name=None, failed_after=None, failed_before=None, error=None):
        """Failed jobs filtered by class, queue, time of failure and text of the error."""
        failed = self
        if class_name:
            failed = failed.filter(job__class_name=class_name)
        if queue_name:
            failed = failed.filter(job__queue_name=queue_name)
        if failed_after:
            failed = failed.filter(created_at__gte=failed_after)
        if failed_before:
            failed = failed.filter(created_at__lt=failed_before)
        if error:
            failed = failed.filter(models.Q(exception_class__icontains=error) | models.Q(message__icontains=error))
        return failed

    # The documented way to act on failed jobs from code. The transitions live in
    # ``quebec.lifecycle``, which imports these tables, hence the import at call time.

    def retry_all(self, batch_size=500):
        """Put these failed jobs back in line as ready; returns how many."""
        from quebec.lifecycle.queueing import retry

        return retry(self, batch_size)

    def discard_all(self, batch_size=500):
        """Mark these failed jobs discarded; returns how many."""
        from quebec.lifecycle.queueing import discard

        return discard(self, batch_size)



class FailedExecution(Execution):
    """A job whose last run raised; it stays here until retried or discarded."""

    exception_class = models.CharField(max_length=255, verbose_name=_("exception class"))
    message = models.TextField(blank=True, verbose_name=_("message"))
    backtrace = models.TextField(blank=True, verbose_name=_("backtrace"))
    attempt = models.PositiveIntegerField(default=0, verbose_name=_("attempt"))

    objects = FailedExecutionQuerySet.as_manager()

    class Meta:
        db_table = "quebec_failed_executions"
        verbose_name = _("failed execution")
        verbose_name_plural = _("failed executions")

    def retry(self):
        """Put this job back in line as ready; False if it is no longer failed."""
        return FailedExecution.objects.using(self._state.db).filter(pk=self.pk).retry_all() == 1

    def discard(self):
        """Mark this job discarded; False if it is no longer failed."""
        return FailedExecution.objects.using(self._state.db).filter(pk=self.pk).discard_all() == 1




EXECUTION_STATES = {
    "failed": FailedExecution,
    "claimed": ClaimedExecution,
    "ready": ReadyExecution,
    "scheduled": ScheduledExecution,
    "blocked": BlockedExecution,
}


class ProcessQuerySet(models.QuerySet):
    def register(self, kind, name, metadata=None, supervisor=None):
        now = timezone.now()
        return self.create(
            kind=kind,
            name=name,
            pid=os.getpid(),
            hostname=socket.gethostname(),
            supervisor=supervisor,
            metadata=metadata or {},
            last_heartbeat_at=now,
            created_at=now,
        )


class Process(models.Model):
    """A running worker, dispatcher, scheduler or supervisor, kept alive by heartbeats."""

    kind = models.CharField(max_length=32, verbose_name=_("kind"))
    name = models.CharField(max_length=255, unique=True, verbose_name=_("name"))
    pid = models.IntegerField(verbose_name=_("pid"))
    hostname = models.CharField(max_length=255, blank=True, verbose_name=_("hostname"))
    supervisor = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children", verbose_name=_("supervisor")
    )
    metadata = models.JSONField(default=dict, blank=True, verbose_name=_("metadata"))
    last_heartbeat_at = models.DateTimeField(verbose_name=_("last heartbeat at"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    objects = ProcessQuerySet.as_manager()

    class Meta:
        db_table = "quebec_processes"
        verbose_name = _("process")
        verbose_name_plural = _("processes")
        indexes = [models.Index(fields=["last_heartbeat_at"], name="quebec_processes_heartbeat")]

    def __str__(self):
        return f"{self.kind} {self.name}"

    def heartbeat(self, **metadata):
        """Record that the process is alive; False if its row is gone (it was pruned)."""
        now = timezone.now()
        if metadata:
            self.metadata = {**self.metadata, **metadata}
        updated = Process.objects.using(self._state.db).filter(pk=self.pk).update(
            last_heartbeat_at=now, metadata=self.metadata
        )
        self.last_heartbeat_at = now
        return updated == 1


class Pause(models.Model):
    """A paused queue: workers skip it until the row is removed."""

    queue_name = models.CharField(max_length=255, unique=True, verbose_name=_("queue name"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    class Meta:
        db_table = "quebec_pauses"
        verbose_name = _("pause")
        verbose_name_plural = _("pauses")

    def __str__(self):
        return self.queue_name

    @classmethod
    def pause(cls, queue_name, using="default"):
        cls.objects.using(using).get_or_create(queue_name=queue_name)

    @classmethod
    def resume(cls, queue_name, using="default"):
        cls.objects.using(using).filter(queue_name=queue_name).delete()


class SemaphoreQuerySet(models.QuerySet):
    def wait(self, key, limit, duration):
        """Take one of ``limit`` slots of ``key``; True when taken, False when all are held."""
        now = timezone.now()
        fields = {"value": F("value") - 1, "updated_at": now, "expires_at": _expiry(now, duration)}
        # The guard (value > 0) and the decrement are one statement: two processes can never
        # both take the last slot.
        if self.filter(key=key, value__gt=0).update(**fields):
            return True
        if self.filter(key=key).exists():
            return False
        try:
            with transaction.atomic(using=self.db):  # a savepoint: losing the race to create is fine
                self.create(key=key, value=limit - 1, expires_at=fields["expires_at"])
            return True
        except IntegrityError:
            # Another transaction created the row this instant, taking a slot. Updating it now
            # would deadlock on MySQL against the other losers of the race (each holds a shared
            # lock from its failed insert), so count the key as full: a blocked job is let in
            # when a holder finishes, and a ready row is claimed on the next poll.
            return False

    def ensure(self, key, limit):
        """Create ``key``'s row with all ``limit`` slots free if it does not exist (call outside
        transactions, so that racing creators cannot deadlock)."""
        try:
            with write_transaction(self.db):
                self.get_or_create(key=key, defaults={"value": limit, "expires_at": _expiry(timezone.now(), None)})
        except IntegrityError:
            pass

    def force(self, key, limit, duration):
        """Take a slot of ``key`` whether or not one is free (an operator's override)."""
        now = timezone.now()
        taken = self.filter(key=key).update(value=F("value") - 1, updated_at=now, expires_at=_expiry(now, duration))
        if not taken:
            self.create(key=key, value=limit - 1, expires_at=_expiry(now, duration))

    def signal(self, key, limit, duration):
        """Give back a slot of ``key``, never above ``limit``."""
        now = timezone.now()
        self.filter(key=key, value__lt=limit).update(value=F("value") + 1, updated_at=now,
                                                     expires_at=_expiry(now, duration))

    def full(self, keys):
        return set(self.filter(key__in=keys, value__lte=0).values_list("key", flat=True))

    def expired(self):
        return self.filter(expires_at__lt=timezone.now())


def _expiry(now, duration):
    # Queue semaphores have no TTL: pruning dead processes gives their slots back.
    return now + timedelta(seconds=duration) if duration is not None else now + timedelta(days=3650)


class Semaphore(models.Model):
    """Free slots of one concurrency key; changed only by guarded atomic updates."""

    key = models.CharField(max_length=255, unique=True)
    value = models.IntegerField(default=1)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = SemaphoreQuerySet.as_manager()

    class Meta:
        db_table = "quebec_semaphores"
        indexes = [models.Index(fields=["expires_at"], name="quebec_semaphores_expiry")]

    def __str__(self):
        return self.key


class RateLimitStartQuerySet(models.QuerySet):
    def admit(self, bucket, max_starts, window, now, lock_key):
        """Record a start in ``bucket`` if its window (seconds) has room and return None; else
        return when the oldest counted start leaves the window. ``lock_key`` names the semaphore
        row that serialises the bucket's starters."""
        window = timedelta(seconds=window)
        lock = Semaphore.objects.using(self.db).filter(key=lock_key)
        if not lock.exists():
            # Created outside the transaction below: concurrent inserts of one unique key can
            # deadlock on MySQL, and a lost race here is harmless.
            Semaphore.objects.using(self.db).ensure(lock_key, 0)
        with write_transaction(self.db):
            # One lock row per bucket serialises its starters: two workers cannot both see the
            # last free place in the window.
            lock.select_for_update().exists()
            recent = self.filter(bucket=bucket)
            recent.filter(started_at__lt=now - window).delete()
            starts = list(recent.order_by("started_at").values_list("started_at", flat=True))
            if len(starts) < max_starts:
                self.create(bucket=bucket, started_at=now)
                return None
        return starts[len(starts) - max_starts] + window + timedelta(milliseconds=1)


class RateLimitStart(models.Model):
    """When a rate-limited job started, kept for as long as its window lasts."""

    bucket = models.CharField(max_length=255)
    started_at = models.DateTimeField()

    objects = RateLimitStartQuerySet.as_manager()

    class Meta:
        db_table = "quebec_rate_limit_starts"
        indexes = [models.Index(fields=["bucket", "started_at"], name="quebec_rate_limit_window")]


class RecurringTaskQuerySet(models.QuerySet):
    def active(self):
        return self.filter(paused_at__isnull=True)

    def sync_static(self, tasks):
        """Make the static tasks match ``tasks`` (key -> field values): add, change, remove."""
        with write_transaction(self.db):
            self.filter(static=True).exclude(key__in=list(tasks)).delete()
            for key, fields in tasks.items():
                task, created = self.get_or_create(key=key, defaults={**fields, "static": True})
                changed = {name: value for name, value in fields.items() if getattr(task, name) != value}
                if not created and (changed or not task.static):
                    self.filter(pk=task.pk).update(**changed, static=True, updated_at=timezone.now())


class RecurringTask(models.Model):
    """A task the scheduler enqueues on a schedule: from configuration (static) or from code."""

    key = models.CharField(max_length=255, unique=True, verbose_name=_("key"))
    schedule = models.CharField(max_length=255, verbose_name=_("schedule"))
    # dotted path of a job class
    class_name = models.CharField(max_length=255, blank=True, verbose_name=_("class name"))
    command = models.CharField(max_length=2048, blank=True, verbose_name=_("command"))  # dotted path of a callable
    arguments = models.JSONField(default=dict, blank=True, verbose_name=_("arguments"))
    # blank: the job class's own
    queue_name = models.CharField(max_length=255, blank=True, verbose_name=_("queue name"))
    priority = models.IntegerField(null=True, blank=True, verbose_name=_("priority"))  # null: the job class's own
    description = models.TextField(blank=True, verbose_name=_("description"))
    catch_up = models.BooleanField(default=False, verbose_name=_("catch up"))
    static = models.BooleanField(default=True, verbose_name=_("static"))
    paused_at = models.DateTimeField(null=True, blank=True, verbose_name=_("paused at"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(default=timezone.now, verbose_name=_("updated at"))

    objects = RecurringTaskQuerySet.as_manager()

    class Meta:
        db_table = "quebec_recurring_tasks"
        verbose_name = _("recurring task")
        verbose_name_plural = _("recurring tasks")

    def __str__(self):
        return self.key

    @property
    def parsed_schedule(self):
        from quebec.schedule import parse

        return parse(self.schedule)

    def next_run(self, after=None):
        return self.parsed_schedule.next_after(after or timezone.now())

    def last_execution(self):
        """The latest enqueued run, with its job's status as ``status``, or None."""
        executions = RecurringExecution.objects.using(self._state.db).filter(task_key=self.key)
        latest = executions.order_by("-run_at").first()
        if latest is not None:
            job = Job.objects.using(self._state.db).with_status().filter(pk=latest.job_id).first()
            latest.status = job.status if job else ("finished" if latest.job_id else None)
        return latest

    def enqueue(self, run_at):
        """Enqueue the run at ``run_at`` unless another scheduler did; returns the execution or None."""
        from quebec.recurring import enqueue_run

        return enqueue_run(self, run_at)

    def run_now(self):
        """Enqueue a run at once, outside the schedule."""
        return self.enqueue(timezone.now())

    def pause(self):
        """Skip this task's runs until ``resume()``."""
        RecurringTask.objects.using(self._state.db).filter(pk=self.pk).update(paused_at=timezone.now())
        self.refresh_from_db(fields=["paused_at"])

    def resume(self):
        RecurringTask.objects.using(self._state.db).filter(pk=self.pk).update(paused_at=None, updated_at=timezone.now())
        self.refresh_from_db(fields=["paused_at"])


class RecurringExecution(models.Model):
    """One enqueued run of a recurring task; unique per run time, so it is enqueued once."""

    task_key = models.CharField(max_length=255)
    run_at = models.DateTimeField()
    # No database constraint: clearing finished jobs must not have to visit this table.
    job = models.OneToOneField(Job, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "quebec_recurring_executions"
        constraints = [models.UniqueConstraint(fields=["task_key", "run_at"], name="quebec_recurring_run_once")]

    def __str__(self):
        return f"{self.task_key} at {self.run_at}"


__all__ = [
    "Job",
    "ReadyExecution",
    "ScheduledExecution",
    "ClaimedExecution",
    "BlockedExecution",
    "FailedExecution",
    "Process",
    "Pause",
    "Semaphore",
    "RecurringTask",
    "RecurringExecution",
    "RateLimitStart",
]
