"""PostgreSQL restarted under a running worker: it waits, resumes, and loses nothing."""

import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

import quebec
from quebec.models import ClaimedExecution, FailedExecution, Job, Process
from tests.conftest import wait_until
from tests.testapp.jobs import RecordJob, SleepJob
from tests.testapp.models import JobRun

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]


def restart_postgresql(action="restart"):
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=True)


def can_restart():
    return (
        connection.vendor == "postgresql"
        and shutil.which("pg_ctlcluster")
        and os.geteuid() == 0
        and Path("/etc/postgresql").is_dir()
    )


def needs_restart():
    if not can_restart():
        if os.environ.get("CI") == "true" and connection.vendor == "postgresql":
            pytest.fail("CI must be able to restart the local PostgreSQL (pg_ctlcluster as root)")
        pytest.skip("needs the local PostgreSQL cluster and the rights to restart it")


def test_worker_survives_a_postgresql_restart(quebec_run):
    needs_restart()
    process = quebec_run(env={"QUEBEC_WORKER_POLLING_INTERVAL": "0.05", "QUEBEC_WORKER_THREADS": "3"})
    process.wait_for_output("Quebec running")
    handles = quebec.perform_all_later(RecordJob.build(str(index)) for index in range(300))
    wait_until(lambda: JobRun.objects.count() >= 30)
    restart_postgresql()
    connection.close()
    wait_until(_at_rest, timeout=120, interval=0.5, message="every job to end after the restart")
    assert process.popen.poll() is None, "quebec_run should have survived the restart"
    assert process.stop() == 0

    runs = Counter(JobRun.objects.values_list("job_id", flat=True))
    assert not runs or max(runs.values()) == 1, "a job ran twice"
    failed = set(FailedExecution.objects.values_list("job_id", flat=True))
    for handle in handles:
        assert handle.status in ("finished", "failed")
        if handle.status == "finished":
            assert runs[handle.id] == 1
    # Only jobs caught by the restart itself may have failed, with the database's error.
    assert len(failed) <= 3 * 2
    assert not ClaimedExecution.objects.exists()


def _at_rest():
    return not Job.objects.with_status().filter(status__in=["ready", "claimed", "scheduled"]).exists()


def test_a_worker_that_dies_while_postgresql_is_down_has_its_jobs_dealt_with_once_it_is_back(quebec_run):
    """The supervisor reaps a dead child once; dealing with its jobs must outlive an outage, not
    wait for the heartbeat threshold (here far longer than the test)."""
    needs_restart()
    supervisor = quebec_run(
        env={
            "QUEBEC_SUPERVISOR": "1",
            "QUEBEC_WORKER_THREADS": "2",
            "QUEBEC_WORKER_POLLING_INTERVAL": "0.05",
            "QUEBEC_PROCESS_ALIVE_THRESHOLD": "1h",
        }
    )
    handles = [SleepJob.perform_later(120) for _ in range(2)]
    wait_until(lambda: ClaimedExecution.objects.count() == 2, message="the jobs to be claimed")
    [worker_pid] = Process.objects.filter(kind="Worker").values_list("pid", flat=True)
    connection.close()
    restart_postgresql("stop")
    try:
        os.kill(worker_pid, signal.SIGKILL)
        supervisor.wait_for_output(f"worker process {worker_pid} exited with signal SIGKILL")
        time.sleep(1)  # the supervisor tries to deal with the jobs, and cannot
    finally:
        restart_postgresql("start")
    wait_until(lambda: all(handle.status == "failed" for handle in handles), timeout=60, interval=0.5)
    for handle in handles:
        message = FailedExecution.objects.get(job_id=handle.id).message
        assert message == f"worker process {worker_pid} exited with signal SIGKILL"
    assert supervisor.stop() == 0
