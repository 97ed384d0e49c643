"""A user's typed code against Quebec's public API, checked by ``python -m mypy`` (strict) and
never run: each ``assert_type`` pins what a call gives, and each ``type: ignore[code]`` pins a
misuse that must stay an error (strict mypy reports an ignore that is no longer needed)."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Literal, assert_type

import quebec
from quebec import (
    BaseClass,
    ConcurrencyConflict,
    Continuable,
    DiscardStrategy,
    JobHandle,
    Quebec,
    RescueStrategy,
    RetryStrategy,
    UniqueConflict,
    cancel,
    perform_all_later,
)
from quebec import conf, routing
from quebec.continuation import Step
from quebec.enqueue import ConfiguredJob, PendingJob
from quebec.models import Batch, RecurringTask


def _log_gave_up(job: BaseClass, error: BaseException) -> None:
    job.logger.warning("gave up: %s", error)


class SendEmail(BaseClass):
    queue_as = "mail"
    priority = 10
    retry_on = [
        RetryStrategy(ConnectionError, wait=5, attempts=3, handler=_log_gave_up),
        RetryStrategy((TimeoutError, OSError), wait="polynomially_longer"),
        RetryStrategy(LookupError, wait=lambda executions: timedelta(seconds=executions * 2)),
    ]
    discard_on = [DiscardStrategy(KeyError)]
    rescue_from = [RescueStrategy(ValueError, handler=_log_gave_up)]
    timeout = timedelta(minutes=2)
    unique_until = "finished"
    unique_for = timedelta(hours=1)
    unique_on_conflict = UniqueConflict.Raise
    concurrency_limit = 2
    concurrency_on_conflict = ConcurrencyConflict.Discard

    def perform(self, user_id: int, subject: str = "") -> str:
        self.progress(1, 2, "sending")
        assert_type(self.cancel_requested, bool)
        assert_type(self.executions, int)
        return f"{user_id}: {subject}"

    def concurrency_key(self, user_id: int, subject: str = "") -> str:
        return str(user_id)

    def around_perform(self) -> Iterator[None]:
        yield


class Misspelt(BaseClass):
    unique_until = "finishd"  # type: ignore[assignment]


class ByCustomer(BaseClass):
    @staticmethod
    def _queue(customer: str) -> str:
        return f"customer-{customer}"

    queue_as = _queue

    def perform(self, customer: str) -> None:
        pass


def enqueue() -> None:
    handle = SendEmail.perform_later(1, subject="hello")
    assert_type(handle, JobHandle)
    assert_type(handle.id, int | None)
    assert_type(handle.status, str | None)
    assert_type(handle.progress, dict[str, Any] | None)
    assert_type(handle.duplicate, bool)
    assert_type(handle.aborted, bool)
    assert_type(handle.refresh(), JobHandle)
    assert_type(handle.cancel(by="support"), Literal["discarded", "requested"] | None)

    configured = SendEmail.set(wait=timedelta(minutes=5), queue="bulk", priority=0)
    assert_type(configured, ConfiguredJob)
    assert_type(configured.perform_later(2), JobHandle)
    SendEmail.set(queue=3)  # type: ignore[arg-type]
    SendEmail.set(wait="soon")  # type: ignore[arg-type]

    builds = [SendEmail.build(user_id) for user_id in range(3)]
    assert_type(builds[0], PendingJob)
    assert_type(perform_all_later(builds), list[JobHandle])
    assert_type(SendEmail.perform_now(3), Any)

    assert_type(cancel(42), Literal["discarded", "requested"] | None)


jobs = Quebec(using="default")


@jobs.register_job
class Registered(BaseClass):
    def perform(self) -> None:
        pass


assert_type(Registered, type[Registered])
assert_type(Registered.set(), ConfiguredJob)


@jobs.on_worker_start
def warm_cache(worker: object) -> None:
    pass


assert_type(warm_cache(None), None)  # the decorator gives the function back, signature and all


@quebec.command
def nightly_report(day: str) -> int:
    return len(day)


assert_type(nightly_report("monday"), int)
nightly_report(3)  # type: ignore[arg-type]


class ImportRows(BaseClass, Continuable):
    steps = ["download", "load"]
    max_resumptions = 5

    def perform(self, url: str) -> None:
        with self.step("download", start=0) as step:
            assert_type(step, Step)
            step.advance()
        assert_type(self.step("load", self._load), int | None)
        assert_type(self.step("count", lambda: "done"), str | None)
        assert_type(self.resumptions, int)

    def _load(self, step: Step) -> int:
        step.set({"page": 2})
        return 3


def settings_and_tasks() -> None:
    config = conf.get()
    assert_type(config, conf.Config)
    assert_type(config.worker_threads, int)
    assert_type(config.queues, tuple[str, ...] | None)
    with routing.use("second") as alias:
        assert_type(alias, str)
    task = quebec.schedule_recurring_task("reports", schedule="every day at 3am", job_class=SendEmail, args=[1])
    assert_type(task, RecurringTask)
    assert_type(quebec.unschedule_recurring_task("reports"), bool)


def batches(row_ids: list[int]) -> None:
    with quebec.batch(
        on_finish=SendEmail, on_success=SendEmail.set(queue="mail").build("a@b.c"), description="import 42"
    ) as batch:
        for row_id in row_ids:
            SendEmail.perform_later(str(row_id))
    assert_type(batch, Batch)
    assert_type(batch.refresh().progress_percentage, float)
    with batch.enqueue():
        SendEmail.perform_later("late")
    try:
        with batch.enqueue():
            pass
    except quebec.BatchAlreadyFinished:
        pass
    quebec.batch(description=3)  # type: ignore[arg-type]
