"""The dashboard's pages and actions; ``quebec.admin`` mounts them in the admin site.

Every action is a POST (the admin site adds CSRF protection and the staff login), checks the
model's change permission, and goes through a model method.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse as plain_reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from quebec.dashboard import health as health_check
from quebec import routing
from quebec.dashboard import batches, charts, databases, jobs, previews, stats, svg
from quebec.dashboard import progress as job_progress
from quebec.dashboard.databases import reverse
from quebec.dashboard.lists import MAX_ID, STATUS_LABELS
from quebec.lifecycle import cancelling, queueing
from quebec.models import Batch, BlockedExecution, FailedExecution, Job, Pause, ScheduledExecution

# (key, label, model name for permissions, admin URL name, query string)
TABS = (
    ("overview", gettext_lazy("Overview"), None, "admin:app_list", ""),
    ("charts", gettext_lazy("Charts"), "jobstat", "admin:quebec_jobstat_changelist", ""),
    ("queues", gettext_lazy("Queues"), "pause", "admin:quebec_pause_changelist", ""),
    ("ready", gettext_lazy("Ready"), "readyexecution", "admin:quebec_readyexecution_changelist", ""),
    ("scheduled", gettext_lazy("Scheduled"), "scheduledexecution", "admin:quebec_scheduledexecution_changelist", ""),
    ("claimed", gettext_lazy("In progress"), "claimedexecution", "admin:quebec_claimedexecution_changelist", ""),
    ("blocked", gettext_lazy("Blocked"), "blockedexecution", "admin:quebec_blockedexecution_changelist", ""),
    ("failed", gettext_lazy("Failed"), "failedexecution", "admin:quebec_failedexecution_changelist", ""),
    ("finished", gettext_lazy("Finished"), "job", "admin:quebec_job_changelist", "?status=finished"),
    ("batches", gettext_lazy("Batches"), "batch", "admin:quebec_batch_changelist", ""),
    ("recurring", gettext_lazy("Recurring"), "recurringtask", "admin:quebec_recurringtask_changelist", ""),
    ("processes", gettext_lazy("Processes"), "process", "admin:quebec_process_changelist", ""),
)
FRAGMENTS = ("queues", "failures", "workers", "job_progress", "batch_progress")
STATE_KEYS = (*stats.WAITING_STATES, "finished")  # the tabs that show a count of jobs


def can_view(user, model_name):
    return user.has_perm(f"quebec.view_{model_name}") or user.has_perm(f"quebec.change_{model_name}")


def tabs(request, active, counts):
    """The Quebec navigation bar: the pages this user may see, with live counts."""
    shown = []
    for key, label, model_name, url_name, query in TABS:
        if model_name and not can_view(request.user, model_name):
            continue
        url = databases.link(
            plain_reverse(url_name, kwargs={"app_label": "quebec"} if key == "overview" else None) + query
        )
        hint = _("last 24 hours") if key == "finished" else None
        shown.append(
            {"key": key, "label": label, "url": url, "active": key == active, "count": counts.get(key), "hint": hint}
        )
    return shown


def visible_states(user):
    """The job states whose counts ``user`` may see: those of the state tables it may view."""
    return {key for key, _label, model_name, _url, _query in TABS if key in STATE_KEYS and can_view(user, model_name)}


def page_context(request, active):
    """What every Quebec page shows around its content: the tabs and the live-refresh URL."""
    counts = stats.state_counts(visible_states(request.user))
    counts = {state: stats.format_count(count) for state, count in counts.items()}
    return {
        "quebec_tabs": tabs(request, active, counts),
        "quebec_counts": counts,
        "quebec_live_url": reverse("admin:quebec_live"),
        "quebec_databases": databases.choices(),
        "quebec_database": routing.current(),
        "quebec_database_param": databases.PARAM,
    }


def overview_context(request):
    """The overview (the Quebec app index): counts, queues, latest failures, live workers."""
    return {
        **page_context(request, "overview"),
        **_fragment_context(request),
        "throughput_url": reverse("admin:quebec_throughput"),
        "charts_url": reverse("admin:quebec_jobstat_changelist") if can_view(request.user, "jobstat") else None,
        "throughput_ranges": [("hour", _("Last hour")), ("day", _("Last day")), ("week", _("Last week"))],
    }


def _fragment_context(request):
    user = request.user
    return {
        "queues": stats.queues() if can_view(user, "pause") else None,
        "failures": stats.latest_failures() if can_view(user, "failedexecution") else None,
        "workers": stats.live_processes() if can_view(user, "process") else None,
        "can_pause": user.has_perm("quebec.change_pause"),
        "next_url": reverse("admin:app_list", kwargs={"app_label": "quebec"}),
    }


@never_cache
def live(request):
    """Counts, and the requested fragments of the page re-rendered, for the refresh script."""
    if not request.user.has_module_perms("quebec"):
        raise PermissionDenied
    context = page_context(request, None)
    names = [name for name in request.GET.get("fragments", "").split(",") if name in FRAGMENTS]
    fragments = {}
    if names:
        context.update(_fragment_context(request))
        if "job_progress" in names:
            names.remove("job_progress")
            fragments.update(_job_progress_fragment(request))
        if "batch_progress" in names:
            names.remove("batch_progress")
            fragments.update(_batch_progress_fragment(request))
        fragments.update({name: render_to_string(f"quebec/includes/{name}.html", context, request) for name in names})
    return JsonResponse({"counts": context["quebec_counts"], "fragments": fragments})


def _job_progress_fragment(request):
    """The progress, steps and cancellation of the job ``?job=`` names, for its page."""
    if not can_view(request.user, "job"):
        return {}
    job_id = request.GET.get("job", "")
    job = Job.objects.with_status().filter(pk=int(job_id)).first() if job_id.isdigit() else None
    if job is None:
        return {}
    return {"job_progress": render_to_string("quebec/includes/job_progress.html", job_progress.describe(job), request)}


def _batch_progress_fragment(request):
    """The status, progress bar, counts and callbacks of the batch ``?batch=`` names, for its page."""
    if not can_view(request.user, "batch"):
        return {}
    batch_id = request.GET.get("batch", "")
    batch = Batch.objects.filter(pk=int(batch_id)).first() if batch_id.isdigit() and int(batch_id) <= MAX_ID else None
    if batch is None:
        return {}
    html = render_to_string("quebec/includes/batch_progress.html", batches.describe(batch), request)
    return {"batch_progress": html}


@never_cache
def throughput(request):
    """Runs finished and failed per minute, hour or day, from the rollups, for the overview's chart."""
    if not can_view(request.user, "job"):
        raise PermissionDenied
    range_name = request.GET.get("range", "hour")
    if range_name not in charts.RANGES:
        return HttpResponseBadRequest(f"range must be one of {', '.join(charts.RANGES)}")
    buckets = [
        {"start": bucket["start"].isoformat(), "processed": bucket["finished"], "failed": bucket["failures"]}
        for bucket in charts.buckets(range_name)
    ]
    return JsonResponse({"range": range_name, "unit": charts.RANGES[range_name].unit, "buckets": buckets})


# action: (model, transition, message when done, message when the job left that state meanwhile)
JOB_ACTIONS = {
    "retry": (FailedExecution, queueing.retry, gettext_lazy("Job #%(id)s is back in line."), gettext_lazy("failed")),
    "discard": (FailedExecution, queueing.discard, gettext_lazy("Job #%(id)s was discarded."), gettext_lazy("failed")),
    "run_now": (
        ScheduledExecution,
        queueing.run_now,
        gettext_lazy("Job #%(id)s is due now."),
        gettext_lazy("scheduled"),
    ),
    "cancel": (
        ScheduledExecution,
        queueing.discard,
        gettext_lazy("Job #%(id)s was cancelled."),
        gettext_lazy("scheduled"),
    ),
    "unblock": (
        BlockedExecution,
        queueing.unblock,
        gettext_lazy("Job #%(id)s is ready, over its key's limit."),
        gettext_lazy("blocked"),
    ),
    "cancel_blocked": (
        BlockedExecution,
        queueing.discard,
        gettext_lazy("Job #%(id)s was cancelled."),
        gettext_lazy("blocked"),
    ),
    "cancel_job": (Job, cancelling.cancel, gettext_lazy("Job #%(id)s was cancelled."), ""),  # see cancel_job
}


# Cancelling has a permission of its own: it may stop a running job, which no other action does.
CANCEL_PERMISSION = "quebec.cancel_job"
CANCELLABLE = ("ready", "scheduled", "blocked", "claimed")


def change_permission(model):
    return f"quebec.change_{model._meta.model_name}"


def action_permission(action):
    return CANCEL_PERMISSION if action == "cancel_job" else change_permission(JOB_ACTIONS[action][0])


@require_POST
def cancel_job(request, object_id):
    """Cancel a job: discarded if it has not started, asked to stop at its next checkpoint if it runs."""
    if not request.user.has_perm(CANCEL_PERMISSION):
        raise PermissionDenied
    result = cancelling.cancel(int(object_id), by=request.user.get_username() or "dashboard")
    if result == cancelling.DISCARDED:
        messages.success(request, _("Job #%(id)s was cancelled.") % {"id": object_id})
    elif result == cancelling.REQUESTED:
        messages.success(
            request,
            _("Job #%(id)s is running: it stops at its next checkpoint or progress report.") % {"id": object_id},
        )
    else:
        messages.warning(request, _("Job #%(id)s has ended; nothing was done.") % {"id": object_id})
    return redirect("admin:quebec_job_change", object_id)


@require_POST
def job_action(request, object_id, action):
    """Retry or discard a failed job, run a scheduled one now, unblock a blocked one, or cancel it."""
    if action == "cancel_job":
        return cancel_job(request, object_id)
    model, transition, done, state = JOB_ACTIONS[action]
    if not request.user.has_perm(change_permission(model)):
        raise PermissionDenied
    if transition(model.objects.filter(pk=object_id)) == 1:
        messages.success(request, done % {"id": object_id})
    else:
        messages.warning(
            request, _("Job #%(id)s is no longer %(state)s; nothing was done.") % {"id": object_id, "state": state}
        )
    return redirect("admin:quebec_job_change", object_id)


@require_POST
def queue_action(request, action):
    """Pause or resume one queue (``queue``) or every queue (``all``)."""
    if not request.user.has_perm("quebec.change_pause"):
        raise PermissionDenied
    if request.POST.get("all"):
        names = [queue.name for queue in stats.queues()]
    else:
        names = [request.POST.get("queue", "").strip()]
        if not names[0] or len(names[0]) > 255:
            return HttpResponseBadRequest(_("Name the queue to pause or resume."))
    for name in names:
        (Pause.pause if action == "pause" else Pause.resume)(name)
    done = _("Paused %(queues)s.") if action == "pause" else _("Resumed %(queues)s.")
    messages.success(request, done % {"queues": ", ".join(names) or _("no queue")})
    return redirect(_next_url(request, reverse("admin:quebec_pause_changelist")))


def _next_url(request, fallback):
    url = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return url if url and safe else fallback


@never_cache
def health(request):
    """The health report as JSON: HTTP 200 when healthy, 503 when not (see quebec.dashboard.health).

    Anyone gets ``{"healthy": ...}``; the details (queue names, sizes, processes, problems) go to
    staff sessions and to callers sending ``Authorization: Bearer <QUEBEC monitoring_token>``.
    """
    max_latency = request.GET.get("max_latency")
    try:
        max_latency = float(max_latency) if max_latency else None
    except ValueError:
        return HttpResponseBadRequest("max_latency must be a number of seconds")
    report = health_check.check(max_latency)
    payload = report.payload if health_check.may_see_details(request) else {"healthy": report.healthy}
    response = JsonResponse(payload, status=200 if report.healthy else 503)
    patch_vary_headers(response, ("Authorization", "Cookie"))
    return response


def queues_page(request, model_admin):
    """Every queue with its size, latency and pause, and the buttons to pause or resume."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    context = {
        **model_admin.admin_site.each_context(request),
        **page_context(request, "queues"),
        **_fragment_context(request),
        "title": _("Queues"),
        "opts": model_admin.opts,
        "next_url": request.get_full_path(),
    }
    return TemplateResponse(request, "quebec/queues.html", context)


def charts_page(request, model_admin):
    """Throughput, failures and run times from the rollups, for all jobs or one queue or class."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    context = {
        **model_admin.admin_site.each_context(request),
        **page_context(request, "charts"),
        **chart_context(request.GET),
        "title": _("Charts"),
        "opts": model_admin.opts,
    }
    return TemplateResponse(request, "quebec/charts.html", context)


def chart_context(query, now=None):
    """The charts page's figures for the range, queue and class that ``query`` names."""
    now = now or timezone.now()
    range_name = query.get("range") if query.get("range") in charts.RANGES else "day"
    unit = charts.RANGES[range_name].unit
    chosen = {key: query.get(key, "")[:255] for key in ("queue_name", "class_name")}
    by_queue = charts.groups(range_name, "queue_name", now)
    by_class = charts.groups(range_name, "class_name", now)
    return {
        "range": range_name,
        "ranges": [(key, span.label, _chart_link(key, chosen)) for key, span in charts.RANGES.items()],
        "chosen": chosen,
        "all_link": _chart_link(range_name, {}),
        "throughput": svg.stacked_bars(charts.buckets(range_name, now, **chosen), unit),
        "by_queue": _with_sparklines(range_name, "queue_name", by_queue, unit, now),
        "by_class": _with_sparklines(range_name, "class_name", by_class, unit, now),
        "run_times": svg.timing_rows(sorted(by_class, key=lambda row: row["name"])),
        "slowest": charts.slowest(by_class),
    }


def _with_sparklines(range_name, key, rows, unit, now):
    series = charts.buckets_per_group(range_name, key, [row["name"] for row in rows], now)
    for index, row in enumerate(rows):
        row["sparkline"] = svg.stacked_bars(series[row["name"]], unit, width=120, height=28)
        row["chart_id"] = f"quebec-{key}-{index}"
        row["link"] = _chart_link(range_name, {key: row["name"]})
    return rows


def _chart_link(range_name, chosen):
    query = {"range": range_name, **{key: value for key, value in chosen.items() if value}}
    return databases.link(plain_reverse("admin:quebec_jobstat_changelist") + "?" + urlencode(query))


# state: the actions its page offers, as (action, label)
STATE_ACTIONS = {
    "failed": (("retry", gettext_lazy("Retry")), ("discard", gettext_lazy("Discard"))),
    "ready": (("cancel_job", gettext_lazy("Cancel")),),
    "scheduled": (("run_now", gettext_lazy("Run now")), ("cancel_job", gettext_lazy("Cancel"))),
    "claimed": (("cancel_job", gettext_lazy("Cancel")),),
    "blocked": (("unblock", gettext_lazy("Unblock")), ("cancel_job", gettext_lazy("Cancel"))),
}


def job_detail(request, model_admin, object_id):
    """One job: what it is, its arguments, its state and why, its error, its attempts, what it
    returned, and what can be done."""
    job = model_admin.get_object(request, object_id)
    if job is None:
        return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)
    if not model_admin.has_view_permission(request, job):
        raise PermissionDenied
    state = jobs.describe(job)
    actions = [
        {"label": label, "url": reverse("admin:quebec_job_action", args=[job.pk, action]), "name": action}
        for action, label in STATE_ACTIONS.get(job.status, ())
        if request.user.has_perm(action_permission(action))
    ]
    context = {
        **model_admin.admin_site.each_context(request),
        **page_context(request, job.status),
        "title": _("%(class)s #%(id)s") % {"class": job.class_name, "id": job.pk},
        "opts": model_admin.opts,
        "job": job,
        "state": state,
        "status_label": STATUS_LABELS.get(job.status, job.status),
        **_payload_context(job),
        "attempts": jobs.attempts(job),
        "actions": actions,
        "job_batch": batches.of_job(job),
        "can_view_batches": can_view(request.user, "batch"),
        **job_progress.describe(job),
    }
    return TemplateResponse(request, "quebec/job_detail.html", context)


@require_safe
def batch_detail(request, model_admin, object_id):
    """One batch: its status, progress, counts and callbacks (refreshed live), its description
    and metadata, and a link to its members."""
    batch = model_admin.get_object(request, object_id)
    if batch is None:
        return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)
    if not model_admin.has_view_permission(request, batch):
        raise PermissionDenied
    metadata, metadata_cut = previews.pretty_head(batch.metadata)
    context = {
        **model_admin.admin_site.each_context(request),
        **page_context(request, "batches"),
        **batches.describe(batch),
        "title": _("Batch #%(id)s") % {"id": batch.pk},
        "opts": model_admin.opts,
        "metadata": metadata,
        "metadata_cut": metadata_cut,
        "page_limit": previews.PAGE_CHARS,
        "members_url": batches.members_url(batch.pk) if can_view(request.user, "job") else None,
    }
    return TemplateResponse(request, "quebec/batch_detail.html", context)


def _payload_context(job):
    """The start of the arguments and return value (``previews.PAGE_CHARS`` each) and their sizes."""
    arguments, arguments_cut = previews.pretty_head(job.arguments)
    return_value, return_value_cut = (None, False)
    if job.return_value is not None:
        return_value, return_value_cut = previews.pretty_head(job.return_value)
    return {
        "arguments": arguments,
        "arguments_cut": arguments_cut,
        "arguments_size": previews.arguments_size(job.pk) if arguments_cut else None,
        "arguments_url": reverse("admin:quebec_job_arguments", args=[job.pk]),
        "return_value": return_value,
        "return_value_cut": return_value_cut,
        "page_limit": previews.PAGE_CHARS,
    }


@never_cache
@require_safe
def job_arguments(request, model_admin, object_id):
    """A job's arguments whole, as the JSON the database holds, for those who may view the job."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    text = previews.arguments_text(object_id)
    if text is None:
        raise Http404(_("No job #%(id)s.") % {"id": object_id})
    response = HttpResponse(text, content_type="application/json")
    response["X-Content-Type-Options"] = "nosniff"  # never rendered as anything but JSON
    response["Content-Disposition"] = f'inline; filename="job-{object_id}-arguments.json"'
    return response
