"""The admin pages of what runs the jobs: queues (and their pauses), recurring tasks, processes."""

from django.contrib import admin, messages
from django.db.models import OuterRef, Prefetch, Subquery
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from quebec import models
from quebec.dashboard import databases, lists, stats, times, views
from quebec.dashboard.model_admin import QuebecModelAdmin
from quebec.schedule import ScheduleError


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
    list_display = (
        "key",
        "short_description",
        "schedule",
        "in_words",
        "target",
        "queue",
        "next_run_at",
        "last_run_at",
        "last_status_label",
        "paused",
    )
    search_fields = ("key", "class_name", "command", "description")
    ordering = ("key",)
    actions = ("run_now", "pause", "resume")

    def get_queryset(self, request):
        latest = models.RecurringExecution.objects.filter(task_key=OuterRef("key")).order_by("-run_at")
        last_status = models.Job.objects.with_status().filter(pk=OuterRef("last_job_id")).values("status")[:1]
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_run_at=Subquery(latest.values("run_at")[:1]), last_job_id=Subquery(latest.values("job_id")[:1])
            )
            .annotate(last_status=Subquery(last_status))
        )

    @admin.display(description=_("description"))
    def short_description(self, obj):
        return Truncator(obj.description).chars(80) or "-"

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
            return times.time_tag(obj.next_run())
        except ScheduleError as error:
            return _("invalid schedule: %(error)s") % {"error": error}

    @admin.display(description=_("last run"), ordering="last_run_at")
    def last_run_at(self, obj):
        return times.time_tag(obj.last_run_at)

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
                self.message_user(
                    request, _("%(task)s: %(error)s") % {"task": task.key, "error": error}, messages.ERROR
                )
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
    list_display = (
        "name",
        "kind",
        "host",
        "queues",
        "threads",
        "running_now",
        "details",
        "last_heartbeat_at_time",
        "alive",
        "supervisor",
    )
    list_filter = ("kind",)
    list_select_related = ("supervisor",)
    search_fields = ("name", "hostname")
    ordering = ("kind", "name")
    last_heartbeat_at_time = times.column("last_heartbeat_at", _("last heartbeat"))
    running_shown = 5  # jobs listed per process; the rest are counted

    def get_queryset(self, request):
        # What each process of the page runs now: its claims, one query for the whole page.
        claims = models.ClaimedExecution.objects.select_related("job").only(
            "created_at", "process_id", "job__class_name", "job__queue_name"
        )
        running = Prefetch("claimed_executions", queryset=claims.order_by("created_at", "pk"), to_attr="running")
        return super().get_queryset(request).prefetch_related(running)

    @admin.display(description=_("running now"))
    def running_now(self, obj):
        claims = getattr(obj, "running", [])
        if not claims:
            return "-"
        items = format_html_join(
            "",
            "<li>{} {} {}</li>",
            (
                (
                    format_html(
                        '<a href="{}">#{}</a>', databases.reverse("admin:quebec_job_change", args=[c.pk]), c.pk
                    ),
                    c.job.class_name,
                    format_html(_("since {}"), times.time_tag(c.created_at)),
                )
                for c in claims[: self.running_shown]
            ),
        )
        more = len(claims) - self.running_shown
        if more > 0:
            items += format_html("<li>{}</li>", _("and %(count)d more") % {"count": more})
        return format_html('<ul class="quebec-running">{}</ul>', items)

    @admin.display(description=_("host"), ordering="hostname")
    def host(self, obj):
        return _("%(host)s, pid %(pid)s") % {"host": obj.hostname, "pid": obj.pid}

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


@admin.register(models.JobStat)
class JobStatAdmin(QuebecModelAdmin):
    """The charts page: throughput, failures and run times from the rollups."""

    tab = "charts"
    live_rows = False  # drawn on the server from the rollups; the page is reloaded to refresh

    def changelist_view(self, request, extra_context=None):
        return views.charts_page(request, self)
