"""Unique keys as a lifecycle participant: quebec/lifecycle/unique.py.

Every way a job ends or starts, and whether its key is given back: a route per test.
"""

import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid

import pytest
from django.db import connections

import quebec
from quebec import conf
from quebec.errors import ProcessPrunedError
from quebec.lifecycle import queueing, running
from quebec.lifecycle.outcome import DISCARDED, FAILED, RETRY, Outcome
from quebec.maintenance import remove_process
from quebec.models import BlockedExecution, ClaimedExecution, FailedExecution, Job, Process, ReadyExecution, UniqueKey
from tests.conftest import ROOT, database_url, finished, wait_until
from tests.lifecycle_helpers import claim_job, end, finish
from tests.testapp.jobs import (
    UniqueDroppedJob,
    UniqueFailingJob,
    UniqueForAWhileJob,
    UniqueKeyedJob,
    UniqueRetriedJob,
    UniqueSyncJob,
    UniqueUntilStartedJob,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def process():
    return Process.objects.register("Worker", f"w-{uuid.uuid4().hex}")


def holds(handle):
    """Whether ``handle``'s job holds its unique key."""
    job = Job.objects.get(pk=handle.id)
    return UniqueKey.objects.held().filter(key=job.unique_key, active_job_id=job.active_job_id).exists()


def claimed(handle, process):
    job = claim_job(handle.id, process)
    running.start(job, process.name, "default")
    return job


def test_finished_gives_the_key_back(process):
    handle = UniqueSyncJob.perform_later(1)
    assert holds(handle)
    finish(claimed(handle, process), process)
    assert not holds(handle)
    assert not UniqueSyncJob.perform_later(1).duplicate


def test_finished_and_deleted_gives_the_key_back(process):
    handle = UniqueSyncJob.perform_later(1)
    finish(claimed(handle, process), process, preserve=False)
    assert not Job.objects.filter(pk=handle.id).exists() and not UniqueKey.objects.exists()


def test_discarded_by_its_run_gives_the_key_back(process):
    handle = UniqueSyncJob.perform_later(1)
    end(claimed(handle, process), process, Outcome(DISCARDED, error=ValueError("no")))
    assert handle.status == "discarded" and not holds(handle)


def test_failed_for_good_gives_the_key_back(process):
    handle = UniqueFailingJob.perform_later(1)
    end(claimed(handle, process), process, Outcome(FAILED, error=ValueError("no")))
    assert handle.status == "failed" and not holds(handle)
    assert not UniqueFailingJob.perform_later(1).duplicate


def test_a_retry_keeps_the_key(process):
    handle = UniqueRetriedJob.perform_later(1)
    job = claimed(handle, process)
    end(job, process, Outcome(RETRY, error=ValueError("again"), retry_at=job.created_at.replace(year=2999)))
    assert handle.status == "scheduled" and holds(handle)
    assert UniqueRetriedJob.perform_later(1).id == handle.id


def test_failed_by_process_death_gives_the_key_back(process):
    handle = UniqueFailingJob.perform_later(1)
    claim_job(handle.id, process)
    remove_process(process, ProcessPrunedError("presumed dead"), conf.get(), quebec.default)
    assert handle.status == "failed" and not holds(handle)


def test_retried_after_process_death_keeps_the_key(process):
    handle = UniqueRetriedJob.perform_later(1)
    claim_job(handle.id, process)
    remove_process(process, ProcessPrunedError("presumed dead"), conf.get(), quebec.default)
    assert handle.status == "scheduled" and holds(handle)


def test_released_by_a_dead_process_keeps_the_key_while_it_waits(settings_config, process):
    settings = settings_config(on_process_death="release")
    handle = UniqueSyncJob.perform_later(1)
    claimed(handle, process)
    remove_process(process, ProcessPrunedError("presumed dead"), settings, quebec.default)
    assert handle.status == "ready" and holds(handle)
    assert UniqueSyncJob.perform_later(1).id == handle.id


def test_discarded_by_an_operator_gives_the_key_back():
    ready, scheduled = UniqueSyncJob.perform_later(1), UniqueSyncJob.set(wait=3600).perform_later(2)
    assert queueing.discard(ReadyExecution.objects.all()) == 1
    assert not holds(ready) and holds(scheduled)
    assert not UniqueSyncJob.perform_later(1).duplicate


def test_cancelled_before_it_ran_gives_the_key_back():
    ready, scheduled = UniqueSyncJob.perform_later(1), UniqueSyncJob.set(wait=3600).perform_later(2)
    assert quebec.cancel(ready.id, by="ops") == quebec.cancel(scheduled.id, by="ops") == "discarded"
    assert not holds(ready) and not holds(scheduled)
    assert not UniqueSyncJob.perform_later(1).duplicate and not UniqueSyncJob.perform_later(2).duplicate


def test_cancelled_while_running_keeps_the_key_until_the_run_ends_discarded(process):
    handle = UniqueSyncJob.perform_later(1)
    job = claimed(handle, process)
    assert quebec.cancel(handle.id, by="ops") == "requested"
    assert holds(handle)  # the job has not heard yet: it still runs, so it still holds its key
    end(job, process, Outcome(DISCARDED, error=quebec.JobCancelled("cancelled by ops")))
    assert not holds(handle) and not UniqueSyncJob.perform_later(1).duplicate


def test_a_failed_job_discarded_by_an_operator_had_given_its_key_back(process):
    handle = UniqueFailingJob.perform_later(1)
    end(claimed(handle, process), process, Outcome(FAILED, error=ValueError("no")))
    UniqueFailingJob.perform_later(1)  # the key is free: a new job takes it
    assert FailedExecution.objects.discard_all() == 1
    assert UniqueKey.objects.get().active_job_id != Job.objects.get(pk=handle.id).active_job_id


def test_discarded_by_its_concurrency_key_on_the_way_in_gives_the_key_back():
    running_one = UniqueDroppedJob.perform_later(1, group="g")
    dropped = UniqueDroppedJob.perform_later(2, group="g")
    assert running_one.status == "ready" and dropped.status == "discarded"
    assert not holds(dropped) and holds(running_one)
    assert not UniqueDroppedJob.perform_later(2, group="other").duplicate


def test_blocked_by_its_concurrency_key_keeps_the_key(process):
    first = UniqueKeyedJob.perform_later(1)
    job = claimed(first, process)
    # Same concurrency key needs the same account here: a second job of account 1 is a duplicate.
    assert UniqueKeyedJob.perform_later(1).id == first.id
    other_key = UniqueKeyedJob.perform_later(2)
    assert other_key.status == "ready"
    finish(job, process)
    assert not holds(first) and holds(other_key)


def test_a_blocked_unique_job_holds_its_key_until_it_runs(process):
    class SharedSlotJob(UniqueKeyedJob):
        def concurrency_key(self, account, **kwargs):
            return "shared"

    first, waiting = SharedSlotJob.perform_later(1), SharedSlotJob.perform_later(2)
    assert waiting.status == "blocked" and BlockedExecution.objects.count() == 1
    assert SharedSlotJob.perform_later(2).id == waiting.id
    finish(claimed(first, process), process)
    assert waiting.status == "ready" and holds(waiting) and not holds(first)


def test_unique_until_started_gives_the_key_back_when_a_run_starts(process):
    handle = UniqueUntilStartedJob.perform_later(1)
    job = claim_job(handle.id, process)
    assert holds(handle)  # claimed, not started: a claim may still go back unstarted
    running.start(job, process.name, "default")
    assert not holds(handle) and ClaimedExecution.objects.filter(job_id=handle.id).exists()
    again = UniqueUntilStartedJob.perform_later(1)
    assert not again.duplicate
    finish(job, process)
    assert holds(again)  # the first job's end does not give back the key the second holds


def test_unique_for_lets_the_next_enqueue_take_the_key_over(process):
    handle = UniqueForAWhileJob.perform_later(1)
    assert UniqueForAWhileJob.perform_later(1).duplicate
    time.sleep(1.1)
    assert not holds(handle)
    successor = UniqueForAWhileJob.perform_later(1)
    assert not successor.duplicate and holds(successor)
    assert UniqueForAWhileJob.perform_later(1).id == successor.id
    finish(claimed(handle, process), process)
    assert holds(successor)  # the expired holder ending leaves its successor's key alone


# Many enqueuers at once: the key's constraint, not a look beforehand, decides.

KEYS = 50
THREADS = 16
PROCESSES = 4

ENQUEUER = """
import json, os, random, sys, time
from pathlib import Path
import django
django.setup()
import quebec
from tests.testapp.jobs import UniqueSyncJob
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.001)
builds = [UniqueSyncJob.build(key) for key in random.sample(range(%d), %d)]
handles = quebec.perform_all_later(builds)
print(json.dumps([[build.job.stored_unique_key, handle.id, handle.duplicate] for build, handle in zip(builds, handles)]))
""" % (KEYS, KEYS)


@pytest.mark.subprocess
@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_and_four_processes_enqueueing_the_same_keys_write_each_once(tmp_path):
    go = tmp_path / "go"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "PYTHONPATH": f"{ROOT}:{ROOT / 'testproject'}",
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-c", ENQUEUER, str(go)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    results, errors = [], []
    barrier = threading.Barrier(THREADS + 1)

    def enqueue_one_by_one():
        try:
            keys = random.sample(range(KEYS), KEYS)
            barrier.wait()
            for key in keys:
                handle = UniqueSyncJob.perform_later(key)
                results.append((f"UniqueSyncJob/{key}", handle.id, handle.duplicate))
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=enqueue_one_by_one) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)  # the children import Django meanwhile and wait for the file
    go.touch()
    barrier.wait()
    for thread in threads:
        thread.join(120)
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results += [tuple(row) for row in json.loads(out)]
    assert not errors, errors

    written = dict(Job.objects.values_list("unique_key", "pk"))
    assert len(written) == KEYS and Job.objects.count() == KEYS
    assert len(results) == (THREADS + PROCESSES) * KEYS
    assert all(job_id == written[key] for key, job_id, _ in results), "a call was told of the wrong job"
    assert sorted(key for key, _, duplicate in results if not duplicate) == sorted(written)
    assert UniqueKey.objects.count() == KEYS


@pytest.mark.django_db(transaction=True)
def test_a_worker_gives_the_key_back_when_the_job_finishes_or_starts(start):
    finishing, starting = UniqueSyncJob.perform_later(1), UniqueUntilStartedJob.perform_later(2)
    start()
    wait_until(lambda: finished(finishing, starting), message="both jobs to finish")
    assert not UniqueKey.objects.exists()
    assert not UniqueSyncJob.perform_later(1).duplicate and not UniqueUntilStartedJob.perform_later(2).duplicate
