"""Processes for real: fork mode, crashes, pruning, quiet mode, memory recycling and hooks."""

import os
import signal
import time

import pytest
import yaml

from quebec.models import ClaimedExecution, FailedExecution, Process
from tests.conftest import wait_until
from tests.testapp.jobs import HogMemoryJob, RecordJob, SleepJob
from tests.testapp.models import JobRun

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]

FAST = {
    "QUEBEC_WORKER_POLLING_INTERVAL": "0.05",
    "QUEBEC_DISPATCHER_POLLING_INTERVAL": "0.1",
    "QUEBEC_PROCESS_HEARTBEAT_INTERVAL": "0.5",
}


def fork_mode(tmp_path, worker_processes=2, threads=2, **extra):
    config = tmp_path / "queue.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "workers": [
                    {"queues": "*", "threads": threads, "processes": worker_processes, "polling_interval": 0.05}
                ],
                "dispatchers": [{"polling_interval": 0.1, "processes": 1}],
                **extra,
            }
        )
    )
    return ["--config", str(config)], {**FAST, "QUEBEC_SUPERVISOR": "1"}


def kinds():
    return sorted(Process.objects.values_list("kind", flat=True))


def worker_pids():
    return set(Process.objects.filter(kind="Worker").values_list("pid", flat=True))


def test_fork_mode_starts_reforks_and_stops_the_tree(quebec_run, tmp_path):
    args, env = fork_mode(tmp_path)
    supervisor = quebec_run(*args, env=env)
    wait_until(lambda: kinds() == ["Dispatcher", "Scheduler", "Supervisor", "Worker", "Worker"], timeout=30)
    parent = Process.objects.get(kind="Supervisor")
    assert set(Process.objects.exclude(pk=parent.pk).values_list("supervisor_id", flat=True)) == {parent.pk}
    before = worker_pids()
    victim = before.pop()
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(worker_pids()) == 2 and victim not in worker_pids(), timeout=30, message="a refork")
    handles = [RecordJob.perform_later(str(index)) for index in range(20)]
    wait_until(lambda: all(handle.status == "finished" for handle in handles))
    assert supervisor.stop() == 0
    assert not Process.objects.exists() and not ClaimedExecution.objects.exists()
    assert "exited with signal SIGKILL; forking it again" in supervisor.output()


def test_killed_child_fails_its_job_with_process_exit_error(quebec_run, tmp_path):
    args, env = fork_mode(tmp_path, worker_processes=1)
    supervisor = quebec_run(*args, env=env)
    handle = SleepJob.perform_later(30, label=None)
    wait_until(lambda: handle.status == "claimed", timeout=30)
    os.kill(ClaimedExecution.objects.get().process.pid, signal.SIGKILL)
    wait_until(lambda: handle.status == "failed", timeout=30)
    failure = FailedExecution.objects.get()
    assert failure.exception_class == "quebec.errors.ProcessExitError"
    assert "exited with signal SIGKILL" in failure.message
    after = RecordJob.perform_later("after")
    wait_until(lambda: after.status == "finished", timeout=30, message="the reforked worker to run jobs")
    assert supervisor.stop() == 0


@pytest.mark.parametrize(("policy", "expected"), [("fail", "failed"), ("release", "finished")])
def test_a_dead_standalone_worker_is_pruned(quebec_run, policy, expected):
    env = {**FAST, "QUEBEC_PROCESS_ALIVE_THRESHOLD": "11", "QUEBEC_ON_PROCESS_DEATH": policy}
    victim = quebec_run("--only", "worker", env=env)
    handle = SleepJob.perform_later(1, label="ran")
    wait_until(lambda: handle.status == "claimed")
    victim.popen.kill()
    victim.wait()
    survivor = quebec_run(env=env)
    wait_until(lambda: handle.status == expected, timeout=30, message=f"the job to end {expected}")
    assert survivor.stop() == 0
    assert not Process.objects.exists()
    if policy == "fail":
        failure = FailedExecution.objects.get()
        assert failure.exception_class == "quebec.errors.ProcessPrunedError"
        assert "sent no heartbeat since" in failure.message and "presumed dead" in failure.message
    else:
        assert JobRun.objects.get().label == "ran"


def test_quiet_mode_stops_claiming_and_quiet_then_exit_exits_once_drained(quebec_run):
    process = quebec_run(env=FAST)
    process.wait_for_output("Quebec running")
    process.send(signal.SIGUSR1)
    process.wait_for_output("Going quiet")
    handle = RecordJob.perform_later("waits")
    wait_until(lambda: Process.objects.filter(kind="Worker", metadata__quiet=True).exists(), timeout=10)
    assert handle.status == "ready"
    assert process.stop() == 0

    draining = quebec_run(env={**FAST, "QUEBEC_QUIET_THEN_EXIT": "1"})
    wait_until(lambda: handle.status == "finished")
    sleeper = SleepJob.perform_later(1, label="drained")
    wait_until(lambda: sleeper.status == "claimed")
    draining.send(signal.SIGTSTP)
    draining.wait_for_output("Going quiet")
    late = RecordJob.perform_later("late")
    assert draining.wait(30) == 0
    assert sleeper.status == "finished" and late.status == "ready"


def test_memory_recycling_exits_75_and_the_supervisor_reforks(quebec_run, tmp_path):
    env = {
        **FAST,
        "QUEBEC_WORKER_MAX_RSS_MB": "200",
        "QUEBEC_WORKER_MEMORY_CHECK_INTERVAL": "0.2",
        "QUEBEC_WORKER_MEMORY_RECYCLE_CONFIRMATIONS": "2",
    }
    standalone = quebec_run("--only", "worker", env=env)
    hog = HogMemoryJob.perform_later(300)
    assert standalone.wait(60) == 75
    assert hog.status == "finished"
    assert "Drained; exiting with code 75" in standalone.output()

    args, fork_env = fork_mode(tmp_path, worker_processes=1)
    supervisor = quebec_run(*args, env={**fork_env, **env})
    wait_until(lambda: len(worker_pids()) == 1, timeout=30)
    first = worker_pids()
    HogMemoryJob.perform_later(300)
    # The log line comes first: between the old worker deregistering and the
    # new one registering, the table briefly holds no worker at all.
    supervisor.wait_for_output("recycled itself; forking a fresh one", timeout=60)
    wait_until(lambda: (pids := worker_pids()) and pids != first, timeout=30, message="a fresh worker")
    assert supervisor.stop() == 0


def test_lifecycle_hooks_run_in_the_right_process_and_a_failing_one_is_contained(quebec_run, tmp_path):
    log = tmp_path / "hooks.log"
    env = {**FAST, "QUEBEC_TEST_HOOK_LOG": str(log), "QUEBEC_TEST_FAILING_HOOK": "on_shutdown"}
    process = quebec_run(env=env)
    wait_until(lambda: log.exists() and "on_worker_start" in log.read_text(), message="the worker to start")
    assert process.stop() == 0
    lines = log.read_text().splitlines()
    pid = process.popen.pid
    assert lines == [
        f"on_start {pid}",
        f"on_worker_start {pid} Worker",
        f"on_shutdown {pid}",
        f"on_worker_stop {pid} Worker",
        f"on_stop {pid}",
    ]
    assert "Lifecycle hook on_shutdown" in process.output() and "on_shutdown hook failed on purpose" in process.output()


def test_crash_loop_backs_off(quebec_run, tmp_path):
    args, env = fork_mode(tmp_path, worker_processes=1)
    supervisor = quebec_run(*args, env={**env, "QUEBEC_TEST_CRASH_WORKERS": "1"})
    supervisor.wait_for_output("keeps crashing", timeout=30)
    assert supervisor.stop() == 0
    assert not Process.objects.exists()


def test_a_worker_forked_again_after_going_quiet_starts_quiet(quebec_run, tmp_path):
    args, env = fork_mode(tmp_path, worker_processes=1)
    supervisor = quebec_run(*args, env=env)
    wait_until(lambda: len(worker_pids()) == 1, timeout=30)
    supervisor.send(signal.SIGUSR1)
    wait_until(lambda: Process.objects.filter(kind="Worker", metadata__quiet=True).exists(), timeout=15)
    [first] = worker_pids()
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: (pids := worker_pids()) and first not in pids, timeout=30, message="a refork")
    assert Process.objects.get(kind="Worker").metadata["quiet"] is True
    handle = RecordJob.perform_later("held")
    time.sleep(1)  # twenty polling intervals of a worker that would claim it
    assert handle.status == "ready"
    assert supervisor.stop() == 0


def test_fork_mode_serves_the_dashboard_from_a_child_of_its_own(quebec_run, tmp_path):
    import re
    import urllib.request

    args, env = fork_mode(tmp_path, worker_processes=1)
    supervisor = quebec_run(*args, "--dashboard", "127.0.0.1:0", env=env)
    supervisor.wait_for_output("Dashboard at")
    base = re.search(r"Dashboard at (http://[\d.]+:\d+)/", supervisor.output())[1]
    with urllib.request.urlopen(f"{base}/admin/login/", timeout=5) as response:
        assert response.status == 200
    assert supervisor.stop() == 0
