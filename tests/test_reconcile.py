"""A mixed batch through real worker processes: every job ends exactly where its class says."""

import random
from collections import Counter

import pytest

import quebec
from quebec.models import EXECUTION_STATES, Job
from tests.conftest import wait_until
from tests.testapp.jobs import ChaosJob

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]

EXPECTED = {
    "ok": "finished",
    "flaky-then-ok": "finished",
    "rescue": "finished",
    "flaky": "failed",
    "unexpected": "failed",
    "discard": "discarded",
}


def at_rest():
    return not Job.objects.with_status().filter(status__in=["ready", "claimed", "scheduled"]).exists()


def test_500_jobs_with_random_outcomes_reconcile(quebec_run):
    plans = [random.choice(list(EXPECTED)) for _ in range(500)]
    handles = quebec.perform_all_later(ChaosJob.build(plan) for plan in plans)
    env = {"QUEBEC_WORKER_THREADS": "4", "QUEBEC_WORKER_POLLING_INTERVAL": "0.02"}
    workers = [quebec_run("--only", "worker", "-v", "0", env=env) for _ in range(2)]
    wait_until(at_rest, timeout=180, interval=0.5, message="every job to come to rest")
    assert [worker.stop() for worker in workers] == [0, 0]

    statuses = dict(Job.objects.with_status().values_list("pk", "status"))
    for handle, plan in zip(handles, plans, strict=True):
        assert statuses[handle.id] == EXPECTED[plan], f"job {handle.id} ({plan}) ended {statuses[handle.id]}"
    # Exactly one state each: a failed job has its failed execution and nothing else; a
    # finished or discarded one has no execution row left anywhere.
    rows = Counter(
        job_id for model in EXECUTION_STATES.values() for job_id in model.objects.values_list("job_id", flat=True)
    )
    for handle, plan in zip(handles, plans, strict=True):
        assert rows[handle.id] == (1 if EXPECTED[plan] == "failed" else 0), (
            f"job {handle.id} ({plan}) has {rows[handle.id]} execution rows"
        )
    executions = dict(Job.objects.values_list("pk", "executions"))
    runs = Counter(plan for plan in plans)
    assert sum(executions.values()) == (
        runs["ok"]
        + 2 * runs["flaky-then-ok"]
        + runs["rescue"]
        + 3 * runs["flaky"]
        + runs["unexpected"]
        + runs["discard"]
    )
