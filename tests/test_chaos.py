"""Workers killed at random while they drain a queue: no job is lost, none runs twice."""

import os
import random
import signal
import time
from collections import Counter

import pytest
import yaml

import quebec
from quebec import conf
from quebec.models import FailedExecution, Job, Process
from tests.conftest import wait_until
from tests.testapp.jobs import ChaosWorkJob
from tests.testapp.models import JobRun

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]

JOBS = 5000
MAX_KILLS = 12


def at_rest():
    return not Job.objects.with_status().filter(status__in=["ready", "claimed", "scheduled"]).exists()


def kill_a_worker(rng):
    pids = list(Process.objects.filter(kind="Worker").values_list("pid", flat=True))
    if pids:
        try:
            os.kill(rng.choice(pids), signal.SIGKILL)
        except ProcessLookupError:
            pass
        return 1
    return 0


def test_random_sigkills_lose_nothing_and_run_nothing_twice(quebec_run, tmp_path):
    config = tmp_path / "queue.yml"
    config.write_text(yaml.safe_dump({
        "workers": [{"queues": "*", "threads": 4, "processes": 3, "polling_interval": 0.02}],
        "dispatchers": [{"polling_interval": 0.2, "processes": 1}],
    }))
    supervisor = quebec_run("--config", str(config), "-v", "0", env={"QUEBEC_SUPERVISOR": "1"})
    wait_until(lambda: Process.objects.filter(kind="Worker").count() == 3, timeout=30)
    handles = quebec.perform_all_later(ChaosWorkJob.build(index) for index in range(JOBS))
    rng, kills = random.Random(), 0
    # A bounded number of kills: past a few crashes in a row the supervisor backs off before
    # forking again, and the queue must still drain once the killing stops.
    while kills < MAX_KILLS and not at_rest():
        time.sleep(rng.uniform(0.3, 0.9))
        kills += kill_a_worker(rng) if not at_rest() else 0
    wait_until(at_rest, timeout=300, interval=0.5, message="the queue to drain after the kills")
    assert supervisor.stop() == 0
    assert kills >= 3, "the test should have killed workers while they worked"

    runs = Counter(JobRun.objects.values_list("job_id", flat=True))
    statuses = dict(Job.objects.with_status().values_list("pk", "status"))
    failures = dict(FailedExecution.objects.values_list("job_id", "exception_class"))
    assert max(runs.values()) == 1, "a job ran twice"
    for handle in handles:
        status = statuses[handle.id]
        if status == "finished":
            assert runs[handle.id] == 1
        else:
            assert status == "failed" and failures[handle.id] == "quebec.errors.ProcessExitError", status
    # At most each killed worker's claims: its 4 threads' jobs and, these jobs being short, the
    # worker_claim_ahead per thread claimed ahead of them.
    assert Counter(statuses.values())["failed"] <= kills * 4 * (1 + conf.get().worker_claim_ahead)
