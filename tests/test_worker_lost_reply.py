"""A claim that commits while its connection dies: the jobs it claimed are not stranded.

The worker never hears which jobs the statement claimed, so no thread runs them, while their
claims name its live process. Once the worker holds nothing, it puts every claim still in its
name back to ready, and the jobs run, each once.
"""

from collections import Counter

import pytest
from django.db import connection, connections

import quebec
from quebec import conf
from quebec.lifecycle import running
from quebec.models import ClaimedExecution
from quebec.processes.worker import Worker
from tests.conftest import wait_until
from tests.testapp.jobs import RecordJob
from tests.testapp.models import JobRun

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor == 'sqlite'", reason="SQLite has no connection to lose"),
]

# Ends the session that sends it: what the worker sees when a server dies after the commit.
KILL_OWN_SESSION = {
    "postgresql": "SELECT pg_terminate_backend(pg_backend_pid())",
    "mysql": "KILL CONNECTION_ID()",
}


def lose_the_first_claims_reply(monkeypatch):
    """The first claim that takes jobs commits, then its connection dies before the reply."""
    real = running.end_and_claim
    lost = []

    def end_and_claim(using, *args, **kwargs):
        recorded, jobs = real(using, *args, **kwargs)
        if jobs and not lost:
            lost.extend(job.pk for job in jobs)
            with connections[using].cursor() as cursor:
                cursor.execute(KILL_OWN_SESSION[connection.vendor])
        return recorded, jobs

    monkeypatch.setattr(running, "end_and_claim", end_and_claim)
    return lost


def test_jobs_claimed_as_the_connection_died_run_once(monkeypatch, caplog):
    lost = lose_the_first_claims_reply(monkeypatch)
    handles = quebec.perform_all_later(RecordJob.build(f"job-{index}") for index in range(20))
    options = conf.WorkerConfig(queues=("*",), threads=2, polling_interval=0.05)
    worker = Worker(options, settings=conf.get(), quebec=quebec.default)
    worker.start()
    try:
        wait_until(lambda: JobRun.objects.count() >= 20, timeout=60, message="every job to run")
        wait_until(lambda: not ClaimedExecution.objects.exists(), message="no claim left")
    finally:
        worker.stop()
        worker.join(10)
    assert lost, "the first claim should have lost its reply"
    runs = Counter(JobRun.objects.values_list("job_id", flat=True))
    assert runs == Counter({handle.id: 1 for handle in handles})
    assert "claimed as the connection failed go back to ready" in caplog.text
