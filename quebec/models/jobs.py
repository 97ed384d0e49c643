"""Jobs and the tables of their states: a permanent ``Job`` row plus one small table per state.

A job waiting to run has exactly one execution row (ready, scheduled, claimed, blocked or
failed) keyed by its id; a finished job has none. Workers poll only the small ready table, whose
index carries everything the claim query reads, so keeping millions of finished jobs costs the
claim nothing. A paused queue is a row of ``Pause``.
"""

import uuid

from django.db import models
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from quebec import queue_selectors
from quebec.lifecycle.status import JobStatus
from quebec.routing import QuebecManager


class JobQuerySet(models.QuerySet):
    def finished(self):
        return self.filter(finished_at__isnull=False)

    def with_status(self):
        """Annotate ``status`` from the execution table that holds each job."""
        cases = [
            models.When(discarded_at__isnull=False, then=models.Value(JobStatus.DISCARDED.value)),
            models.When(finished_at__isnull=False, then=models.Value(JobStatus.FINISHED.value)),
            *(
                models.When(Exists(model.objects.filter(job=OuterRef("pk"))), then=models.Value(status.value))
                for status, model in EXECUTION_STATES.items()
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
    # The key a unique job was enqueued with; whether it still holds it is a row of UniqueKey.
    unique_key = models.CharField(max_length=255, null=True, blank=True, verbose_name=_("unique key"))
    scheduled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("scheduled at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    discarded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("discarded at"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(default=timezone.now, verbose_name=_("updated at"))
    # Written only by jobs that report progress or use steps (quebec.lifecycle.progress), at
    # most about once a second: {"done", "total", "message", "at"}.
    progress = models.JSONField(null=True, blank=True, verbose_name=_("progress"))
    # A continuable job's steps: {"completed": [names], "current": [name, cursor] | None,
    # "resumptions": n}; what a resumed run starts from.
    continuation = models.JSONField(null=True, blank=True, verbose_name=_("continuation"))
    # Set by quebec.cancel(); a running job reads it only when it checkpoints or reports progress.
    cancel_requested_at = models.DateTimeField(null=True, blank=True, verbose_name=_("cancel requested at"))
    cancel_requested_by = models.CharField(
        max_length=255, blank=True, default="", verbose_name=_("cancel requested by")
    )
    # The batch this job is a member of (quebec.lifecycle.batches). No database constraint: a
    # member's insert takes no lock on the batch's row, which its counters keep busy.
    batch = models.ForeignKey(
        "Batch",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="jobs",
        verbose_name=_("batch"),
    )

    objects = QuebecManager.from_queryset(JobQuerySet)()

    class Meta:
        db_table = "quebec_jobs"
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        permissions = [("cancel_job", _("Can cancel jobs"))]
        indexes = [
            models.Index(fields=["active_job_id"], name="quebec_jobs_active_job_id"),
            models.Index(fields=["class_name"], name="quebec_jobs_class_name"),
            # On PostgreSQL and SQLite this index and quebec_jobs_batch hold only their rows
            # (finished jobs, batch members): migration 0009 makes them partial in the database
            # and leaves them whole here, for MySQL, which has no partial indexes (Django would
            # warn there at every migrate, and make none).
            models.Index(fields=["finished_at"], name="quebec_jobs_finished_at"),
            models.Index(fields=["queue_name", "finished_at"], name="quebec_jobs_for_filtering"),
            # Partial: jobs without a unique key (most) add nothing to it. MySQL has no partial
            # indexes; there a filter by key reads the table.
            models.Index(
                fields=["unique_key"], name="quebec_jobs_unique_key", condition=models.Q(unique_key__isnull=False)
            ),
            # A batch's members, and those not finished yet (the dispatcher's check of counters).
            models.Index(fields=["batch", "finished_at"], name="quebec_jobs_batch"),
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

    objects = QuebecManager()

    class Meta:
        abstract = True

    def __str__(self):
        return f"{type(self).__name__} for job #{self.job_id}"


class ReadyExecutionQuerySet(models.QuerySet):
    def for_queues(self, selector):
        """Rows matching one queue selector: ``"*"``, an exact name, or ``"prefix*"``."""
        return self.filter(queue_selectors.q(selector))

    def not_paused(self):
        return self.exclude(queue_name__in=Pause.objects.values("queue_name"))


class ReadyExecution(Execution):
    queue_name = models.CharField(max_length=255, verbose_name=_("queue name"))
    priority = models.IntegerField(default=0, verbose_name=_("priority"))

    objects = QuebecManager.from_queryset(ReadyExecutionQuerySet)()

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

    objects = QuebecManager.from_queryset(ScheduledExecutionQuerySet)()

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
        """Failed jobs filtered by class (a dotted path, or the bare class name), queue, time of
        failure and text of the error."""
        failed = self
        if class_name:
            failed = failed.filter(
                models.Q(job__class_name=class_name) | models.Q(job__class_name__endswith=f".{class_name}")
            )
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

    objects = QuebecManager.from_queryset(FailedExecutionQuerySet)()

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


# The state each execution table holds, in the order ``with_status`` looks for a job.
EXECUTION_STATES = {
    JobStatus.FAILED: FailedExecution,
    JobStatus.CLAIMED: ClaimedExecution,
    JobStatus.READY: ReadyExecution,
    JobStatus.SCHEDULED: ScheduledExecution,
    JobStatus.BLOCKED: BlockedExecution,
}


class Pause(models.Model):
    """A paused queue: workers skip it until the row is removed."""

    queue_name = models.CharField(max_length=255, unique=True, verbose_name=_("queue name"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    objects = QuebecManager()

    class Meta:
        db_table = "quebec_pauses"
        verbose_name = _("pause")
        verbose_name_plural = _("pauses")

    def __str__(self):
        return self.queue_name

    # Without ``using``, the alias of ``quebec.routing.use()`` (the dashboard's chosen database),
    # else the router's.
    @classmethod
    def pause(cls, queue_name, using=None):
        cls.objects.db_manager(using).get_or_create(queue_name=queue_name)

    @classmethod
    def resume(cls, queue_name, using=None):
        cls.objects.db_manager(using).filter(queue_name=queue_name).delete()
