"""``manage.py quebec_run`` as a real process: jobs run, signals stop it cleanly."""

import signal

import pytest

import quebec
from quebec.models import ClaimedExecution, Job, Process
from tests.conftest import wait_until
from tests.testapp.jobs import RecordJob, SleepJob, SwitchIntervalJob
from tests.testapp.models import JobRun

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]

FAST = {"QUEBEC_WORKER_POLLING_INTERVAL": "0.05", "QUEBEC_DISPATCHER_POLLING_INTERVAL": "0.1"}


def all_finished():
    return not Job.objects.filter(finished_at__isnull=True).exists()


def test_runs_jobs_then_stops_on_sigterm_leaving_no_claims(quebec_run):
    quebec.perform_all_later(RecordJob.build(f"before-{index}") for index in range(10))
    process = quebec_run("-v", "2", env=FAST)  # each job's "Performed" line is DEBUG
    process.wait_for_output("Quebec running")
    handles = [RecordJob.perform_later(f"after-{index}") for index in range(10)]
    handles.append(RecordJob.set(wait=1).perform_later("scheduled"))
    wait_until(all_finished, message="all jobs to finish")
    assert process.stop(signal.SIGTERM) == 0
    assert JobRun.objects.count() == 21
    assert not ClaimedExecution.objects.exists()
    assert not Process.objects.exists()
    output = process.output()
    assert "Received SIGTERM; shutting down" in output and "Performed tests.testapp.jobs.RecordJob" in output


def test_sigint_lets_a_running_job_finish_within_the_shutdown_timeout(quebec_run):
    handle = SleepJob.perform_later(1.0, label="completed")
    process = quebec_run(env={**FAST, "QUEBEC_SHUTDOWN_TIMEOUT": "10"})
    wait_until(lambda: handle.status == "claimed")
    assert process.stop(signal.SIGINT) == 0
    assert handle.status == "finished"
    assert JobRun.objects.get().label == "completed"


def test_a_job_outliving_the_shutdown_timeout_goes_back_to_ready(quebec_run):
    handle = SleepJob.perform_later(30, label="never")
    process = quebec_run(env={**FAST, "QUEBEC_SHUTDOWN_TIMEOUT": "0.5"})
    wait_until(lambda: handle.status == "claimed")
    assert process.stop(signal.SIGTERM, timeout=20) == 0
    assert handle.status == "ready"
    assert not ClaimedExecution.objects.exists() and not Process.objects.exists()
    assert "released 1 unfinished job(s) back to ready" in process.output()


def test_only_dispatcher_runs_no_worker(quebec_run):
    handle = RecordJob.set(wait=0.5).perform_later("dispatched")
    process = quebec_run("--only", "dispatcher", env=FAST)
    wait_until(lambda: handle.status == "ready", timeout=15)
    assert process.stop() == 0
    assert not JobRun.objects.exists()


def test_configuration_errors_stop_it_at_start_naming_the_problem(quebec_run, tmp_path):
    bad = tmp_path / "queue.yml"
    bad.write_text("workers:\n  - threads: 0\n")
    process = quebec_run("--config", str(bad))
    assert process.wait() != 0
    assert f"{bad}: workers[0]: threads must be a positive integer, got 0" in process.output()
    process = quebec_run("--only", "worker,gardener")
    assert process.wait() != 0
    assert "--only takes a comma-separated list of worker, dispatcher" in process.output()


def test_queues_option_picks_the_queues_the_worker_reads(quebec_run):
    mail = RecordJob.set(queue="mail").perform_later("mail")
    other = RecordJob.set(queue="default").perform_later("default")
    process = quebec_run("--queues", "mail,reports", "--only", "worker", env={**FAST, "QUEBEC_QUEUES": "default"})
    wait_until(lambda: mail.status == "finished", message="the mail job to run")
    assert process.stop() == 0
    assert other.status == "ready"
    assert list(JobRun.objects.values_list("label", flat=True)) == ["mail"]


@pytest.mark.parametrize("setting, expected", [(None, 0.005), ("1ms", 0.001), ("none", 0.005)])
def test_a_process_running_workers_takes_the_gil_switch_interval_set(quebec_run, setting, expected):
    handle = SwitchIntervalJob.perform_later()
    env = FAST if setting is None else {**FAST, "QUEBEC_WORKER_SWITCH_INTERVAL": setting}
    process = quebec_run(env=env)
    wait_until(lambda: handle.status == "finished")
    assert process.stop() == 0
    assert Job.objects.get(pk=handle.id).return_value == pytest.approx(expected)  # 0.005: Python's own
