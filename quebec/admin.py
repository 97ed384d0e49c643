"""Quebec in the Django admin: the overview (the app index), jobs by state, job details,
queues, recurring tasks and processes.

Pages only read. Every change goes through a model method (retry, discard, run now, cancel,
pause, resume), as a CSRF-checked POST, for users holding the model's change permission; the
admin's own add, edit and delete forms stay off.
"""

import hashlib
import json

from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import path, re_path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from quebec import models
from quebec.dashboard import bulk, lists, stats, views
from quebec.lifecycle import queueing
from quebec.schedule import ScheduleError


class QuebecModelAdmin(admin.ModelAdmin):
    """Read-only lists in Quebec's look, with capped counts and the Quebec tabs."""

    change_list_template = "quebec/change_list.html"
    paginator = lists.CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would COUNT every filter choice
    list_per_page = 50
    tab = None
    list_title = None
    live_rows = True  # the list's rows refresh in place (see rows_view)
    # Under the list: "count" picks the plural, "shown" is the count as shown ("10,000+").
    count_text = ngettext_lazy("%(shown)s row", "%(shown)s rows", "count")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_act_permission(self, request):
        """Actions (retry, pause, run now...) need the model's change permission."""
        return request.user.has_perm(f"quebec.change_{self.opts.model_name}")

    def get_changelist(self, request, **kwargs):
        return lists.CappedChangeList

    def get_tab(self, request):
        return self.tab

    def get_list_title(self, request):
        return self.list_title

    @property
    def rows_url_name(self):
        return f"{self.opts.app_label}_{self.opts.model_name}_rows"

    def get_urls(self):
        if not self.live_rows:
            return super().get_urls()
        return [path("rows/", self.admin_site.admin_view(self.rows_view), name=self.rows_url_name), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        context = {**views.page_context(request, self.get_tab(request)), **(extra_context or {})}
        if self.get_list_title(request):
            context.setdefault("title", self.get_list_title(request))
        return self._changelist(request, context)

    @method_decorator(never_cache)
    @method_decorator(require_safe)
    def rows_view(self, request):
        """The list's rows, actions bar and page links for the same filters, search and page, as
        JSON with a digest: the refresh script swaps them in when the digest changes."""
        response = self._changelist(request, {})
        rows = getattr(response, "context_data", {}).get("quebec_rows")
        if rows is None:  # the admin redirects filters it cannot apply
            return HttpResponseBadRequest(str(_("These filters do not apply to this list.")))
        return JsonResponse({"html": rows, "digest": response.context_data["quebec_rows_digest"]})

    def get_preserved_filters(self, request):
        # Rows rendered for the refresh link to job pages with the page's filters, as the page does.
        match = request.resolver_match
        if match and match.url_name == self.rows_url_name:
            return request.GET.urlencode()
        return super().get_preserved_filters(request)

    def _changelist(self, request, context):
        response = super().changelist_view(request, context)
        data = getattr(response, "context_data", None) or {}
        cl = data.get("cl")
        if cl is None:  # a redirect or a confirmation page
            return response
        if getattr(cl, "capped", False):
            data["selection_note_all"] = _("All %(total)s selected") % {"total": cl.result_count_display}
        if self.live_rows:
            rows = render_to_string("quebec/includes/change_list_rows.html", data, request)
            data["quebec_rows"] = rows
            data["quebec_rows_digest"] = hashlib.sha256(rows.encode()).hexdigest()[:20]
            query = request.GET.urlencode()
            url = reverse(f"admin:{self.rows_url_name}")
            data["quebec_rows_url"] = f"{url}?{query}" if query else url
        return response


class JobListAdmin(QuebecModelAdmin):
    """Lists of jobs: search by id, active job id or argument text; filter by class and queue."""

    list_display_links = None
    count_text = ngettext_lazy("%(shown)s job", "%(shown)s jobs", "count")
    job_fields = {"class_name": "job__class_name", "queue_name": "job__queue_name"}
    uuid_field = "job__active_job_id"
    text_fields = ("job__arguments",)
    search_fields = ("pk",)  # turns the search box on; get_search_results does the searching
    search_help_text = _('A job id, an active job id (UUID), or text in the arguments ("quoted" to search digits).')

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return lists.search_jobs(queryset, search_term, uuid_field=self.uuid_field, text_fields=self.text_fields), False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # A state row is the job's: its page is the job's page.
        return redirect("admin:quebec_job_change", object_id)

    @admin.display(description=_("job"), ordering="pk")
    def job_link(self, obj):
        return format_html('<a href="{}">#{}</a>', reverse("admin:quebec_job_change", args=[obj.pk]), obj.pk)

    @admin.display(description=_("class"), ordering="job__class_name")
    def job_class(self, obj):
        return obj.job.class_name

    @admin.display(description=_("queue"), ordering="job__queue_name")
    def job_queue(self, obj):
        return obj.job.queue_name

    @admin.display(description=_("arguments"))
    def arguments_preview(self, obj):
        job = obj if isinstance(obj, models.Job) else obj.job
        return Truncator(json.dumps(job.arguments, ensure_ascii=False)).chars(80)


FILTERS = (lists.ClassNameFilter, lists.QueueFilter)


@admin.register(models.Job)
class JobAdmin(JobListAdmin):
    list_display = ("job_link", "class_name", "queue_name", "priority", "status_label", "executions",
                    "created_at", "finished_at", "arguments_preview")
    list_filter = (lists.StatusFilter, *FILTERS, "finished_at", "created_at")
    job_fields = {"class_name": "class_name", "queue_name": "queue_name"}
    uuid_field = "active_job_id"
    text_fields = ("arguments",)
    ordering = ("-pk",)

    def get_queryset(self, request):
        return super().get_queryset(request).with_status()

    def get_tab(self, request):
        return "finished" if request.GET.get("status") == "finished" else None

    def get_list_title(self, request):
        status = request.GET.get("status")
        return _("%(status)s jobs") % {"status": lists.STATUS_LABELS[status]} if status in lists.STATUS_LABELS else _("Jobs")

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("live/", wrap(views.live), name="quebec_live"),
            path("throughput/", wrap(views.throughput), name="quebec_throughput"),
            re_path(rf"^(?P<object_id>\d+)/(?P<action>{'|'.join(views.JOB_ACTIONS)})/$", wrap(views.job_action),
                    name="quebec_job_action"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return views.job_detail(request, self, object_id)

    @admin.display(description=_("status"))
    def status_label(self, obj):
        return lists.STATUS_LABELS.get(obj.status, obj.status or "?")


@admin.register(models.ReadyExecution)
class ReadyExecutionAdmin(JobListAdmin):
    tab = "ready"
    list_title = _("Ready jobs")
    list_display = ("job_link", "job_class", "queue_name", "priority", "created_at", "arguments_preview")
    list_filter = (*FILTERS, "created_at")
    list_select_related = ("job",)
    job_fields = {"class_name": "job__class_name", "queue_name": "queue_name"}
    ordering = ("priority", "pk")


@admin.register(models.ScheduledExecution)
class ScheduledExecutionAdmin(JobListAdmin):
    tab = "scheduled"
    list_title = _("Scheduled jobs")
    list_display = ("job_link", "job_class", "queue_name", "priority", "scheduled_at", "arguments_preview")
    list_filter = (*FILTERS, "scheduled_at")
    list_select_related = ("job",)
    job_fields = {"class_name": "job__class_name", "queue_name": "queue_name"}
    ordering = ("scheduled_at", "pk")
    actions = ("run_now", "cancel")

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
    list_display = ("job_link", "job_class", "job_queue", "process_name", "created_at", "arguments_preview")
    list_filter = (*FILTERS,)
    list_select_related = ("job", "process")
    ordering = ("created_at", "pk")

    @admin.display(description=_("process"))
    def process_name(self, obj):
        process = obj.process
        if process is None:
            return _("gone")
        return _("%(name)s (%(host)s, pid %(pid)s)") % {"name": process.name, "host": process.hostname, "pid": process.pid}


@admin.register(models.BlockedExecution)
class BlockedExecutionAdmin(JobListAdmin):
    tab = "blocked"
    list_title = _("Blocked jobs")
    list_display = ("job_link", "job_class", "queue_name", "concurrency_key", "expires_at", "created_at")
    list_filter = (*FILTERS,)
    list_select_related = ("job",)
    job_fields = {"class_name": "job__class_name", "queue_name": "queue_name"}
    ordering = ("concurrency_key", "priority", "pk")
    actions = ("unblock", "cancel")

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
    list_display = ("job_link", "job_class", "job_queue", "exception_class", "short_message", "attempt",
                    "failed_at")
    list_filter = (*FILTERS, "created_at")
    list_select_related = ("job",)
    text_fields = ("job__arguments", "exception_class", "message")
    search_help_text = _('A job id, an active job id (UUID), or text in the arguments or the error.')
    ordering = ("-created_at", "-pk")
    actions = ("retry", "discard")

    @admin.display(description=_("failed at"), ordering="created_at")
    def failed_at(self, obj):
        return obj.created_at

    @admin.display(description=_("message"))
    def short_message(self, obj):
        return Truncator(obj.message).chars(80)

    @admin.action(description=_("Retry selected failed jobs"), permissions=["act"])
    def retry(self, request, queryset):
        return bulk.confirm(self, request, queryset, queueing.retry, bulk.RETRY)

    @admin.action(description=_("Discard selected failed jobs"), permissions=["act"])
    def discard(self, request, queryset):
        return bulk.confirm(self, request, queryset, queueing.discard, bulk.DISCARD)


@admin.register(models.Pause)
class PauseAdmin(QuebecModelAdmin):
    """The queues page: every queue's size, latency and pause, with pause and resume."""

    tab = "queues"
    live_rows = False  # the queues page refreshes through the live endpoint's fragments

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("pause/", wrap(views.queue_action), {"action": "pause"}, name="quebec_queue_pause"),
            path("resume/", wrap(views.queue_action), {"action": "resume"}, name="quebec_queue_resume"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        return views.queues_page(request, self)


@admin.register(models.RecurringTask)
class RecurringTaskAdmin(QuebecModelAdmin):
    tab = "recurring"
    list_title = _("Recurring tasks")
    count_text = ngettext_lazy("%(shown)s recurring task", "%(shown)s recurring tasks", "count")
    list_display = ("key", "schedule", "in_words", "target", "queue", "next_run_at", "last_run_at",
                    "last_status_label", "paused")
    search_fields = ("key", "class_name", "command", "description")
    ordering = ("key",)
    actions = ("run_now", "pause", "resume")

    def get_queryset(self, request):
        latest = models.RecurringExecution.objects.filter(task_key=OuterRef("key")).order_by("-run_at")
        last_status = models.Job.objects.with_status().filter(pk=OuterRef("last_job_id")).values("status")[:1]
        return (
            super()
            .get_queryset(request)
            .annotate(last_run_at=Subquery(latest.values("run_at")[:1]), last_job_id=Subquery(latest.values("job_id")[:1]))
            .annotate(last_status=Subquery(last_status))
        )

    @admin.display(description=_("in words"))
    def in_words(self, obj):
        try:
            return obj.parsed_schedule.describe()
        except ScheduleError as error:
            return _("invalid schedule: %(error)s") % {"error": error}

    @admin.display(description=_("runs"))
    def target(self, obj):
        return obj.class_name or obj.command

    @admin.display(description=_("queue"))
    def queue(self, obj):
        return obj.queue_name or _("(the job's own)")

    @admin.display(description=_("next run"))
    def next_run_at(self, obj):
        if obj.paused_at:
            return _("paused")
        try:
            return obj.next_run()
        except ScheduleError as error:
            return _("invalid schedule: %(error)s") % {"error": error}

    @admin.display(description=_("last run"), ordering="last_run_at")
    def last_run_at(self, obj):
        return obj.last_run_at

    @admin.display(description=_("last run's status"))
    def last_status_label(self, obj):
        if obj.last_run_at is None:
            return "-"
        # A job row cleared after finishing leaves the run without a status: it finished.
        status = obj.last_status or ("finished" if obj.last_job_id else None)
        return lists.STATUS_LABELS.get(status, status or _("not enqueued"))

    @admin.display(description=_("paused"), boolean=True)
    def paused(self, obj):
        return obj.paused_at is not None

    @admin.action(description=_("Run selected tasks now"), permissions=["act"])
    def run_now(self, request, queryset):
        for task in queryset:
            try:
                task.run_now()
            except Exception as error:  # a task whose class is gone must not hide the others' runs
                self.message_user(request, _("%(task)s: %(error)s") % {"task": task.key, "error": error}, messages.ERROR)
            else:
                self.message_user(request, _("Enqueued a run of %(task)s.") % {"task": task.key}, messages.SUCCESS)

    @admin.action(description=_("Pause selected tasks"), permissions=["act"])
    def pause(self, request, queryset):
        for task in queryset:
            task.pause()
        self.message_user(request, _("Paused %(count)d task(s).") % {"count": len(queryset)}, messages.SUCCESS)

    @admin.action(description=_("Resume selected tasks"), permissions=["act"])
    def resume(self, request, queryset):
        for task in queryset:
            task.resume()
        self.message_user(request, _("Resumed %(count)d task(s).") % {"count": len(queryset)}, messages.SUCCESS)


@admin.register(models.Process)
class ProcessAdmin(QuebecModelAdmin):
    tab = "processes"
    list_title = _("Processes")
    count_text = ngettext_lazy("%(shown)s process", "%(shown)s processes", "count")
    list_display = ("name", "kind", "hostname", "pid", "queues", "threads", "details", "last_heartbeat_at", "alive",
                    "supervisor")
    list_filter = ("kind",)
    list_select_related = ("supervisor",)
    search_fields = ("name", "hostname")
    ordering = ("kind", "name")

    @admin.display(description=_("queues"))
    def queues(self, obj):
        return ", ".join(obj.metadata.get("queues", [])) or "-"

    @admin.display(description=_("threads"))
    def threads(self, obj):
        return obj.metadata.get("threads", "-")

    @admin.display(description=_("details"))
    def details(self, obj):
        """The rest of the metadata the process reports (RSS, quiet, polling interval...)."""
        rest = {key: value for key, value in obj.metadata.items() if key not in ("queues", "threads")}
        return ", ".join(f"{key}: {value}" for key, value in sorted(rest.items())) or "-"

    @admin.display(description=_("alive"), boolean=True)
    def alive(self, obj):
        return stats.is_alive(obj)

