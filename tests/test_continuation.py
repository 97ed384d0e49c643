"""Continuable jobs' steps, run in this process through the same code a worker uses."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import quebec
from quebec import execution
from quebec.lifecycle import progress
from quebec.lifecycle.outcome import FAILED, FINISHED, RESUMED
from quebec.models import Job
from tests.testapp.jobs import BackfillJob, ProgressJob, SleepJob, record
from tests.testapp.models import JobRun

pytestmark = pytest.mark.django_db(transaction=True)


def run(handle, stop_when=lambda: False):
    """One run of the stored job, as a worker's thread does it; returns the outcome."""
    job = Job.objects.get(pk=handle.id)
    job.executions += 1
    with progress.running(job, "default", stopping=stop_when):
        _, outcome = execution.run_stored(job, quebec.default)
    return outcome


def labels():
    return list(JobRun.objects.order_by("pk").values_list("label", "value"))


def test_an_interrupted_job_resumes_at_its_cursor_and_skips_finished_steps():
    handle = BackfillJob.perform_later(10, pause=0)
    outcome = run(handle, stop_when=lambda: JobRun.objects.filter(label="item").count() >= 4)
    assert outcome.state == RESUMED and outcome.error is None
    stored = Job.objects.get(pk=handle.id).continuation
    assert stored == {"completed": ["prepare"], "current": ["items", 4], "resumptions": 0}
    assert run(handle).state == FINISHED
    assert labels() == [("prepare", None), *(("item", index) for index in range(10)), ("finish", 1)]
    assert Job.objects.get(pk=handle.id).continuation == {
        "completed": ["prepare", "items", "finish"],
        "current": None,
        "resumptions": 1,
    }


def test_a_stop_between_steps_resumes_at_the_next_step():
    handle = BackfillJob.perform_later(3, pause=0)

    def between_steps():
        return "items" in (progress.current().job.continuation or {}).get("completed", [])

    outcome = run(handle, stop_when=between_steps)
    assert outcome.state == RESUMED
    assert Job.objects.get(pk=handle.id).continuation["completed"] == ["prepare", "items"]
    assert run(handle).state == FINISHED
    assert [label for label, _ in labels()].count("item") == 3


class Nested(quebec.BaseClass, quebec.Continuable):
    def perform(self):
        with self.step("outer"):
            with self.step("inner"):
                pass


class Repeated(quebec.BaseClass, quebec.Continuable):
    def perform(self):
        self.step("same", lambda: None)
        self.step("same", lambda: None)


class Reordered(quebec.BaseClass, quebec.Continuable):
    order = ("a", "b")

    def perform(self):
        for name in type(self).order:
            with self.step(name, start=0) as step:
                step.advance()


@pytest.mark.parametrize(
    ("job_class", "message"),
    [
        (Nested, "step 'inner' is nested inside step 'outer'"),
        (Repeated, "step 'same' was already met in this run"),
    ],
)
def test_misused_steps_fail_with_invalid_step_error(job_class, message):
    outcome = run(job_class.perform_later())
    assert outcome.state == FAILED and isinstance(outcome.error, quebec.InvalidStepError)
    assert message in str(outcome.error)


def test_steps_reordered_between_runs_fail_with_invalid_step_error():
    handle = Reordered.perform_later()
    assert run(handle, stop_when=lambda: True).state == RESUMED  # stopped inside "a"
    Reordered.order = ("b", "a")
    try:
        outcome = run(handle)
    finally:
        Reordered.order = ("a", "b")
    assert outcome.state == FAILED and isinstance(outcome.error, quebec.InvalidStepError)
    assert "found where the job was to resume from step 'a'" in str(outcome.error)


class FlakyAfterAdvancing(quebec.BaseClass, quebec.Continuable):
    max_resumptions = 2

    def perform(self, fail=True):
        with self.step("work", start=0) as step:
            record(self, "at", step.cursor)
            step.advance()
            if fail:
                raise ValueError("flaky")


def test_an_error_after_advancing_resumes_until_max_resumptions():
    handle = FlakyAfterAdvancing.perform_later()
    first, second = run(handle), run(handle)
    assert first.state == second.state == RESUMED
    assert first.retry_at is not None and isinstance(first.error, ValueError)
    third = run(handle)
    assert third.state == FAILED and isinstance(third.error, quebec.ResumeLimitError)
    assert "resumed 2 times" in str(third.error) and isinstance(third.error.__cause__, ValueError)
    assert labels() == [("at", 0), ("at", 1), ("at", 2)]


def test_an_error_after_advancing_fails_when_the_class_says_so(monkeypatch):
    monkeypatch.setattr(FlakyAfterAdvancing, "resume_errors_after_advancing", False)
    outcome = run(FlakyAfterAdvancing.perform_later())
    assert outcome.state == FAILED and isinstance(outcome.error, ValueError)


class Isolated(quebec.BaseClass, quebec.Continuable):
    def perform(self):
        self.step("first", lambda: record(self, "first"))
        self.step("alone", lambda: record(self, "alone"), isolated=True)
        self.step("last", lambda: record(self, "last"))


def test_an_isolated_step_runs_in_a_run_of_its_own():
    handle = Isolated.perform_later()
    assert [run(handle).state for _ in range(3)] == [RESUMED, RESUMED, FINISHED]
    assert labels() == [("first", None), ("alone", None), ("last", None)]


class OneLiners(quebec.BaseClass, quebec.Continuable):
    def perform(self):
        with self.step("a"):
            record(self, "a")  # noqa: E701 (a body on the line of its with)
        with self.step("b", start=0) as step:
            step.set("halfway")
            record(self, "b", step.resumed)


def test_a_skipped_steps_body_does_not_run_even_on_the_line_of_its_with():
    handle = OneLiners.perform_later()
    assert run(handle, stop_when=lambda: JobRun.objects.filter(label="a").exists()).state == RESUMED
    assert run(handle).state == FINISHED
    assert labels() == [("a", None), ("b", False)]  # stopped before "b" began: not a resumed step


class NoStart(quebec.BaseClass, quebec.Continuable):
    def perform(self):
        with self.step("rows") as step:
            step.advance()


for job_class in (Nested, Repeated, Reordered, FlakyAfterAdvancing, Isolated, OneLiners, NoStart):
    quebec.default.register_job(job_class)


def test_advance_needs_a_number():
    outcome = run(NoStart.perform_later())
    assert isinstance(outcome.error, quebec.InvalidStepError) and "give the step a start=0" in str(outcome.error)


def test_perform_now_runs_every_step_and_raises_errors_as_before():
    BackfillJob.perform_now(3, pause=0)
    assert [label for label, _ in labels()] == ["prepare", "item", "item", "item", "finish"]
    with pytest.raises(ValueError):
        FlakyAfterAdvancing.perform_now()


def test_100000_progress_reports_cost_a_write_a_second():
    handle = ProgressJob.perform_later(100_000, 3)
    with CaptureQueriesContext(connection) as queries:
        outcome = run(handle)
    writes = [query for query in queries if query["sql"].startswith("UPDATE") and "progress" in query["sql"]]
    assert outcome.state == FINISHED
    assert 3 <= len(writes) <= 5  # at 0, 1 and 2 seconds, maybe 3, and the last value at the end
    assert Job.objects.get(pk=handle.id).progress["done"] == 100_000


def test_a_job_that_reports_nothing_sends_no_statement_for_it():
    handle = SleepJob.perform_later(0, label=None)
    with CaptureQueriesContext(connection) as queries:
        outcome = run(handle)
    assert outcome.state == FINISHED and len(queries) == 1  # the helper loading the job


class AdvancesInATransaction(quebec.BaseClass, quebec.Continuable):
    def perform(self):
        from django.db import transaction

        with self.step("rows", start=0) as step:
            with transaction.atomic():
                record(self, "row", step.cursor)
                step.advance()  # inside the transaction: neither stored nor a place to stop
                raise ValueError("rolled back")


quebec.default.register_job(AdvancesInATransaction)


def test_a_cursor_moved_inside_a_rolled_back_transaction_is_not_kept():
    handle = AdvancesInATransaction.perform_later()
    outcome = run(handle, stop_when=lambda: True)
    assert outcome.state == RESUMED and isinstance(outcome.error, ValueError)
    assert Job.objects.get(pk=handle.id).continuation["current"] == ["rows", 0]
    assert not JobRun.objects.exists()


def test_cancelling_a_ready_job_gives_back_its_concurrency_slot():
    from quebec.models import Semaphore
    from tests.testapp.jobs import SoloJob

    first, second = SoloJob.perform_later("k"), SoloJob.perform_later("k")
    assert (first.status, second.status) == ("ready", "blocked")
    assert quebec.cancel(first.id) == "discarded"
    assert second.status == "ready"  # the slot the cancelled job held went to the next in line
    assert Semaphore.objects.get(key="SoloJob/k").value == 0
