"""``metrics/``: Quebec's figures in Prometheus' text exposition format (version 0.0.4).

Every figure is read from the database at each scrape, so every process and every fork of a
deployment serves the same ones, and a scrape costs a fixed number of queries whatever the
tables hold (about ten; ``tests/test_metrics.py`` pins the budget):

    quebec_queue_size, quebec_queue_latency_seconds, quebec_queue_paused      per queue
    quebec_jobs_{finished,failed,retried,discarded}_total                   per queue and class
    quebec_job_run_seconds, quebec_job_wait_seconds (histograms)            per queue and class
    quebec_jobs (by state), quebec_processes (alive, by kind), quebec_processes_dead
    quebec_batches (by status), quebec_batch_jobs_pending

The counters and histograms are the rollups (``quebec.models.stats``) since the start: the
totals the dispatcher folds minutes into, plus the minutes not folded yet. They never go down
while the rollup tables are kept (a pruned minute stays in the totals); with ``stats`` off
they stand still.

The format is written here rather than with ``prometheus_client``: these are a few gauges,
counters and histograms computed per request from the database, so the library's process-wide
registry and metric objects would serve only to format ~60 lines of text, and would be one more
dependency for every deployment.
"""

from django.db.models import Count, Sum
from django.http import HttpResponse
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from quebec.dashboard import health, stats
from quebec.models import Batch, BatchStatus, Process
from quebec.models.stats import BOUNDS, totals_since_start

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The states a job waits in (finished jobs are counted by the rollups, not by their rows).
STATES = stats.WAITING_STATES


@never_cache
@require_safe
def metrics(request):
    """The metrics for staff sessions and ``Authorization: Bearer <monitoring_token>``; 401 for
    anonymous callers, 403 for a signed-in user who is not staff."""
    if not health.may_see_details(request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            response = HttpResponse("Forbidden\n", status=403, content_type="text/plain")
        else:
            response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="quebec"'
    else:
        response = HttpResponse(render(), content_type=CONTENT_TYPE)
    patch_vary_headers(response, ("Authorization", "Cookie"))
    return response


def render():
    """The whole exposition, as text."""
    out = Exposition()
    queue_metrics(out)
    job_metrics(out)
    state_metrics(out)
    process_metrics(out)
    batch_metrics(out)
    return out.text()


def queue_metrics(out):
    """Size, latency (age of the oldest ready job) and pause of each queue; three queries."""
    queues = stats.queues()
    out.family("quebec_queue_size", "gauge", "Jobs ready to run in the queue.")
    for queue in queues:
        out.sample("quebec_queue_size", {"queue": queue.name}, queue.size)
    out.family("quebec_queue_latency_seconds", "gauge", "How long the oldest ready job of the queue has waited.")
    for queue in queues:
        out.sample("quebec_queue_latency_seconds", {"queue": queue.name}, queue.latency.total_seconds())
    out.family("quebec_queue_paused", "gauge", "1 when the queue is paused, else 0.")
    for queue in queues:
        out.sample("quebec_queue_paused", {"queue": queue.name}, int(queue.paused))


COUNTERS = {
    "finished": "Runs that finished.",
    "failed": "Runs that failed for good (to the failed jobs).",
    "retried": "Runs that failed with a retry to come.",
    "discarded": "Runs that ended with the job discarded.",
}


def job_metrics(out):
    """Counters and run-time and wait-time histograms per queue and class, from the rollups
    since the start; two queries."""
    groups = totals_since_start()
    for group in groups:
        group["labels"] = labels(group)
    for counter, help_text in COUNTERS.items():
        name = f"quebec_jobs_{counter}_total"
        out.family(name, "counter", f"{help_text} Since the start of the rollups, per queue and job class.")
        for group in groups:
            out.sample(name, group["labels"], group[counter])
    for kind, help_text in (
        ("run", "Run time of jobs, from start to end of a run."),
        ("wait", "Wait time of jobs, from enqueue (or due time, when later) to the start of a run."),
    ):
        name = f"quebec_job_{kind}_seconds"
        out.family(name, "histogram", help_text)
        for group in groups:
            out.histogram(name, group["labels"], group[f"{kind}_buckets"], group[f"{kind}_sum"])


def labels(group):
    """The group's labels as text, formatted once for its many lines."""
    return format_labels({"queue": group["queue_name"], "class": group["class_name"]})


def state_metrics(out):
    """Jobs in each waiting state (blocked ones among them); one query per state."""
    out.family("quebec_jobs", "gauge", "Jobs in each waiting state.")
    for state, model in STATES.items():
        out.sample("quebec_jobs", {"state": state}, model.objects.count())


def process_metrics(out):
    """Live processes by kind, and rows past the alive threshold; one query."""
    since = stats.alive_since()
    alive, dead = {}, 0
    for kind, last_heartbeat_at in Process.objects.values_list("kind", "last_heartbeat_at").order_by("kind"):
        if last_heartbeat_at >= since:
            alive[kind] = alive.get(kind, 0) + 1
        else:
            dead += 1
    out.family("quebec_processes", "gauge", "Processes alive (a heartbeat within process_alive_threshold), by kind.")
    for kind in sorted({"Worker", "Dispatcher", "Scheduler", *alive}):
        out.sample("quebec_processes", {"kind": kind}, alive.get(kind, 0))
    out.family("quebec_processes_dead", "gauge", "Process rows past process_alive_threshold, not pruned yet.")
    out.sample("quebec_processes_dead", {}, dead)


def batch_metrics(out):
    """Batches kept, by status, and the members their running ones still wait for; one query."""
    rows = Batch.objects.values("status").annotate(n=Count("pk"), pending=Sum("pending_jobs")).order_by("status")
    counts = {row["status"]: (row["n"], row["pending"] or 0) for row in rows}
    out.family("quebec_batches", "gauge", "Batches kept (finished ones until they are cleared), by status.")
    for status in BatchStatus.values:
        out.sample("quebec_batches", {"status": status}, counts.get(status, (0, 0))[0])
    out.family("quebec_batch_jobs_pending", "gauge", "Members of running batches that have not ended yet.")
    out.sample("quebec_batch_jobs_pending", {}, counts.get(BatchStatus.RUNNING, (0, 0))[1])


class Exposition:
    """Lines of the text format: a family's HELP and TYPE, then its samples. Labels are given as
    a dict, or as text already formatted by ``format_labels`` (a group's labels, used by many
    lines, are formatted once)."""

    def __init__(self):
        self.lines = []

    def family(self, name, kind, help_text):
        self.lines.append(f"# HELP {name} {escape_help(help_text)}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name, label_values, value):
        text = label_values if isinstance(label_values, str) else format_labels(label_values)
        self.lines.append(f"{name}{{{text}}} {format_value(value)}" if text else f"{name} {format_value(value)}")

    def histogram(self, name, label_values, buckets, total):
        """Cumulative ``le`` buckets from per-bucket counts, then ``_sum`` and ``_count``."""
        text = label_values if isinstance(label_values, str) else format_labels(label_values)
        prefix = f"{name}_bucket{{{text}," if text else f"{name}_bucket{{"
        seen = 0
        for bound, count in zip(BOUND_TEXTS, buckets, strict=True):
            seen += count
            self.lines.append(f'{prefix}le="{bound}"}} {seen}')
        self.sample(f"{name}_sum", text, float(total))
        self.sample(f"{name}_count", text, seen)

    def text(self):
        return "\n".join(self.lines) + "\n"


def format_labels(label_values):
    """``key="value",...``, values escaped as the format says."""
    return ",".join(f'{key}="{escape_label(str(value))}"' for key, value in label_values.items())


def escape_label(value):
    if "\\" not in value and '"' not in value and "\n" not in value:
        return value
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value):
    if isinstance(value, float):
        if value == float("inf"):
            return "+Inf"
        return repr(value)
    return str(value)


BOUND_TEXTS = (*(format_value(float(bound)) for bound in BOUNDS), "+Inf")
