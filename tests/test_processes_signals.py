"""Stopping real processes: a second SIGTERM or SIGINT during a graceful stop means "now"."""

import os
import signal
import time

import pytest
import yaml

from quebec.models import ClaimedExecution, FailedExecution, Process
from tests.conftest import wait_until
from tests.testapp.jobs import SleepJob
from tests.testapp.models import JobRun

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]

LONG = {"QUEBEC_WORKER_POLLING_INTERVAL": "0.05", "QUEBEC_SHUTDOWN_TIMEOUT": "60"}
PROMPTLY = 10  # seconds: well under the 60 s shutdown_timeout


def fork_mode(tmp_path):
    config = tmp_path / "queue.yml"
    config.write_text(yaml.safe_dump({"workers": [{"queues": "*", "threads": 1, "processes": 1}]}))
    return ["--config", str(config), "--only", "worker"], {**LONG, "QUEBEC_SUPERVISOR": "1"}


def assert_stopped_now(process, handle, second):
    """Send ``second`` and check the process acted as on SIGQUIT: it exits 0 at once, and the
    running job goes back to ready, neither failed nor run to its end."""
    started = time.monotonic()
    process.send(second)
    assert process.wait(timeout=PROMPTLY + 20) == 0
    assert time.monotonic() - started < PROMPTLY
    assert handle.status == "ready"
    assert not JobRun.objects.exists() and not FailedExecution.objects.exists()
    assert not ClaimedExecution.objects.exists() and not Process.objects.exists()


@pytest.mark.parametrize(
    "first, second",
    [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGQUIT)],
)
def test_a_second_signal_stops_a_single_process_now(quebec_run, first, second):
    handle = SleepJob.perform_later(120, label="completed")
    process = quebec_run("--only", "worker", env=LONG)
    wait_until(lambda: handle.status == "claimed", timeout=30)
    process.send(first)
    process.wait_for_output(f"Received {first.name}; shutting down")
    assert_stopped_now(process, handle, second)
    assert f"Received {second.name} while stopping; stopping now" in process.output()


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_stops_the_fork_mode_tree_now(quebec_run, tmp_path, second):
    args, env = fork_mode(tmp_path)
    handle = SleepJob.perform_later(120, label="completed")
    supervisor = quebec_run(*args, env=env)
    wait_until(lambda: handle.status == "claimed", timeout=30)
    supervisor.send(signal.SIGTERM)
    supervisor.wait_for_output("Received SIGTERM; stopping the children")
    supervisor.wait_for_output("Received SIGTERM; shutting down")  # the child got it
    assert_stopped_now(supervisor, handle, second)
    assert f"Received {second.name} while stopping; stopping the children now" in supervisor.output()


def test_one_ctrl_c_to_the_fork_mode_tree_is_still_graceful(quebec_run, tmp_path):
    """A terminal's Ctrl-C reaches every process of the group, and the supervisor passes SIGTERM
    on as well: a child gets two signals for one key press, and must still let its job end."""
    args, env = fork_mode(tmp_path)
    handle = SleepJob.perform_later(2, label="completed")
    supervisor = quebec_run(*args, env=env)
    wait_until(lambda: handle.status == "claimed", timeout=30)
    os.killpg(supervisor.popen.pid, signal.SIGINT)
    assert supervisor.wait(timeout=60) == 0
    assert handle.status == "finished" and JobRun.objects.get().label == "completed"
