"""OpenTelemetry spans for enqueues and runs, with the ``[otel]`` extra and a tracer provider set.

Each enqueue is a producer span. Its trace context is stored in the job's arguments document,
under ``trace_context``, and the run's consumer span continues it: the run, in whichever process
and however much later, belongs to the trace of the request that enqueued the job. The
arguments document is the place because it exists already: a job enqueued while nothing is
traced stores nothing more and writes no other column, and a retry keeps its trace. When
OpenTelemetry is not installed, or no tracer provider is set, an enqueue or a run costs one
check.

The attributes follow OpenTelemetry's messaging conventions where they fit
(``messaging.destination.name`` is the queue, ``messaging.message.id`` the job's id); the class
and the attempt are ``quebec.job.class`` and ``quebec.job.attempt``.
"""

import os

try:
    from opentelemetry import context, propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # the [otel] extra is not installed
    trace = None

from quebec.lifecycle.outcome import FAILED, RETRY

CARRIER = "trace_context"  # the key of the arguments document that holds the enqueue's context
_tracer = (None, None)  # (provider, its tracer): a provider set later is picked up
# While no provider is set, trace.get_tracer_provider() looks in os.environ on every call, about
# a microsecond; its module's global says as much in nanoseconds. Asked only when the variable
# that makes it load a provider is set, or when that global is not there in this version.
_PROVIDER_FROM_ENVIRONMENT = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def tracer():
    """Quebec's tracer, or None when there is nothing to record spans with."""
    global _tracer
    if trace is None or (getattr(trace, "_TRACER_PROVIDER", True) is None and not _PROVIDER_FROM_ENVIRONMENT):
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):  # OpenTelemetry is installed, not set up
        return None
    if _tracer[0] is not provider:
        from quebec import __version__

        _tracer = (provider, provider.get_tracer("quebec", __version__))
    return _tracer[1]


def attributes(operation, job_class, queue_name, attempt, job_id=None):
    found = {
        "messaging.system": "quebec",
        "messaging.operation.type": "send" if operation == "enqueue" else "process",
        "messaging.operation.name": operation,
        "messaging.destination.name": queue_name,
        "quebec.job.class": job_class,
        "quebec.job.attempt": attempt,
    }
    if job_id is not None:
        found["messaging.message.id"] = str(job_id)
    return found


class NotTraced:
    """What ``enqueueing`` and ``running`` give when nothing is traced: does nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def ended(self, outcome):
        pass


NOT_TRACED = NotTraced()


def enqueueing(jobs):
    """A producer span around the writing of each of ``jobs`` (unsaved ``Job`` rows), whose
    context each job stores."""
    found = tracer()
    return NOT_TRACED if found is None else Enqueueing(found, jobs)


class Enqueueing:
    def __init__(self, tracer, jobs):
        self.jobs = jobs
        self.spans = [self._start(tracer, job) for job in jobs]

    @staticmethod
    def _start(tracer, job):
        span = tracer.start_span(
            f"enqueue {job.class_name}",
            kind=SpanKind.PRODUCER,
            attributes=attributes("enqueue", job.class_name, job.queue_name, job.executions + 1),
        )
        carrier = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        if carrier:
            job.arguments = {**job.arguments, CARRIER: carrier}
            job.encoded_arguments = None  # the checks' text lacks the context: encoded again
        return span

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        for job, span in zip(self.jobs, self.spans, strict=True):
            if error is not None:
                failed(span, error)
            elif job.pk is not None:  # None: a unique job whose key another holds was not written
                span.set_attribute("messaging.message.id", str(job.pk))
            span.end()
        return False


def running(job_class, queue_name, attempt, job_id=None, arguments=None):
    """A consumer span around a run, current while it runs, continuing the trace its job
    stored in ``arguments`` (else the caller's); ``ended(outcome)`` records how it went."""
    found = tracer()
    if found is None:
        return NOT_TRACED
    carrier = (arguments or {}).get(CARRIER)
    parent = propagate.extract(carrier) if carrier else None
    span = found.start_span(
        f"perform {job_class}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes("perform", job_class, queue_name, attempt, job_id),
    )
    return Running(span, parent)


class Running:
    def __init__(self, span, parent):
        self.span = span
        self.parent = parent
        self._token = None

    def __enter__(self):
        self._token = context.attach(trace.set_span_in_context(self.span, self.parent))
        return self

    def __exit__(self, kind, error, traceback):
        context.detach(self._token)
        if error is not None:
            failed(self.span, error)
        self.span.end()
        return False

    def ended(self, outcome):
        self.span.set_attribute("quebec.job.outcome", outcome.state)
        if outcome.error is None:
            return
        if outcome.state in (FAILED, RETRY):
            failed(self.span, outcome.error)
        else:  # discarded or cancelled on purpose: the error is told, the run did what was asked
            self.span.record_exception(outcome.error)


def failed(span, error):
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__qualname__}: {error}"))
