"""Quebec in the Django admin: the overview (the app index), jobs by state, job details,
batches, queues, recurring tasks and processes.

Pages only read. Every change goes through a lifecycle transition or a model method (retry,
discard, run now, cancel, pause, resume), as a CSRF-checked POST, for users holding the model's change permission; the
admin's own add, edit and delete forms stay off.
"""

from django.contrib import admin
from django.db.models import F, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Substr
from django.shortcuts import redirect
from django.urls import path, re_path
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy, pgettext_lazy

from quebec import models
from quebec.dashboard import batches, bulk, databases, durations, lists, previews, times, views
from quebec.dashboard import entry  # noqa: F401  (registers the admin index's one Quebec entry)
from quebec.dashboard import operations  # noqa: F401  (registers the queues, charts, recurring and processes pages)
from quebec.dashboard.model_admin import QuebecModelAdmin
from quebec.dashboard.progress import ProgressView
from quebec.lifecycle import queueing
from quebec.models.batches import CALLBACKS


class JobListAdmin(QuebecModelAdmin):
    """Lists of jobs: search by id, active job id or argument text; filter by class and queue."""

    list_display_links = None
    count_text = ngettext_lazy("%(shown)s job", "%(shown)s jobs", "count")
    job_fields = {"class_name": "job__class_name", "queue_name": "job__queue_name"}
    uuid_field = "job__active_job_id"
    text_fields = ("job__arguments",)
    search_fields = ("pk",)  # turns the search box on; get_search_results does the searching
    search_help_text = _('A job id, an active job id (UUID), or text in the arguments ("quoted" to search digits).')

    job_path = "job__"  # how the list's rows reach their job
    created_at_time = times.column("created_at", _("created at"))

    def get_queryset(self, request):
        # A list shows the start of each job's arguments, cut by the database: a page of jobs
        # with megabytes of arguments each never loads them.
        return previews.with_argument_previews(super().get_queryset(request), self.job_path)

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return lists.search_jobs(queryset, search_term, uuid_field=self.uuid_field, text_fields=self.text_fields), False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # A state row is the job's: its page is the job's page.
        return redirect("admin:quebec_job_change", object_id)

    @admin.display(description=_("job"), ordering="pk")
    def job_link(self, obj):
        return format_html('<a href="{}">#{}</a>', databases.reverse("admin:quebec_job_change", args=[obj.pk]), obj.pk)

    @admin.display(description=_("class"), ordering="job__class_name")
    def job_class(self, obj):
        return obj.job.class_name

    @admin.display(description=_("queue"), ordering="job__queue_name")
    def job_queue(self, obj):
        return obj.job.queue_name

    @admin.display(description=_("arguments"))
    def arguments_preview(self, obj):
        return previews.preview(obj.arguments_head)


FILTERS = (lists.ClassNameFilter, lists.QueueFilter)


@admin.register(models.Job)
class JobAdmin(JobListAdmin):
    list_display = (
        "job_link",
        "class_name",
        "queue_name",
        "priority",
        "status_label",
        "executions",
        "created_at_time",
        "finished_at_time",
        "run_time",
        "wait_time",
        "arguments_preview",
    )
    list_filter = (
        lists.StatusFilter,
        *FILTERS,
        lists.UniqueKeyFilter,
        lists.BatchFilter,
        "finished_at",
        "created_at",
    )
    job_fields = {"class_name": "class_name", "queue_name": "queue_name"}
    uuid_field = "active_job_id"
    text_fields = ("arguments",)
    ordering = ("-pk",)
    job_path = ""
    created_at_time = times.column("created_at", _("created at"))
    finished_at_time = times.column("finished_at", _("finished at"))
    run_time = durations.column("run_time", _("run time"))
    wait_time = durations.column("wait_time", _("wait time"))

    def get_queryset(self, request):
        return super().get_queryset(request).with_status().annotate(**durations.last_run("", "finished_at"))

    def get_tab(self, request):
        return "finished" if request.GET.get("status") == "finished" else None

    def get_list_title(self, request):
        status = request.GET.get("status")
        batch = request.GET.get("batch", "")
        if batch.isdigit():
            return _("Jobs of batch #%(id)s") % {"id": batch}
        return (
            _("%(status)s jobs") % {"status": lists.STATUS_LABELS[status]}
            if status in lists.STATUS_LABELS
            else _("Jobs")
        )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("live/", wrap(views.live), name="quebec_live"),
            path("throughput/", wrap(views.throughput), name="quebec_throughput"),
            path("<int:object_id>/arguments.json", wrap(self.arguments_view), name="quebec_job_arguments"),
            re_path(
                rf"^(?P<object_id>\d+)/(?P<action>{'|'.join(views.JOB_ACTIONS)})/$",
                wrap(views.job_action),
                name="quebec_job_action",
            ),
            *super().get_urls(),
        ]

    def get_object(self, request, object_id, from_field=None):
        # The job page shows the payload the lists leave out: load it with the job, in one query.
        if not str(object_id).isdigit() or int(object_id) > lists.MAX_ID:
            return None
        return models.Job.objects.with_status().filter(pk=object_id).first()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return views.job_detail(request, self, object_id)

    def arguments_view(self, request, object_id):
        return views.job_arguments(request, self, object_id)

    @admin.display(description=_("status"))
    def status_label(self, obj):
        return lists.STATUS_LABELS.get(obj.status, obj.status or "?")


@admin.register(models.ReadyExecution)
class ReadyExecutionAdmin(JobListAdmin):
    tab = "ready"
    list_title = _("Ready jobs")
    list_display = (
        "job_link",
        "job_class",
        "queue_name",
        "priority",
        "created_at_time",
        "waiting",
        "arguments_preview",
    )
    list_filter = (*FILTERS, "created_at")
    list_select_related = ("job",)
    job_fields = {"class_name": "job__class_name", "queue_name": "queue_name"}
    ordering = ("priority", "pk")
    waiting = durations.since("due", _("waiting for"), ordering="-due")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(due=durations.due("job__"))


@admin.register(models.ScheduledExecution)
class ScheduledExecutionAdmin(JobListAdmin):
    tab = "scheduled"
    list_title = _("Scheduled jobs")
    list_display = ("job_link", "job_class", "queue_name", "priority", "scheduled_at_time", "arguments_preview")
    list_filter = (*FILTERS, "scheduled_at")
    list_select_related = ("job",)
    job_fields = {"class_name": "job__class_name", "queue_name": "queue_name"}
    ordering = ("scheduled_at", "pk")
    actions = ("run_now", "cancel")
    scheduled_at_time = times.column("scheduled_at", _("scheduled at"))

    @admin.action(description=_("Run selected jobs now"), permissions=["act"])
    def run_now(self, request, queryset):
        return bulk.confirm(self, request, queryset, queueing.run_now, bulk.RUN_NOW)

    @admin.action(description=_("Cancel selected jobs"), permissions=["act"])
    def cancel(self, request, queryset):
        return bulk.confirm(self, request, queryset, queueing.discard, bulk.CANCEL)


@admin.register(models.ClaimedExecution)
class ClaimedExecutionAdmin(JobListAdmin):
    tab = "claimed"
    list_title = _("Jobs in progress")
    list_display = (
        "job_link",
        "job_class",
        "job_queue",
        "process_name",
        "created_at_time",
        "running_for",
        "wait_time",
        "job_progress",
        "arguments_preview",
    )
    list_filter = (*FILTERS,)
    list_select_related = ("job", "process")
    ordering = ("created_at", "pk")
    running_for = durations.since("created_at", _("running for"), ordering="-created_at")
    wait_time = durations.column("wait_time", _("wait time"))

    def get_queryset(self, request):
        waited = durations.between(durations.due("job__"), F("created_at"))
        return super().get_queryset(request).annotate(wait_time=waited)

    @admin.display(description=_("progress"))
    def job_progress(self, obj):
        reported = ProgressView.of(obj.job)
        if reported is None:
            return "-"
        if reported.percent is None:
            return str(reported.done)
        return format_html(
            '<progress max="100" value="{}">{}%</progress> {}%', reported.percent, reported.percent, reported.percent
        )

    @admin.display(description=_("process"))
    def process_name(self, obj):
        process = obj.process
        if process is None:
            return _("gone")
        return _("%(name)s (%(host)s, pid %(pid)s)") % {
            "name": process.name,
            "host": process.hostname,
            "pid": process.pid,
        }


@admin.register(models.BlockedExecution)
class BlockedExecutionAdmin(JobListAdmin):
    tab = "blocked"
    list_title = _("Blocked jobs")
    list_display = ("job_link", "job_class", "queue_name", "concurrency_key", "expires_at_time", "created_at_time")
    list_filter = (*FILTERS,)
    list_select_related = ("job",)
    job_fields = {"class_name": "job__class_name", "queue_name": "queue_name"}
    ordering = ("concurrency_key", "priority", "pk")
    actions = ("unblock", "cancel")
    expires_at_time = times.column("expires_at", _("expires at"))

    @admin.action(description=_("Unblock selected jobs (run over their limit)"), permissions=["act"])
    def unblock(self, request, queryset):
        return bulk.confirm(self, request, queryset, queueing.unblock, bulk.UNBLOCK)

    @admin.action(description=_("Cancel selected jobs"), permissions=["act"])
    def cancel(self, request, queryset):
        return bulk.confirm(self, request, queryset, queueing.discard, bulk.CANCEL_BLOCKED)


@admin.register(models.FailedExecution)
class FailedExecutionAdmin(JobListAdmin):
    tab = "failed"
    list_title = _("Failed jobs")
    list_display = (
        "job_link",
        "job_class",
        "job_queue",
        "exception_class",
        "short_message",
        "attempt",
        "failed_at",
        "run_time",
        "wait_time",
    )
    list_filter = (*FILTERS, "created_at")
    list_select_related = ("job",)
    text_fields = ("job__arguments", "exception_class", "message")
    search_help_text = _("A job id, an active job id (UUID), or text in the arguments or the error.")
    ordering = ("-created_at", "-pk")
    actions = ("retry", "discard")

    failed_at = times.column("created_at", _("failed at"))
    run_time = durations.column("run_time", _("run time"))
    wait_time = durations.column("wait_time", _("wait time"))

    def get_queryset(self, request):
        # Like the arguments, a message is cut by the database, and the backtrace stays there.
        head = Substr("message", 1, previews.PREVIEW_CHARS + 1)
        rows = super().get_queryset(request).defer("message", "backtrace").annotate(message_head=head)
        return rows.annotate(**durations.last_run("job__", "created_at"))

    @admin.display(description=_("message"))
    def short_message(self, obj):
        return Truncator(obj.message_head).chars(previews.PREVIEW_CHARS)

    @admin.action(description=_("Retry selected failed jobs"), permissions=["act"])
    def retry(self, request, queryset):
        return bulk.confirm(self, request, queryset, queueing.retry, bulk.RETRY)

    @admin.action(description=_("Discard selected failed jobs"), permissions=["act"])
    def discard(self, request, queryset):
        return bulk.confirm(self, request, queryset, queueing.discard, bulk.DISCARD)


@admin.register(models.Batch)
class BatchAdmin(QuebecModelAdmin):
    """Batches, newest first, with their progress; each links to its page, which links to its
    members. The list reads only counters: the database cuts the metadata, and of the callbacks
    reads only their class names, since both can carry anything they were given."""

    tab = "batches"
    list_title = _("Batches")
    count_text = ngettext_lazy("%(shown)s batch", "%(shown)s batches", "count")
    list_display = (
        "batch_link",
        "short_description",
        "status_label",
        "progress",
        "total",
        "pending",
        "completed",
        "failed",
        "callbacks_summary",
        "metadata_preview",
        "created_at",
        "finished_at",
    )
    list_display_links = None
    list_filter = (lists.BatchStatusFilter, "created_at", "finished_at")
    search_fields = ("pk",)  # turns the search box on; get_search_results does the searching
    search_help_text = _('A batch id, or text in the description ("quoted" to search digits).')
    ordering = ("-pk",)

    def get_queryset(self, request):
        metadata_head = Substr(Cast("metadata", TextField()), 1, previews.PREVIEW_CHARS + 1)
        class_names = {f"{name}_class": KT(f"{name}__class_name") for name in CALLBACKS}
        queryset = super().get_queryset(request).defer("metadata", *CALLBACKS)
        return queryset.annotate(metadata_head=metadata_head, **class_names)

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return lists.search_batches(queryset, search_term), False

    def get_object(self, request, object_id, from_field=None):
        if not str(object_id).isdigit() or int(object_id) > lists.MAX_ID:
            return None
        return models.Batch.objects.filter(pk=object_id).first()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return views.batch_detail(request, self, object_id)

    @admin.display(description=_("batch"), ordering="pk")
    def batch_link(self, obj):
        url = databases.reverse("admin:quebec_batch_change", args=[obj.pk])
        return format_html('<a href="{}">#{}</a>', url, obj.pk)

    @admin.display(description=_("description"))
    def short_description(self, obj):
        return Truncator(obj.description).chars(previews.PREVIEW_CHARS) or "-"

    @admin.display(description=_("status"), ordering="status")
    def status_label(self, obj):
        return batches.STATUS_LABELS.get(obj.status, obj.status)

    @admin.display(description=_("progress"))
    def progress(self, obj):
        return batches.progress_bar(obj, _("Progress of batch #%(id)s") % {"id": obj.pk})

    @admin.display(description=pgettext_lazy("batch members", "total"), ordering="total_jobs")
    def total(self, obj):
        return obj.total_jobs

    @admin.display(description=pgettext_lazy("batch members", "pending"), ordering="pending_jobs")
    def pending(self, obj):
        return obj.pending_jobs

    @admin.display(description=pgettext_lazy("batch members", "completed"), ordering="completed_jobs")
    def completed(self, obj):
        return obj.completed_jobs

    @admin.display(description=pgettext_lazy("batch members", "failed"), ordering="failed_jobs")
    def failed(self, obj):
        return obj.failed_jobs

    @admin.display(description=_("callbacks"))
    def callbacks_summary(self, obj):
        class_names = {name: getattr(obj, f"{name}_class") for name in CALLBACKS}
        shown = batches.callbacks(obj, class_names)
        return "; ".join(f"{each.label}: {each.class_name} ({each.state_label})" for each in shown) or "-"

    @admin.display(description=_("metadata"))
    def metadata_preview(self, obj):
        text = previews.preview(obj.metadata_head)
        return "-" if text in ("", "{}") else text
