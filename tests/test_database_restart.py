"""PostgreSQL restarted under a running worker: it waits, resumes, and loses nothing."""

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

import quebec
from quebec.models import ClaimedExecution, FailedExecution, Job
from tests.conftest import wait_until
from tests.testapp.jobs import RecordJob
from tests.testapp.models import JobRun

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]


def restart_postgresql():
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True)


def can_restart():
    return (
        connection.vendor == "postgresql"
        and shutil.which("pg_ctlcluster")
        and os.geteuid() == 0
        and Path("/etc/postgresql").is_dir()
    )


def test_worker_survives_a_postgresql_restart(quebec_run):
    if not can_restart():
        if os.environ.get("CI") == "true" and connection.vendor == "postgresql":
            pytest.fail("CI must be able to restart the local PostgreSQL (pg_ctlcluster as root)")
        pytest.skip("needs the local PostgreSQL cluster and the rights to restart it")
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
