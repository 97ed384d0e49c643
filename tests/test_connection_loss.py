"""Workers survive their database connections being killed: no job is lost or run twice."""

from collections import Counter

import pytest
from django.db import connection

import quebec
from quebec.models import ClaimedExecution, Job
from tests.conftest import wait_until
from tests.testapp.jobs import RecordJob
from tests.testapp.models import JobRun

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]


def kill_other_sessions():
    """Terminate every other session on the test database, as a server restart would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]
        cursor.execute("SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()")
        sessions = [row[0] for row in cursor.fetchall()]
        for session in sessions:
            cursor.execute(f"KILL {int(session)}")
        return len(sessions)


@pytest.mark.skipif("connection.vendor == 'sqlite'", reason="SQLite has no server sessions to lose")
def test_jobs_keep_running_when_connections_are_killed(quebec_run):
    process = quebec_run(env={"QUEBEC_WORKER_POLLING_INTERVAL": "0.05", "QUEBEC_WORKER_THREADS": "3"})
    process.wait_for_output("Quebec running")
    first = quebec.perform_all_later(RecordJob.build(f"first-{index}") for index in range(50))
    wait_until(lambda: JobRun.objects.count() >= 50, message="the first jobs")
    assert kill_other_sessions() >= 1
    second = quebec.perform_all_later(RecordJob.build(f"second-{index}") for index in range(50))
    wait_until(lambda: not Job.objects.filter(finished_at__isnull=True).exists(), message="all jobs to finish")
    assert process.stop() == 0

    runs = Counter(JobRun.objects.values_list("job_id", flat=True))
    assert set(runs) == {handle.id for handle in first + second}
    assert set(runs.values()) == {1}
    assert not ClaimedExecution.objects.exists()
