"""Quebec as a django.tasks backend: Django's expectations of a backend, on a real worker."""

import threading
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.tasks import TaskResultStatus, task_backends
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.utils import timezone

from quebec.backends import QuebecBackend
from quebec.models import Job, ReadyExecution, ScheduledExecution
from tests.conftest import wait_until
from tests.testapp import tasks
from tests.testapp.jobs import RecordJob
from tests.testapp.models import JobRun

pytestmark = pytest.mark.django_db(transaction=True)


def finished(*results):
    for result in results:
        result.refresh()
    return all(result.is_finished for result in results)


def labels():
    return list(JobRun.objects.order_by("pk").values_list("label", flat=True))


def test_capabilities_are_the_ones_quebec_honours():
    backend = task_backends["default"]
    assert isinstance(backend, QuebecBackend)
    assert (
        backend.supports_defer,
        backend.supports_async_task,
        backend.supports_get_result,
        backend.supports_priority,
    ) == (True, True, True, True)


def test_enqueue_writes_a_ready_job_and_returns_its_result():
    result = tasks.add.using(priority=30).enqueue(2, 3)
    assert result.status == TaskResultStatus.READY and result.backend == "default"
    assert (result.args, result.kwargs, result.worker_ids, result.errors) == ([2, 3], {}, [], [])
    job = Job.objects.get(pk=int(result.id))
    assert (job.class_name, job.queue_name, job.priority) == ("tests.testapp.tasks.add", "default", -30)
    assert ReadyExecution.objects.filter(job=job).exists() and result.enqueued_at == job.created_at
    fetched = tasks.add.get_result(result.id)
    assert (fetched.status, fetched.args, fetched.task.priority, fetched.task.queue_name) == (
        TaskResultStatus.READY,
        [2, 3],
        30,
        "default",
    )
    with pytest.raises(ValueError, match="not finished"):
        fetched.return_value  # noqa: B018


def test_a_task_runs_on_a_worker_and_its_result_is_complete(start):
    result = tasks.add.enqueue(2, b=40)
    worker = start()
    wait_until(lambda: finished(result), message="the task to finish")
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 42
    assert result.attempts == 1 and result.worker_ids == [worker.name] and result.errors == []
    assert result.enqueued_at <= result.started_at == result.last_attempted_at <= result.finished_at
    assert Job.objects.get(pk=int(result.id)).return_value == 42


def test_priorities_keep_djangos_order_and_share_a_worker_with_job_classes(start):
    for priority in (-100, 0, 100, 50):
        tasks.record_label.using(priority=priority).enqueue(f"task {priority}")
    RecordJob.perform_later("job 0")  # a BaseClass job at Quebec's priority 0
    tasks.record_label.using(priority=-1).enqueue("task -1")
    start(threads=1)
    wait_until(lambda: JobRun.objects.count() == 6, message="all six to run")
    assert labels() == ["task 100", "task 50", "task 0", "job 0", "task -1", "task -100"]


def test_run_after_defers_the_task(start):
    run_after = timezone.now() + timedelta(seconds=1.5)
    result = tasks.record_label.using(run_after=run_after).enqueue("late")
    assert ScheduledExecution.objects.filter(job_id=int(result.id)).exists()
    assert tasks.record_label.get_result(result.id).status == TaskResultStatus.READY
    from quebec.processes.dispatcher import Dispatcher

    start()
    start(Dispatcher)
    wait_until(lambda: finished(result), message="the deferred task")
    assert JobRun.objects.get().created_at >= run_after
    assert result.started_at >= run_after


def test_queues_and_priorities_are_validated():
    with pytest.raises(InvalidTask, match="Queue 'elsewhere' is not valid"):
        tasks.add.using(queue_name="elsewhere")
    with pytest.raises(InvalidTask, match="priority"):
        tasks.add.using(priority=101)
    with pytest.raises(TypeError):
        tasks.add.enqueue(object(), 1)  # not JSON: refused at enqueue, not in the worker
    assert not Job.objects.exists()


def test_a_failing_task_reports_its_error(start):
    result = tasks.fail.enqueue("<b>bad</b> input")
    unstorable = tasks.return_unstorable.enqueue()
    start()
    wait_until(lambda: finished(result, unstorable))
    assert result.status == TaskResultStatus.FAILED and result.attempts == 1
    (error,) = result.errors
    assert error.exception_class_path == "builtins.ValueError" and error.exception_class is ValueError
    assert "ValueError: <b>bad</b> input" in error.traceback and result.finished_at is not None
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert unstorable.status == TaskResultStatus.FAILED
    assert unstorable.errors[0].exception_class_path == "builtins.TypeError"


def test_a_running_task_shows_as_running(start, tmp_path):
    release = tmp_path / "release"
    result = tasks.wait_for_file.enqueue(str(release))
    worker = start()
    wait_until(lambda: tasks.wait_for_file.get_result(result.id).status == TaskResultStatus.RUNNING)
    running = tasks.wait_for_file.get_result(result.id)
    assert running.worker_ids == [worker.name] and running.attempts == 1
    assert running.started_at is not None and running.finished_at is None
    release.touch()
    wait_until(lambda: finished(result))
    assert result.return_value == "released"


def test_retries_come_from_task_options_and_the_context_counts_attempts(start):
    result = tasks.flaky_until_third.enqueue()
    start()
    wait_until(lambda: finished(result))
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == "third time"
    assert result.attempts == 3 and len(result.worker_ids) == 3
    assert [error.exception_class_path for error in result.errors] == ["tests.testapp.tasks.Flaky"] * 2
    assert result.started_at < result.last_attempted_at < result.finished_at


def test_takes_context_sees_the_running_result(start):
    result = tasks.record_context.enqueue("with context")
    worker = start()
    wait_until(lambda: finished(result))
    seen = JobRun.objects.get(label="with context").value
    assert seen == {"attempt": 1, "status": "RUNNING", "worker_ids": [worker.name]}
    assert result.return_value == 1


def test_async_tasks_are_awaited(start):
    result = tasks.double.enqueue(21)
    start()
    wait_until(lambda: finished(result))
    assert result.return_value == 42


def test_signals_are_sent_at_each_stage(start):
    seen = []
    lock = threading.Lock()

    def receiver(signal_name):
        def receive(sender, task_result, **kwargs):
            with lock:
                seen.append((signal_name, sender, task_result.status, task_result.id))

        return receive

    receivers = {name: receiver(name) for name in ("enqueued", "started", "finished")}
    task_enqueued.connect(receivers["enqueued"])
    task_started.connect(receivers["started"])
    task_finished.connect(receivers["finished"])
    try:
        ok = tasks.add.enqueue(1, 1)
        bad = tasks.fail.enqueue("no")
        start()
        wait_until(lambda: finished(ok, bad))
    finally:
        for signal, name in ((task_enqueued, "enqueued"), (task_started, "started"), (task_finished, "finished")):
            signal.disconnect(receivers[name])
    assert sorted(seen, key=lambda event: (event[3], event[0])) == sorted(
        [
            ("enqueued", QuebecBackend, "READY", ok.id),
            ("started", QuebecBackend, "RUNNING", ok.id),
            ("finished", QuebecBackend, "SUCCESSFUL", ok.id),
            ("enqueued", QuebecBackend, "READY", bad.id),
            ("started", QuebecBackend, "RUNNING", bad.id),
            ("finished", QuebecBackend, "FAILED", bad.id),
        ],
        key=lambda event: (event[3], event[0]),
    )


def test_enqueue_joins_the_callers_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = tasks.add.enqueue(1, 2)
        assert Job.objects.filter(pk=int(rolled_back.id)).exists()
        raise RuntimeError("the view failed")
    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result(rolled_back.id)
    with transaction.atomic():
        kept = tasks.add.enqueue(1, 2)
    assert tasks.add.get_result(kept.id).status == TaskResultStatus.READY


def test_unknown_and_foreign_ids_do_not_exist():
    job = RecordJob.perform_later("not a task")
    for result_id in ("999999999", "not-a-number", str(job.id)):
        with pytest.raises(TaskResultDoesNotExist):
            task_backends["default"].get_result(result_id)
    other = tasks.fail.enqueue("x")
    with pytest.raises(TaskResultMismatch):
        tasks.add.get_result(other.id)


def test_async_enqueue_and_get_result(start):
    async def enqueue_and_read():
        result = await tasks.add.aenqueue(20, 22)
        fetched = await tasks.add.aget_result(result.id)
        return result, fetched

    result, fetched = async_to_sync(enqueue_and_read)()
    assert fetched.id == result.id and fetched.status == TaskResultStatus.READY
    start()
    wait_until(lambda: finished(result))
    async_to_sync(result.arefresh)()
    assert result.return_value == 42


def test_concurrency_options_limit_overlap(start):
    results = [tasks.one_per_account.enqueue("acme") for _ in range(3)]
    start(threads=3)
    wait_until(lambda: finished(*results))
    assert labels() == ["start-acme", "end-acme"] * 3


def test_check_reports_misconfiguration(settings):
    settings.QUEBEC = {"workers": [{"queues": ["default"], "threads": 1}], "preserve_finished_jobs": False}
    backend = QuebecBackend("broken", {"QUEUES": ["default", "reports", ""], "OPTIONS": {"databse": "x"}})
    ids = sorted(message.id for message in backend.check())
    assert ids == ["quebec.E004", "quebec.E005"]
    backend = QuebecBackend("partial", {"QUEUES": ["default", "reports"], "OPTIONS": {"database": "nowhere"}})
    messages = {message.id: message.msg for message in backend.check()}
    assert set(messages) == {"quebec.E004", "quebec.W002", "quebec.W003"}
    assert "'nowhere'" in messages["quebec.E004"] and "reports" in messages["quebec.W002"]
    settings.QUEBEC = {}
    assert QuebecBackend("fine", {"QUEUES": ["default"]}).check() == []


def test_a_task_runs_in_a_real_quebec_run_process(quebec_run):
    result = tasks.add.enqueue(5, 6)
    process = quebec_run(env={"QUEBEC_WORKER_POLLING_INTERVAL": "0.05"})
    wait_until(lambda: finished(result), message=f"the task; log:\n{process.output()}")
    assert result.return_value == 11 and result.worker_ids[0].startswith("worker-")


def test_system_exit_fails_the_task_and_django_logs_each_stage(start, caplog):
    caplog.set_level("DEBUG", logger="django.tasks")
    result = tasks.exit_abruptly.enqueue()
    worker = start()
    wait_until(lambda: finished(result))
    assert result.status == TaskResultStatus.FAILED and result.errors[0].exception_class is SystemExit
    assert result.errors[0].traceback.endswith("SystemExit: This task called sys.exit\n")
    after = tasks.add.enqueue(1, 2)
    wait_until(lambda: finished(after))
    assert after.return_value == 3 and worker.is_alive()
    messages = [record.getMessage() for record in caplog.records if record.name == "django.tasks"]
    mine = [message for message in messages if f"id={result.id} " in message]
    assert ["enqueued" in mine[0], "state=RUNNING" in mine[1], "state=FAILED" in mine[2]] == [True] * 3


def test_results_stay_readable_when_the_queue_was_overridden(settings):
    settings.QUEBEC = {"force_override_queue": "branch-x"}
    result = tasks.add.enqueue(1, 2)
    assert Job.objects.get(pk=int(result.id)).queue_name == "branch-x"
    fetched = tasks.add.get_result(result.id)
    assert fetched.status == TaskResultStatus.READY and fetched.task.queue_name == "default"


def test_tasks_are_registered_as_they_are_defined_so_no_row_imports_them():
    from quebec.registry import find_job_class

    # tests.testapp.tasks is imported by autodiscovery, as every installed app's tasks module.
    assert find_job_class("tests.testapp.tasks.add").task.func is tasks.add.func
    assert find_job_class("demo.tasks.resize_image").task.module_path == "demo.tasks.resize_image"


def test_a_unique_task_is_enqueued_once_and_its_duplicate_sends_no_signal():
    sent = []

    def receive(sender, task_result, **kwargs):
        sent.append(task_result.id)

    task_enqueued.connect(receive)
    try:
        first = tasks.sync_account.enqueue("acme")
        again = tasks.sync_account.enqueue("acme")
        other = tasks.sync_account.enqueue("globex")
        by_arguments = [
            tasks.refresh_feed.enqueue("news"),
            tasks.refresh_feed.enqueue(feed="news"),
            tasks.refresh_feed.enqueue("news"),
        ]
    finally:
        task_enqueued.disconnect(receive)
    assert again.id == first.id != other.id
    assert again.status == TaskResultStatus.READY
    assert by_arguments[0].id == by_arguments[2].id != by_arguments[1].id  # a keyword is another call
    assert sent == [first.id, other.id, by_arguments[0].id, by_arguments[1].id]
    assert Job.objects.get(pk=int(first.id)).unique_key == "tests.testapp.tasks.sync_account/acme"


def test_a_task_reports_progress_that_get_result_exposes(start):
    result = tasks.report_progress.enqueue(5)
    start()
    wait_until(lambda: finished(result), message="the task to finish")
    assert result.status == TaskResultStatus.SUCCESSFUL
    reported = task_backends["default"].get_result(result.id).progress
    assert (reported["done"], reported["total"], reported["message"]) == (5, 5, "round")


def test_a_cancelled_task_stops_at_its_next_checkpoint(start):
    import quebec

    result = tasks.report_progress.enqueue(600)
    start()
    wait_until(lambda: JobRun.objects.filter(label="started").exists(), message="the task to start")
    assert quebec.cancel(result.id, by="ops") == "requested"
    wait_until(lambda: finished(result), timeout=10, message="the task to stop")
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[-1].exception_class_path == "quebec.errors.JobCancelled"
    assert task_backends["default"].get_result(result.id).progress["done"] < 600
