"""Is Quebec working? One report for the JSON endpoint and the ``quebec_health`` command.

Unhealthy means either of:
- no worker process is alive (none has sent a heartbeat within ``process_alive_threshold``);
- with ``max_latency`` given, a queue that is not paused has a ready job waiting longer than that.
"""

import dataclasses
import hmac

from django.utils import timezone
from django.utils.translation import gettext as _

from quebec import conf
from quebec.dashboard import stats
from quebec.models import Process


@dataclasses.dataclass
class Report:
    healthy: bool
    problems: list
    payload: dict


def check(max_latency=None):
    """Look at processes, queues and counts; returns a ``Report``."""
    processes = _process_counts()
    queues = stats.queues()
    problems = []
    if not processes["alive"].get("Worker"):
        problems.append(_("no worker process is alive"))
    if max_latency is not None:
        problems += [
            _("queue %(queue)s: oldest ready job has waited %(latency).0fs (limit %(limit).0fs)")
            % {"queue": queue.name, "latency": queue.latency.total_seconds(), "limit": max_latency}
            for queue in queues
            if not queue.paused and queue.latency.total_seconds() > max_latency
        ]
    payload = {
        "healthy": not problems,
        "problems": problems,
        "checked_at": timezone.now().isoformat(),
        "processes": processes,
        "queues": {
            queue.name: {"size": queue.size, "latency": round(queue.latency.total_seconds(), 3), "paused": queue.paused}
            for queue in queues
        },
        "counts": stats.state_counts(),
    }
    return Report(healthy=not problems, problems=problems, payload=payload)


def _process_counts():
    """Live processes by kind, and how many rows are past the alive threshold."""
    since = stats.alive_since()
    alive = {}
    for kind in Process.objects.filter(last_heartbeat_at__gte=since).values_list("kind", flat=True):
        alive[kind] = alive.get(kind, 0) + 1
    dead = Process.objects.filter(last_heartbeat_at__lt=since).count()
    return {"alive": alive, "dead": dead}


def may_see_details(request):
    """Whether ``request`` may read the full report: a staff session, or the monitoring token."""
    user = getattr(request, "user", None)  # a project may serve health/ without the auth middleware
    if user is not None and user.is_active and user.is_staff:
        return True
    return has_monitoring_token(request)


def has_monitoring_token(request):
    """``Authorization: Bearer <token>`` matching ``QUEBEC["monitoring_token"]``; never without one."""
    token = conf.get().monitoring_token
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    # Constant time, so that response times do not reveal how much of a guess was right.
    return hmac.compare_digest(given.strip().encode(), token.encode())
