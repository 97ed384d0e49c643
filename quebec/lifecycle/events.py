"""Events: one instrumentation point per transition, delivered to subscribers after the commit.

A transition publishes what happened (``ENQUEUED`` with the jobs, ``FINISHED`` with the runs,
...) once its transaction has committed, so a subscriber never sees a change that was rolled
back. Subscribers are the log lines (``quebec.lifecycle.logs``) and Django's signals
(``quebec.signals``); a failing subscriber is logged with its traceback and never undoes or
holds up the transition. An event nobody subscribed to costs one dictionary lookup.
"""

import logging

from quebec.db.connection import after_commit

logger = logging.getLogger("quebec.events")

ENQUEUED = "enqueued"  # jobs=[Job]
CLAIMED = "claimed"  # jobs=[Job], process_id
STARTED = "started"  # job, process_name
FINISHED = "finished"  # runs=[Run]
RETRIED = "retried"  # runs=[Run]: an attempt failed, the next is scheduled
RESCHEDULED = "rescheduled"  # runs=[Run]: a rate-limited run waits for room in its window
DISCARDED = "discarded"  # runs=[Run]
FAILED = "failed"  # runs=[Run]: failed for good
RESUMED = "resumed"  # runs=[Run]: a continuable job interrupted, back in line with its progress
RELEASED = "released"  # job_ids=[int]: claims put back in line
PROCESS_STARTED = "process_started"  # process
PROCESS_STOPPED = "process_stopped"  # process
PROCESS_PRUNED = "process_pruned"  # process, error

_subscribers = {}


def subscribe(event, subscriber, listening=None):
    """Call ``subscriber(**payload)`` after each commit of ``event``. ``listening``, if given,
    says whether the subscriber would do anything now (a signal with receivers): an event that
    no subscriber listens to is not even kept until the commit, so a transaction that enqueues a
    million jobs does not hold them all for nobody."""
    _subscribers.setdefault(event, []).append((subscriber, listening))
    return subscriber


def unsubscribe(event, subscriber):
    _subscribers[event] = [entry for entry in _subscribers.get(event, []) if entry[0] is not subscriber]


def publish(event, using, **payload):
    """Deliver ``event`` once the current transaction of ``using`` commits (at once outside one)."""
    entries = _subscribers.get(event)
    if not entries:
        return
    subscribers = [subscriber for subscriber, listening in entries if listening is None or listening()]
    if not subscribers:
        return
    after_commit(lambda: _deliver(event, subscribers, payload), using)


def _deliver(event, subscribers, payload):
    for subscriber in subscribers:
        try:
            subscriber(**payload)
        except Exception:
            logger.exception("A subscriber to %s failed: %r", event, subscriber)
