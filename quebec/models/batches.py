"""Batches: a group of jobs whose callbacks fire once every member has ended.

The counters are kept by ``quebec.lifecycle.batches`` inside the transactions that enqueue and
end the members; ``finished_at`` is set, and the due callbacks are enqueued, in the transaction
that ends the last one. The dispatcher repairs counters that disagree with the members.
"""

import contextlib

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from quebec.routing import QuebecManager


class BatchStatus(models.TextChoices):
    PENDING = "pending", _("pending")  # being built: its block has not been left yet
    RUNNING = "running", _("running")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")


# The callbacks a batch may have, in the order they are enqueued when it finishes.
CALLBACKS = ("on_finish", "on_success", "on_failure")


class BatchQuerySet(models.QuerySet):
    def unfinished(self):
        return self.filter(finished_at__isnull=True)

    def clear_finished(self, before, batch_size=500):
        """Delete up to ``batch_size`` batches finished before ``before`` with no member left
        (a failed batch stays while its failed jobs do); returns how many."""
        from quebec.models.jobs import Job

        members = Job.objects.filter(batch=models.OuterRef("pk"))
        ids = list(
            self.filter(finished_at__lt=before)
            .exclude(models.Exists(members))
            .values_list("pk", flat=True)[:batch_size]
        )
        return self.filter(pk__in=ids).delete()[0] if ids else 0


class Batch(models.Model):
    """A group of jobs enqueued together, with callbacks for when they have all ended."""

    description = models.CharField(max_length=255, blank=True, default="", verbose_name=_("description"))
    metadata = models.JSONField(default=dict, blank=True, verbose_name=_("metadata"))
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.PENDING, verbose_name=_("status")
    )
    total_jobs = models.IntegerField(default=0, verbose_name=_("total jobs"))
    # Members that have not ended yet (a retried member stays pending until its last attempt).
    pending_jobs = models.IntegerField(default=0, verbose_name=_("pending jobs"))
    # Members that ended without failing (finished, discarded or rescued).
    completed_jobs = models.IntegerField(default=0, verbose_name=_("completed jobs"))
    failed_jobs = models.IntegerField(default=0, verbose_name=_("failed jobs"))
    # Each callback as a serialised job: {"class_name", "queue_name", "priority", "arguments",
    # "wait"}, or null.
    on_finish = models.JSONField(null=True, blank=True, verbose_name=_("on finish"))
    on_success = models.JSONField(null=True, blank=True, verbose_name=_("on success"))
    on_failure = models.JSONField(null=True, blank=True, verbose_name=_("on failure"))
    # The callbacks enqueued when the batch finished, {"on_finish": job id, ...}: written in the
    # same transaction as ``finished_at``, which is what makes each fire once.
    fired = models.JSONField(default=dict, blank=True, verbose_name=_("callbacks fired"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(default=timezone.now, verbose_name=_("updated at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    objects = QuebecManager.from_queryset(BatchQuerySet)()

    class Meta:
        db_table = "quebec_batches"
        verbose_name = _("batch")
        verbose_name_plural = _("batches")
        indexes = [
            models.Index(fields=["status", "created_at"], name="quebec_batches_by_status"),
            models.Index(fields=["finished_at"], name="quebec_batches_finished_at"),
        ]

    def __str__(self):
        return f"Batch #{self.pk}" + (f" ({self.description})" if self.description else "")

    @property
    def progress_percentage(self) -> float:
        """How many members have ended, as a percentage (100 for a finished or empty batch)."""
        if self.finished_at is not None or self.total_jobs <= 0:
            return 100.0 if self.status != BatchStatus.PENDING else 0.0
        ended = self.completed_jobs + self.failed_jobs
        return round(100.0 * min(ended, self.total_jobs) / self.total_jobs, 1)

    @property
    def finished(self):
        return self.finished_at is not None

    def refresh(self) -> "Batch":
        """Re-read the batch's row; returns self."""
        self.refresh_from_db()
        return self

    def enqueue(self) -> "contextlib.AbstractContextManager[Batch]":
        """A context manager: jobs enqueued inside join this batch. Raises
        ``quebec.BatchAlreadyFinished`` once the batch has finished."""
        from quebec.batches import adding

        return adding(self)

    def callbacks(self):
        """{name: serialised job} of the callbacks this batch has."""
        return {name: getattr(self, name) for name in CALLBACKS if getattr(self, name)}
