"""What ``ps`` shows for each real quebec_run process, read from /proc/<pid>/cmdline."""

from pathlib import Path

import pytest

from quebec.models import Process
from quebec.processes.title import ProcessTitle, describe
from tests.conftest import wait_until
from tests.test_processes_supervisor import FAST, fork_mode
from tests.testapp.jobs import SleepJob

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]


def title(pid):
    """The command line ``ps`` shows for ``pid``: arguments joined by spaces, as ``ps`` does."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").replace(b"\0", b" ").decode()


def pid_of(kind):
    return Process.objects.get(kind=kind).pid


def test_each_fork_names_its_role_and_a_worker_how_busy_it_is(quebec_run, tmp_path):
    args, env = fork_mode(tmp_path, worker_processes=1, threads=2)
    supervisor = quebec_run(*args, env=env)
    wait_until(lambda: Process.objects.count() == 4, timeout=30, message="the supervisor and its three children")
    worker = pid_of("Worker")
    assert title(supervisor.popen.pid) == "quebec supervisor"
    assert title(pid_of("Dispatcher")) == "quebec dispatcher"
    assert title(pid_of("Scheduler")) == "quebec scheduler"
    wait_until(lambda: title(worker) == "quebec worker queues=* threads=2 busy=0", message="the idle worker's title")
    SleepJob.perform_later(2, label=None)
    wait_until(lambda: title(worker) == "quebec worker queues=* threads=2 busy=1", message="busy=1 while a job runs")
    wait_until(lambda: title(worker) == "quebec worker queues=* threads=2 busy=0", message="busy=0 once it ended")
    assert supervisor.stop() == 0


def test_one_process_running_every_component_names_them_all(quebec_run):
    runner = quebec_run("--queues", "mail,reports*", env=FAST)
    wait_until(lambda: Process.objects.filter(kind="Worker").exists(), timeout=30, message="the worker")
    expected = "quebec worker queues=mail,reports* threads=3 busy=0; dispatcher; scheduler"
    wait_until(lambda: title(runner.popen.pid) == expected, message=f"the title {expected!r}")
    assert runner.stop() == 0


@pytest.mark.django_db(databases=["default", "second"], transaction=True)
def test_a_process_of_another_database_than_the_default_names_it(quebec_run):
    runner = quebec_run("--database", "second", "--only", "dispatcher", env=FAST)
    wait_until(lambda: Process.objects.using("second").filter(kind="Dispatcher").exists(), timeout=30)
    wait_until(
        lambda: title(runner.popen.pid) == "quebec dispatcher db=second", message="the title naming the database"
    )
    assert runner.stop() == 0
    assert describe(["supervisor"], "default") == "quebec supervisor"


def test_the_title_is_written_only_when_it_changes(monkeypatch):
    written = []
    monkeypatch.setattr("quebec.processes.title.setproctitle", written.append)
    process_title = ProcessTitle()
    for shown in ("quebec worker busy=0", "quebec worker busy=0", "quebec worker busy=1"):
        process_title.show(shown)
    assert written == ["quebec worker busy=0", "quebec worker busy=1"]
