"""Batches under real worker processes killed at random (and, on PostgreSQL, the database
restarted): every batch fires each due callback exactly once, and no callback that is not due.

The members' workers are SIGKILLed; the callbacks run on a worker of their own queue that is
never killed, so that each fired callback also runs exactly once and writes one row. On
PostgreSQL the cluster restarted is ``QUEBEC_TEST_RESTART_CLUSTER`` ("<version>/<name>"), by
default the newest version's ``main``: point DATABASE_URL and it at a private cluster to run
this outside CI.
"""

import os
import random
import subprocess
import time
from collections import Counter

import pytest
import yaml
from django.db import DatabaseError, connection

import quebec
from quebec.models import Batch, Job, Process
from tests.conftest import wait_until
from tests.process_helpers import kill_a_worker
from tests.test_database_restart import can_restart
from tests.testapp.jobs import BatchCallbackJob, BatchWorkJob
from tests.testapp.models import BatchCallbackRun

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]

CALLBACK_KINDS = ("finish", "success", "failure")


def sizes():
    """(batches, members per batch, member worker processes, threads each, seconds between
    kills) for this database."""
    if connection.vendor == "sqlite":
        return 40, 100, 2, 3, (0.2, 0.5)  # one writer at a time: fewer members, sooner kills
    return 100, 200, 4, 5, (1.0, 2.5)


def plan(batch_index, member_index):
    """What a member does: a few batches have a member failing for good; some members fail once
    and are retried (pending until their last attempt)."""
    if batch_index % 4 == 0 and member_index == 7:
        return "fail"
    if member_index % 25 == 3:
        return "flaky"
    return "ok"


def enqueue_batches(count, members):
    ids = []
    for batch_index in range(count):
        with quebec.batch(
            on_finish=BatchCallbackJob.build("finish"),
            on_success=BatchCallbackJob.build("success"),
            on_failure=BatchCallbackJob.build("failure"),
            description=f"stress {batch_index}",
        ) as batch:
            quebec.perform_all_later(BatchWorkJob.build(plan(batch_index, index)) for index in range(members))
        ids.append(batch.pk)
    return ids


def restart_cluster():
    version, name = os.environ.get(
        "QUEBEC_TEST_RESTART_CLUSTER", f"{sorted(os.listdir('/etc/postgresql'))[-1]}/main"
    ).split("/")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"], check=True)


def settled(batch_ids):
    try:
        unfinished = Batch.objects.filter(pk__in=batch_ids, finished_at__isnull=True).exists()
        return (
            not unfinished
            and not Job.objects.with_status().filter(status__in=["ready", "claimed", "scheduled"]).exists()
        )
    except DatabaseError:
        connection.close()  # the database is restarting
        return False


def unsettled(batch_ids):
    """What is left: the unfinished batches' counters and their members' states, and the jobs
    not at rest."""
    batches = Batch.objects.filter(pk__in=batch_ids, finished_at__isnull=True)
    left = {
        batch.pk: (
            batch.status,
            batch.total_jobs,
            batch.pending_jobs,
            batch.completed_jobs,
            batch.failed_jobs,
            Counter(Job.objects.with_status().filter(batch=batch.pk).values_list("status", flat=True)),
        )
        for batch in batches
    }
    waiting = Counter(
        Job.objects.with_status()
        .exclude(status__in=["finished", "failed", "discarded"])
        .values_list("status", flat=True)
    )
    return left, waiting


def test_each_due_callback_fires_exactly_once_through_kills_and_a_restart(quebec_run, tmp_path):
    count, members, processes, threads, pause = sizes()
    restart = connection.vendor == "postgresql" and can_restart()
    config = tmp_path / "queue.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "workers": [
                    {"queues": "default", "threads": threads, "processes": processes, "polling_interval": 0.02},
                    {"queues": "callbacks", "threads": 2, "processes": 1, "polling_interval": 0.05},
                ],
                "dispatchers": [{"polling_interval": 0.2, "processes": 1}],
            }
        )
    )
    # Every batch is in before the workers start, so that the kills land while they drain: an
    # enqueue running beside them would let them drain most of it before the first kill.
    T0 = time.monotonic()
    batch_ids = enqueue_batches(count, members)
    print("enqueued", time.monotonic() - T0, flush=True)
    supervisor = quebec_run("--config", str(config), "-v", "0", env={"QUEBEC_SUPERVISOR": "1"})
    supervisor_pid = supervisor.popen.pid
    rng, killed, restarted = random.Random(), [], False
    deadline = time.monotonic() + 90
    while not settled(batch_ids) and time.monotonic() < deadline:
        time.sleep(rng.uniform(*pause))
        if restart and not restarted and len(killed) >= 2:
            print(
                "restart at",
                time.monotonic() - T0,
                Job.objects.with_status().filter(status="finished").count(),
                flush=True,
            )
            restart_cluster()
            print("restarted", time.monotonic() - T0, flush=True)
            connection.close()
            restarted = True
            continue
        try:
            if len(killed) < 10 and (pid := kill_a_worker(rng, supervisor_pid, queues=["default"])) is not None:
                killed.append(pid)
        except DatabaseError:
            connection.close()
    print("kills done", time.monotonic() - T0, killed, flush=True)
    try:
        # Generous: a loaded machine drains slowly, and the state left is reported if it does not.
        def s2():
            r = settled(batch_ids)
            if int(time.monotonic()) % 10 == 0:
                print(
                    int(time.monotonic() - T0),
                    Counter(Job.objects.with_status().values_list("status", flat=True)),
                    Batch.objects.filter(finished_at__isnull=True).count(),
                    list(Process.objects.values_list("kind", "pid")),
                    flush=True,
                )
                time.sleep(1)
            return r

        wait_until(s2, timeout=300, interval=0.5, message="every batch to finish")
    except AssertionError:
        raise AssertionError(f"not every batch finished: {unsettled(batch_ids)}") from None
    print("settled", time.monotonic() - T0, flush=True)
    assert supervisor.stop() == 0
    print("stopped", time.monotonic() - T0, flush=True)
    assert len(killed) >= 2, "the test should have killed workers while they worked"
    assert restarted or not restart

    members_by_batch = Counter()
    failed_by_batch = Counter()
    for batch_id, status in Job.objects.with_status().filter(batch__in=batch_ids).values_list("batch", "status"):
        members_by_batch[batch_id] += 1
        assert status in ("finished", "failed"), status
        failed_by_batch[batch_id] += status == "failed"
    callback_jobs = Counter(
        (arguments["batch"], arguments["args"][0])
        for arguments in Job.objects.filter(class_name__endswith="BatchCallbackJob").values_list("arguments", flat=True)
    )
    runs = Counter(BatchCallbackRun.objects.values_list("batch_id", "kind"))
    assert sum(members_by_batch.values()) == count * members
    for batch in Batch.objects.filter(pk__in=batch_ids):
        failed = failed_by_batch[batch.pk]
        assert (batch.total_jobs, batch.pending_jobs) == (members, 0), batch.pk
        assert (batch.completed_jobs, batch.failed_jobs) == (members - failed, failed), batch.pk
        assert batch.status == ("failed" if failed else "succeeded"), batch.pk
        due = {"finish", "failure" if failed else "success"}
        for kind in CALLBACK_KINDS:
            expected = int(kind in due)
            assert callback_jobs[(batch.pk, kind)] == expected, (batch.pk, kind, callback_jobs[(batch.pk, kind)])
            assert runs[(batch.pk, kind)] == expected, (batch.pk, kind, runs[(batch.pk, kind)])
    # Planned failures make some batches fail whatever the kills do.
    assert Batch.objects.filter(pk__in=batch_ids, status="failed").count() >= count // 4
