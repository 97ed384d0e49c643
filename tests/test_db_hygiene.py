"""What a job leaves on its worker thread's connection does not reach the next job on that thread.

Each worker here has one thread, so every job runs on the connection the job before it used.
"""

from collections import Counter

import pytest
from django.db import connection

from quebec.db.connection import transaction_pooled
from quebec.models import FailedExecution, Job
from tests.conftest import finished, wait_until
from tests.testapp.jobs import (
    AdvisoryLockJob,
    BreakConnectionJob,
    ConnectionIdJob,
    LeaveSessionStateJob,
    LeaveTransactionOpenJob,
    ProbeSessionJob,
    RecordJob,
)
from tests.testapp.models import JobRun

pytestmark = pytest.mark.django_db(transaction=True)
postgresql_only = pytest.mark.skipif("connection.vendor != 'postgresql'")
server_only = pytest.mark.skipif("connection.vendor == 'sqlite'")
# Behind a transaction pooler each transaction may get another server session.
direct_only = pytest.mark.skipif(
    "transaction_pooled(connection)", reason="a pooler lends a session per transaction, not per connection"
)


@pytest.mark.parametrize("how", ["begin", "autocommit-off"])
def test_a_transaction_left_open_fails_its_job_and_the_next_jobs_commit(start, how):
    leaver = LeaveTransactionOpenJob.perform_later(how)
    after = [RecordJob.perform_later(f"after-{index}") for index in range(3)]
    start(threads=1, preserve_finished_jobs=True)
    wait_until(lambda: finished(leaver, *after), timeout=20, message="the jobs to end")

    assert leaver.status == "failed"
    failure = FailedExecution.objects.get(job_id=leaver.id)
    assert failure.exception_class == "quebec.errors.TransactionLeftOpenError"
    assert "LeaveTransactionOpenJob left a transaction open on database connection 'default'" in failure.message
    assert [handle.status for handle in after] == ["finished"] * 3
    # The open transaction's write is rolled back; the writes of the jobs after it are committed.
    labels = Counter(JobRun.objects.values_list("label", flat=True))
    assert labels == {"after-0": 1, "after-1": 1, "after-2": 1}
    assert set(Job.objects.values_list("executions", flat=True)) == {1}, "a job ran twice"


@server_only
@direct_only  # behind a pooler a session lock stays on a server session other clients get
def test_a_lock_taken_by_a_failing_job_is_released(start):
    handle = AdvisoryLockJob.perform_later(4242)
    start(threads=1)
    wait_until(lambda: finished(handle), message="the job to fail")
    assert handle.status == "failed"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_try_advisory_lock(4242)")
            assert cursor.fetchone()[0] is True, "the failed job's advisory lock is still held"
            cursor.execute("SELECT pg_advisory_unlock(4242)")
        else:
            cursor.execute("SELECT GET_LOCK('quebec-test-4242', 0)")
            assert cursor.fetchone()[0] == 1, "the failed job's named lock is still held"
            cursor.execute("SELECT RELEASE_LOCK('quebec-test-4242')")


@postgresql_only
@direct_only
def test_settings_and_temporary_tables_do_not_reach_the_next_job(start):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('work_mem')")
        default_work_mem = cursor.fetchone()[0]
    leaver = LeaveSessionStateJob.perform_later()
    probe = ProbeSessionJob.perform_later()
    start(threads=1)
    wait_until(lambda: finished(leaver, probe), message="the jobs to finish")
    assert (leaver.status, probe.status) == ("finished", "finished")
    seen = JobRun.objects.get(label="probe").value
    assert seen == {"work_mem": default_work_mem, "temp_table": False, "time_zone": connection.timezone_name}


@pytest.mark.parametrize("how", ["close", "terminate"])
def test_a_job_that_breaks_its_connection_does_not_stop_the_worker(start, how):
    if how == "terminate" and connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    breaker = BreakConnectionJob.perform_later(how)
    after = RecordJob.perform_later("after")
    worker = start(threads=1)
    wait_until(lambda: finished(breaker, after), message="the jobs to end")
    assert after.status == "finished" and JobRun.objects.get().label == "after"
    assert breaker.status == ("finished" if how == "close" else "failed")
    assert worker.is_alive()
    assert Job.objects.get(pk=after.id).executions == 1


@direct_only
def test_the_connection_is_kept_from_job_to_job(start):
    """Cleaning up after a job must not cost a new connection per job."""
    handles = [ConnectionIdJob.perform_later() for _ in range(5)]
    start(threads=1)
    wait_until(lambda: finished(*handles), message="the jobs to finish")
    assert all(handle.status == "finished" for handle in handles)
    assert len(set(JobRun.objects.values_list("value", flat=True))) == 1


@postgresql_only
def test_behind_a_transaction_pooler_the_session_is_left_to_its_other_clients(start, monkeypatch):
    """A pooled server session serves other clients between our transactions: resetting it would
    undo their settings, so only a transaction left open is undone (the test above still holds)."""
    if transaction_pooled(connection):
        pytest.skip("the test marks a direct connection as pooled, to see the session it keeps")
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)
    leaver = LeaveSessionStateJob.perform_later()
    probe = ProbeSessionJob.perform_later()
    start(threads=1)
    wait_until(lambda: finished(leaver, probe), message="the jobs to finish")
    assert JobRun.objects.get(label="probe").value["work_mem"] == "7777kB"
