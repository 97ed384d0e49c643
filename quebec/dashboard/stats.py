"""The numbers the dashboard shows; every query here is bounded whatever the tables hold."""

import dataclasses
import datetime
from datetime import timedelta

from django.db.models import Count, Min
from django.db.models.functions import Substr
from django.utils import timezone
from django.utils.translation import pgettext

from quebec import conf
from quebec.dashboard.previews import JOB_PAYLOAD_FIELDS
from quebec.models import (
    BlockedExecution,
    ClaimedExecution,
    FailedExecution,
    Job,
    Pause,
    Process,
    ReadyExecution,
    ScheduledExecution,
)

# The states a job waits in, in the order the dashboard shows them ("claimed" reads "in progress").
WAITING_STATES = {
    "ready": ReadyExecution,
    "scheduled": ScheduledExecution,
    "claimed": ClaimedExecution,
    "blocked": BlockedExecution,
    "failed": FailedExecution,
}
FINISHED_WINDOW = timedelta(hours=24)
COUNT_CAP = 100_000


def capped_count(queryset, cap=COUNT_CAP):
    """Count at most ``cap + 1`` rows, so a huge table costs a bounded query."""
    return queryset[: cap + 1].count()


def format_count(count, cap=COUNT_CAP):
    return f"{cap:,}+" if count > cap else f"{count:,}"


def state_counts(states=None):
    """Jobs in each waiting state, plus those finished in the last 24 hours; one query per state.

    ``states`` limits the counts to those names (the ones a user may see); all by default.
    """
    counts = {
        state: capped_count(model.objects.all())
        for state, model in WAITING_STATES.items()
        if states is None or state in states
    }
    if states is None or "finished" in states:
        since = timezone.now() - FINISHED_WINDOW
        counts["finished"] = capped_count(Job.objects.filter(finished_at__gte=since, discarded_at__isnull=True))
    return counts


@dataclasses.dataclass
class Queue:
    name: str
    size: int = 0
    oldest: datetime.datetime | None = None
    paused: bool = False

    @property
    def latency(self):
        """How long the oldest ready job has waited; zero for an empty queue."""
        return timezone.now() - self.oldest if self.oldest else timedelta(0)

    @property
    def latency_text(self):
        return format_duration(self.latency)


def format_duration(duration):
    """``"45 s"``, ``"3 min 5 s"``, ``"2 h 10 min"``, ``"3 d 4 h"``: the two largest units."""
    seconds = int(duration.total_seconds())
    parts = [
        (seconds // 86400, pgettext("abbreviation of days", "d")),
        (seconds // 3600 % 24, pgettext("abbreviation of hours", "h")),
        (seconds // 60 % 60, pgettext("abbreviation of minutes", "min")),
        (seconds % 60, pgettext("abbreviation of seconds", "s")),
    ]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{value} {unit}" for value, unit in parts[:2] if value or len(parts) == 1)


def queues(recent=1000):
    """Every queue with ready jobs, a pause, a worker listening to it by name, or one of the
    newest ``recent`` jobs; three queries."""
    found = {name: Queue(name) for name in Job.objects.order_by("-pk").values_list("queue_name", flat=True)[:recent]}
    ready = ReadyExecution.objects.values("queue_name").annotate(size=Count("pk"), oldest=Min("created_at"))
    for row in ready.order_by():
        found[row["queue_name"]] = Queue(row["queue_name"], row["size"], row["oldest"])
    for name in Pause.objects.values_list("queue_name", flat=True):
        found.setdefault(name, Queue(name)).paused = True
    for worker in conf.get().workers:
        for selector in worker.queues:
            if "*" not in selector:
                found.setdefault(selector, Queue(selector))
    return sorted(found.values(), key=lambda queue: queue.name)


def latest_failures(limit=10):
    """The newest failures with their jobs, leaving out what can be large: payloads, backtraces."""
    payload = (f"job__{field}" for field in JOB_PAYLOAD_FIELDS)
    rows = FailedExecution.objects.select_related("job").defer("message", "backtrace", *payload)
    head = Substr("message", 1, 121)  # the overview shows 120 characters of a message
    return list(rows.annotate(message_head=head).order_by("-created_at", "-pk")[:limit])


def alive_since():
    """Processes with a heartbeat after this moment are alive (``process_alive_threshold``)."""
    return timezone.now() - timedelta(seconds=conf.get().process_alive_threshold)


def is_alive(process):
    return process.last_heartbeat_at >= alive_since()


def live_processes(limit=50):
    return list(Process.objects.filter(last_heartbeat_at__gte=alive_since()).order_by("kind", "name")[:limit])
