"""Recurring tasks: configuration, the tasks table, dynamic tasks and operations."""

import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

import quebec
from quebec import conf, recurring
from quebec.models import FailedExecution, Job, RecurringExecution, RecurringTask
from quebec.processes.scheduler import Scheduler
from quebec.serialization import serialize_arguments
from tests.conftest import finished, wait_until
from tests.testapp.models import JobRun

pytestmark = pytest.mark.django_db

RECORD = "tests.testapp.jobs.RecordJob"


def static(settings, **tasks):
    settings.QUEBEC = {"recurring": tasks}
    return recurring.load_static_tasks(conf.get())


def test_tasks_from_settings_and_file(settings, tmp_path):
    (tmp_path / "recurring.yml").write_text(
        "development:\n"
        "  cleanup:\n"
        "    class: tests.testapp.jobs.RecordJob\n"
        "    args: [cleanup]\n"
        "    schedule: every day at 3am\n"
        "    queue: maintenance\n"
        "    priority: 5\n"
        "production:\n"
        "  other:\n"
        "    command: tests.testapp.jobs.record_command\n"
        "    schedule: '@hourly'\n"
    )
    tasks = static(
        settings,
        ping={
            "command": "tests.testapp.jobs.record_command",
            "kwargs": {"label": "ping"},
            "schedule": "every 10 seconds",
            "description": "keeps warm",
        },
    )
    assert set(tasks) == {"ping", "cleanup"}
    assert tasks["cleanup"] == {
        "schedule": "every day at 3am",
        "class_name": RECORD,
        "command": "",
        "queue_name": "maintenance",
        "priority": 5,
        "description": "",
        "catch_up": False,
        "arguments": {"args": ["cleanup"], "kwargs": {}},
    }
    assert tasks["ping"]["command"] == "tests.testapp.jobs.record_command"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"class": RECORD, "schedule": "every 7 minutes"},
            r"recurring task 'bad': schedule 'every 7 minutes': .*divide",
        ),
        ({"class": RECORD}, r"'bad': schedule None: a schedule must be a non-empty string"),
        ({"schedule": "@daily"}, "needs exactly one of 'class'"),
        ({"class": "tests.testapp.jobs.Nope", "schedule": "@daily"}, "cannot be imported"),
        ({"class": "tests.testapp.jobs.record", "schedule": "@daily"}, "is not a quebec.BaseClass subclass"),
        ({"class": RECORD, "schedule": "@daily", "every": "day"}, "unknown option"),
        ({"class": RECORD, "schedule": "@daily", "args": "x"}, "args must be a list"),
        ({"class": RECORD, "schedule": "@daily", "args": [object()]}, r"argument args\[0\]"),
    ],
)
def test_invalid_tasks_are_refused_naming_key_text_and_why(settings, entry, message):
    with pytest.raises(conf.ConfigError, match=message):
        static(settings, bad=entry)


def test_sync_adds_changes_and_removes_static_tasks_and_keeps_dynamic_ones(settings):
    quebec.schedule_recurring_task("dynamic", job_class=RECORD, schedule="@daily")
    RecurringTask.objects.sync_static(
        static(settings, a={"class": RECORD, "schedule": "@hourly"}, b={"class": RECORD, "schedule": "@daily"})
    )
    assert set(RecurringTask.objects.values_list("key", "static")) == {("a", True), ("b", True), ("dynamic", False)}
    RecurringTask.objects.sync_static(static(settings, a={"class": RECORD, "schedule": "every 5 minutes"}))
    assert dict(RecurringTask.objects.values_list("key", "schedule")) == {"a": "every 5 minutes", "dynamic": "@daily"}


def test_dynamic_tasks_from_code(settings):
    from tests.testapp.jobs import RecordJob

    task = quebec.schedule_recurring_task("report", job_class=RecordJob, args=["report"], schedule="every hour")
    assert (task.class_name, task.static) == (RECORD, False)
    quebec.schedule_recurring_task("report", job_class=RecordJob, schedule="every 2 hours")
    assert RecurringTask.objects.get().schedule == "every 2 hours"
    with pytest.raises(ValueError, match="recurring task 'x': schedule 'often'"):
        quebec.schedule_recurring_task("x", job_class=RecordJob, schedule="often")
    assert quebec.unschedule_recurring_task("report") is True
    assert quebec.unschedule_recurring_task("report") is False
    RecurringTask.objects.sync_static(static(settings, fixed={"class": RECORD, "schedule": "@daily"}))
    with pytest.raises(ValueError, match="comes from configuration"):
        quebec.unschedule_recurring_task("fixed")
    with pytest.raises(ValueError, match="comes from configuration"):
        quebec.schedule_recurring_task("fixed", job_class=RecordJob, schedule="@hourly")


def test_a_run_is_enqueued_once_whoever_asks():
    task = quebec.schedule_recurring_task(
        "once", job_class=RECORD, args=["x"], schedule="@hourly", queue="cron", priority=3
    )
    run_at = datetime(2026, 11, 30, 11, tzinfo=UTC)
    execution = task.enqueue(run_at)
    assert execution is not None and task.enqueue(run_at) is None
    job = Job.objects.get()
    assert (job.class_name, job.queue_name, job.priority, job.arguments["args"]) == (RECORD, "cron", 3, ["x"])
    assert RecurringExecution.objects.get().job_id == job.pk


def test_operations_run_now_pause_resume_last_and_next_run(transactional_db, start):
    task = quebec.schedule_recurring_task(
        "ops", command="tests.testapp.jobs.record_command", args=["by hand"], schedule="every day at 9am"
    )
    assert task.last_execution() is None
    assert task.next_run(datetime(2026, 11, 30, 10, tzinfo=UTC)) == datetime(2026, 12, 1, 9, tzinfo=UTC)
    task.run_now()
    start()
    wait_until(lambda: JobRun.objects.filter(label="by hand").exists())
    last = task.last_execution()
    wait_until(lambda: task.last_execution().status == "finished")
    assert last.run_at <= timezone.now()
    task.pause()
    assert RecurringTask.objects.get().paused_at is not None
    assert not RecurringTask.objects.active().exists()
    task.resume()
    assert RecurringTask.objects.active().exists()


def scheduler_with():
    return Scheduler({}, settings=conf.get(), quebec=quebec.default)


def test_missed_runs_are_not_replayed_unless_catch_up():
    plain = quebec.schedule_recurring_task("plain", job_class=RECORD, schedule="every minute")
    eager = quebec.schedule_recurring_task("eager", job_class=RECORD, schedule="every minute", catch_up=True)
    scheduler = scheduler_with()
    now = timezone.now()
    scheduler._enqueue_due(plain, now)
    scheduler._enqueue_due(eager, now)
    runs = dict(RecurringExecution.objects.values_list("task_key", "run_at"))
    assert "plain" not in runs
    assert runs["eager"] == eager.parsed_schedule.previous_before(now)


def test_a_clock_jump_forward_enqueues_only_the_latest_run():
    task = quebec.schedule_recurring_task("jump", job_class=RECORD, schedule="every minute")
    scheduler = scheduler_with()
    now = timezone.now()
    scheduler._enqueue_due(task, now)
    scheduler._enqueue_due(task, now + timedelta(hours=3))
    assert RecurringExecution.objects.count() == 1
    assert RecurringExecution.objects.get().run_at == task.parsed_schedule.previous_before(now + timedelta(hours=3))


def test_paused_tasks_are_skipped(transactional_db):
    task = quebec.schedule_recurring_task("paused", job_class=RECORD, schedule="every second")
    task.pause()
    scheduler = scheduler_with()
    scheduler.poll()
    assert not RecurringExecution.objects.exists()
    task.resume()
    scheduler.poll()
    wait_until(lambda: scheduler.poll() is False and RecurringExecution.objects.exists(), timeout=5)


# Commands: only callables the application allowed, never what a row or an argument names.


def test_a_command_argument_naming_any_other_callable_fails_the_job_and_runs_nothing(start, tmp_path):
    from quebec.jobs import RecurringCommandJob

    marker = tmp_path / "ran"
    handle = RecurringCommandJob.perform_later("os.system", [f"touch {marker}"], {})
    start()
    wait_until(lambda: finished(handle))
    failure = FailedExecution.objects.get(job_id=handle.id)
    assert (handle.status, failure.exception_class) == ("failed", "quebec.recurring.UnknownCommand")
    assert "recurring command 'os.system' is not allowed" in failure.message
    assert not marker.exists()


@pytest.mark.subprocess
def test_a_task_row_naming_an_unregistered_command_fails_each_run_and_runs_nothing(
    transactional_db, quebec_run, tmp_path
):
    marker = tmp_path / "ran"
    RecurringTask.objects.create(
        key="planted",
        schedule="every second",
        command="os.system",
        static=False,
        arguments=serialize_arguments([f"touch {marker}"], {}),
    )
    process = quebec_run(env={"QUEBEC_WORKER_POLLING_INTERVAL": "0.05"})
    wait_until(lambda: FailedExecution.objects.count() >= 2, message="two runs of the planted task to fail")
    assert process.stop() == 0
    assert not marker.exists()
    messages = set(FailedExecution.objects.values_list("message", flat=True))
    assert len(messages) == 1 and "recurring command 'os.system' is not allowed" in messages.pop()


def test_registered_and_configured_commands_run(start):
    from quebec.jobs import RecurringCommandJob

    registered = RecurringCommandJob.perform_later("tests.testapp.jobs.record_command", ["registered"], {})
    configured = RecurringCommandJob.perform_later("tests.testapp.jobs.record_configured_command", ["configured"], {})
    start(
        recurring={
            "nightly": {
                "command": "tests.testapp.jobs.record_configured_command",
                "args": ["nightly"],
                "schedule": "every day at 3am",
            }
        }
    )
    wait_until(lambda: finished(registered, configured))
    assert (registered.status, configured.status) == ("finished", "finished")
    assert set(JobRun.objects.values_list("label", flat=True)) == {"registered", "configured"}


def test_dynamic_tasks_take_only_allowed_commands():
    from tests.testapp.jobs import record_command

    task = quebec.schedule_recurring_task("by-function", command=record_command, schedule="@hourly")
    assert task.command == "tests.testapp.jobs.record_command"
    for command in ("os.system", "tests.testapp.jobs.record_configured_command"):
        with pytest.raises(
            ValueError,
            match=rf"recurring task 'x': recurring command '{command}' is not allowed.*"
            "decorate it with @quebec.command",
        ):
            quebec.schedule_recurring_task("x", command=command, schedule="@hourly")
    assert not RecurringTask.objects.filter(key="x").exists()


def test_a_task_row_naming_an_unregistered_class_is_refused_without_importing_it():
    RecurringTask.objects.create(key="planted", schedule="@hourly", class_name="tests.testapp.trap.TrapJob")
    with pytest.raises(quebec.UnknownJobClass, match="unknown job class 'tests.testapp.trap.TrapJob'"):
        RecurringTask.objects.get().run_now()
    assert "tests.testapp.trap" not in sys.modules
    assert not Job.objects.exists()
