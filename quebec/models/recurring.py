"""Recurring tasks and the runs the scheduler enqueued, one row per run time."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from quebec.db.connection import write_transaction
from quebec.models.jobs import Job
from quebec.routing import QuebecManager
from quebec.schedule import parse


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

    objects = QuebecManager.from_queryset(RecurringTaskQuerySet)()

    class Meta:
        db_table = "quebec_recurring_tasks"
        verbose_name = _("recurring task")
        verbose_name_plural = _("recurring tasks")

    def __str__(self):
        return self.key

    @property
    def parsed_schedule(self):
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

    objects = QuebecManager()

    class Meta:
        db_table = "quebec_recurring_executions"
        constraints = [models.UniqueConstraint(fields=["task_key", "run_at"], name="quebec_recurring_run_once")]

    def __str__(self):
        return f"{self.task_key} at {self.run_at}"
