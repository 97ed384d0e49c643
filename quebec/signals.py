"""Django signals of a job's life, each sent once per job and event, after its commit.

    from quebec.signals import job_failed

    @receiver(job_failed)
    def page_someone(sender, job, error, **kwargs): ...

``sender`` is the ``Job`` model (``Process`` for the process signals). Every job signal carries
``job`` (the ``Job`` row); ``job_finished``, ``job_retried``, ``job_discarded`` and
``job_failed`` carry ``error`` (None when there was none), ``result`` (what ``perform``
returned) and ``elapsed`` (seconds); ``job_retried`` carries ``retry_at``. ``process_pruned``
carries ``error``. A receiver that raises is logged with its traceback (``exc_info``) and holds
up neither the job nor the other receivers.

The signals are sent by a subscriber to the lifecycle's events (``quebec.lifecycle.events``);
a signal nobody listens to costs nothing per job.
"""

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.dispatch import Signal

from quebec.lifecycle import events

logger = logging.getLogger("quebec.signals")

job_enqueued = Signal()
job_started = Signal()
job_finished = Signal()
job_retried = Signal()
job_failed = Signal()
job_discarded = Signal()
process_started = Signal()
process_stopped = Signal()
process_pruned = Signal()


def _send(signal: Signal, sender: type, **kwargs: Any) -> None:
    for receiver, response in signal.send_robust(sender, **kwargs):
        if isinstance(response, Exception):
            logger.error(
                "A receiver of a Quebec signal failed: %r",
                receiver,
                exc_info=(type(response), response, response.__traceback__),
            )


def _job_model(job: Any) -> type:
    return type(job)


def _for_jobs(signal: Signal) -> Callable[..., None]:
    def subscriber(jobs: Iterable[Any], **payload: Any) -> None:
        if signal.receivers:
            for job in jobs:
                _send(signal, _job_model(job), job=job)

    return subscriber


def _for_runs(signal: Signal) -> Callable[..., None]:
    def subscriber(runs: Iterable[Any], **payload: Any) -> None:
        if signal.receivers:
            for run in runs:
                extra = {"retry_at": run.outcome.retry_at} if signal is job_retried else {}
                _send(
                    signal,
                    _job_model(run.job),
                    job=run.job,
                    error=run.outcome.error,
                    result=run.outcome.result,
                    elapsed=run.elapsed,
                    **extra,
                )

    return subscriber


def _started(job: Any, **payload: Any) -> None:
    if job_started.receivers:
        _send(job_started, _job_model(job), job=job)


def _for_process(signal: Signal) -> Callable[..., None]:
    def subscriber(process: Any, **payload: Any) -> None:
        if signal.receivers:
            _send(signal, type(process), process=process, **payload)

    return subscriber


def _receivers(signal: Signal) -> Callable[[], bool]:
    """Whether ``signal`` has receivers: an event is not kept until its commit for one without."""
    return lambda: bool(signal.receivers)


events.subscribe(events.ENQUEUED, _for_jobs(job_enqueued), _receivers(job_enqueued))
events.subscribe(events.STARTED, _started, _receivers(job_started))
events.subscribe(events.FINISHED, _for_runs(job_finished), _receivers(job_finished))
events.subscribe(events.RETRIED, _for_runs(job_retried), _receivers(job_retried))
events.subscribe(events.FAILED, _for_runs(job_failed), _receivers(job_failed))
events.subscribe(events.DISCARDED, _for_runs(job_discarded), _receivers(job_discarded))
events.subscribe(events.PROCESS_STARTED, _for_process(process_started), _receivers(process_started))
events.subscribe(events.PROCESS_STOPPED, _for_process(process_stopped), _receivers(process_stopped))
events.subscribe(events.PROCESS_PRUNED, _for_process(process_pruned), _receivers(process_pruned))
