"""OpenTelemetry: a span per enqueue and per run, the run continuing the enqueuing request's trace.

This process records its spans with the SDK's in-memory exporter; a real quebec_run worker
records its own to a file (tests/settings_otel.py), which the tests read back.
"""

import json

import pytest
from django.db import transaction
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once

from quebec.models import Job
from quebec.tracing import CARRIER
from tests.conftest import wait_until
from tests.testapp.jobs import FailingJob, TalkativeJob

pytestmark = pytest.mark.django_db(transaction=True)

TALKATIVE = "tests.testapp.jobs.TalkativeJob"
FAST = {"QUEBEC_WORKER_POLLING_INTERVAL": "0.05", "QUEBEC_DISPATCHER_POLLING_INTERVAL": "0.1"}


@pytest.fixture
def spans():
    """Set up OpenTelemetry in this process, recording spans in memory, for one test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()
    # OpenTelemetry lets a process set its provider once; its own test utilities undo it so,
    # and the other tests run with OpenTelemetry installed but not set up.
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE = Once()


def hex_id(number, digits):
    return f"0x{number:0{digits}x}"


def named(exported, name):
    return [span for span in exported if span.name == name]


def test_nothing_is_stored_with_a_job_while_opentelemetry_is_not_set_up():
    handle = TalkativeJob.perform_later("untraced")
    assert Job.objects.get(pk=handle.id).arguments == {"args": ["untraced"], "kwargs": {}}


def test_an_enqueue_is_a_producer_span_whose_context_the_job_stores(spans):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("request") as request:
        handle = TalkativeJob.set(queue="chatter").perform_later("traced")
    (enqueue,) = named(spans.get_finished_spans(), f"enqueue {TALKATIVE}")
    assert enqueue.kind == SpanKind.PRODUCER
    assert enqueue.parent.span_id == request.get_span_context().span_id
    assert enqueue.context.trace_id == request.get_span_context().trace_id
    assert dict(enqueue.attributes) == {
        "messaging.system": "quebec",
        "messaging.operation.type": "send",
        "messaging.operation.name": "enqueue",
        "messaging.destination.name": "chatter",
        "messaging.message.id": str(handle.id),
        "quebec.job.class": TALKATIVE,
        "quebec.job.attempt": 1,
    }
    stored = Job.objects.get(pk=handle.id).arguments[CARRIER]
    trace_id, span_id = hex_id(enqueue.context.trace_id, 32)[2:], hex_id(enqueue.context.span_id, 16)[2:]
    assert stored["traceparent"].startswith(f"00-{trace_id}-{span_id}-")  # then the flags: sampled, ...


def test_an_enqueue_after_commit_is_a_child_of_the_request_that_committed(spans, settings_config):
    settings_config(enqueue_after_commit=True)
    with trace.get_tracer("tests").start_as_current_span("request") as request:
        with transaction.atomic():
            handle = TalkativeJob.perform_later("later")
            assert not named(spans.get_finished_spans(), f"enqueue {TALKATIVE}")
    (enqueue,) = named(spans.get_finished_spans(), f"enqueue {TALKATIVE}")
    assert enqueue.parent.span_id == request.get_span_context().span_id
    assert enqueue.attributes["messaging.message.id"] == str(handle.id)


@pytest.mark.subprocess
@pytest.mark.parametrize("mode", ["threads", "fork"])
def test_a_worker_s_runs_continue_the_trace_and_record_the_failure(spans, quebec_run, tmp_path, mode):
    spans_file = tmp_path / "spans.jsonl"
    spans_file.touch()
    env = {**FAST, "DJANGO_SETTINGS_MODULE": "tests.settings_otel", "QUEBEC_TEST_SPANS": str(spans_file)}
    worker = quebec_run(env={**env, "QUEBEC_SUPERVISOR": "1" if mode == "fork" else "0"})
    with trace.get_tracer("tests").start_as_current_span("request"):
        handle = TalkativeJob.perform_later("twice", fail_first=True)
    wait_until(lambda: handle.status == "finished", message="the job to finish on its second attempt")
    assert worker.stop() == 0
    (enqueue,) = named(spans.get_finished_spans(), f"enqueue {TALKATIVE}")
    runs = [
        span for span in map(json.loads, spans_file.read_text().splitlines()) if span["name"] == f"perform {TALKATIVE}"
    ]
    assert [run["attributes"]["quebec.job.attempt"] for run in runs] == [1, 2]
    for run in runs:
        assert run["kind"] == str(SpanKind.CONSUMER)
        assert run["context"]["trace_id"] == hex_id(enqueue.context.trace_id, 32)
        assert run["parent_id"] == hex_id(enqueue.context.span_id, 16)
        assert run["attributes"]["messaging.message.id"] == str(handle.id)
        assert run["attributes"]["messaging.destination.name"] == "default"
    failed, retried = runs
    assert failed["status"]["status_code"] == "ERROR" and failed["attributes"]["quebec.job.outcome"] == "retry"
    (event,) = failed["events"]
    assert event["name"] == "exception" and event["attributes"]["exception.type"] == "tests.testapp.jobs.Flaky"
    assert retried["status"]["status_code"] == "UNSET" and retried["attributes"]["quebec.job.outcome"] == "finished"
    assert not retried["events"]


def test_perform_now_is_a_run_span_under_the_caller_s_and_its_retry_a_child_enqueue(spans):
    with trace.get_tracer("tests").start_as_current_span("request") as request:
        TalkativeJob.perform_now("now", fail_first=True)
    (run,) = named(spans.get_finished_spans(), f"perform {TALKATIVE}")
    (retry,) = named(spans.get_finished_spans(), f"enqueue {TALKATIVE}")
    assert run.kind == SpanKind.CONSUMER and run.parent.span_id == request.get_span_context().span_id
    assert run.attributes["quebec.job.attempt"] == 1 and "messaging.message.id" not in run.attributes
    assert (
        run.status.status_code == StatusCode.ERROR
        and run.events[0].attributes["exception.type"] == "tests.testapp.jobs.Flaky"
    )
    assert retry.parent.span_id == run.context.span_id and retry.attributes["quebec.job.attempt"] == 2


def test_perform_now_of_a_failing_job_records_the_error_it_raises(spans):
    with pytest.raises(ValueError, match="broken"):
        FailingJob.perform_now("broken")
    (run,) = named(spans.get_finished_spans(), "perform tests.testapp.jobs.FailingJob")
    assert run.parent is None
    assert run.status.status_code == StatusCode.ERROR and "broken" in run.status.description
    assert run.events[0].name == "exception"
