"""Workers killed at random while they drain a queue: no job is lost, none runs twice."""

import random
import re
import time
from collections import Counter

import pytest
import yaml

import quebec
from quebec import conf
from quebec.models import FailedExecution, Job
from tests.conftest import wait_until
from tests.process_helpers import kill_a_worker
from tests.testapp.jobs import ChaosWorkJob
from tests.testapp.models import JobRun

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]

JOBS = 5000
MAX_KILLS = 12


def at_rest():
    return not Job.objects.with_status().filter(status__in=["ready", "claimed", "scheduled"]).exists()


def test_random_sigkills_lose_nothing_and_run_nothing_twice(quebec_run, tmp_path):
    threads = 4
    config = tmp_path / "queue.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "workers": [{"queues": "*", "threads": threads, "processes": 3, "polling_interval": 0.02}],
                "dispatchers": [{"polling_interval": 0.2, "processes": 1}],
            }
        )
    )
    # The jobs are in before the workers start, so that the kills land while they drain.
    handles = quebec.perform_all_later(ChaosWorkJob.build(index) for index in range(JOBS))
    supervisor = quebec_run("--config", str(config), "-v", "0", env={"QUEBEC_SUPERVISOR": "1"})
    supervisor_pid = supervisor.popen.pid
    rng, killed = random.Random(), []
    # A bounded number of kills: past a few crashes in a row the supervisor backs off before
    # forking again, and the queue must still drain once the killing stops.
    while len(killed) < MAX_KILLS and not at_rest():
        time.sleep(rng.uniform(0.3, 0.9))
        if (pid := kill_a_worker(rng, supervisor_pid)) is not None:
            killed.append(pid)
    wait_until(at_rest, timeout=300, interval=0.5, message="the queue to drain after the kills")
    assert supervisor.stop() == 0
    assert len(killed) >= 3, "the test should have killed workers while they worked"
    output = supervisor.output()
    for pid in killed:  # each kill counted did happen, and the supervisor saw it
        assert f"worker process {pid} exited with signal SIGKILL" in output, pid

    runs = Counter(JobRun.objects.values_list("job_id", flat=True))
    statuses = dict(Job.objects.with_status().values_list("pk", "status"))
    failures = dict(FailedExecution.objects.values_list("job_id", "message"))
    assert set(statuses) == {handle.id for handle in handles}, "a job was lost"
    assert max(runs.values()) == 1, "a job ran twice"
    failed_by_kill = Counter()
    for handle in handles:
        status = statuses[handle.id]
        if status == "finished":
            assert runs[handle.id] == 1
            continue
        assert status == "failed", status
        # Every failure is one of our kills': the claims the killed worker held.
        victim = re.fullmatch(r"worker process (\d+) exited with signal SIGKILL( while stopping)?", failures[handle.id])
        assert victim and int(victim[1]) in killed, failures[handle.id]
        failed_by_kill[int(victim[1])] += 1
    # A worker holds at most a job per thread and, these jobs being short, worker_claim_ahead
    # more per thread claimed ahead of them: what one kill can fail.
    most_claims = threads * (1 + conf.get().worker_claim_ahead)
    assert max(failed_by_kill.values(), default=0) <= most_claims, failed_by_kill
    assert sum(failed_by_kill.values()) == Counter(statuses.values())["failed"]
