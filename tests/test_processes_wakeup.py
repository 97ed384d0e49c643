"""Same-host wake-ups where there is no LISTEN/NOTIFY (SQLite, MySQL, MariaDB): an enqueue wakes
the idle workers of its host once it commits, and an idle worker's poll stays one cheap look."""

import contextlib
import os
import socket

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import quebec
from quebec import conf
from quebec.db import wakeup
from quebec.models import Process
from quebec.processes.worker import Worker
from tests.conftest import wait_until
from tests.testapp.jobs import RecordJob

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor == 'postgresql'", reason="PostgreSQL wakes workers with NOTIFY"),
]


@contextlib.contextmanager
def inbox():
    """A wake-up socket of our own; yields a function that returns how many wake-ups came."""
    listening = wakeup.Inbox("default", "test-inbox")
    listening.socket.setblocking(False)

    def received():
        count = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                listening.socket.recv(1)
                count += 1
        return count

    try:
        yield received
    finally:
        listening.close()


def sockets():
    return sorted(wakeup.directory("default").glob("*.sock"))


def test_one_wake_up_per_transaction_that_made_jobs_ready(settings):
    settings.QUEBEC = {}
    with inbox() as received:
        RecordJob.perform_later("alone")
        assert received() == 1
        quebec.perform_all_later(RecordJob.build(f"bulk-{index}") for index in range(3))
        assert received() == 1
        with transaction.atomic():
            RecordJob.perform_later("first")
            RecordJob.perform_later("second")
            assert received() == 0, "nothing is sent before the commit"
        assert received() == 1
        with transaction.atomic():
            RecordJob.perform_later("rolled back")
            transaction.set_rollback(True)
        assert received() == 0


def test_no_wake_up_for_a_job_scheduled_later_or_when_switched_off(settings):
    settings.QUEBEC = {}
    with inbox() as received:
        RecordJob.set(wait=3600).perform_later("later")
        assert received() == 0
        settings.QUEBEC = {"use_listen_notify": False}
        RecordJob.perform_later("quiet")
        assert received() == 0


def test_a_socket_nobody_listens_on_is_removed_by_the_next_wake_up(settings):
    settings.QUEBEC = {}
    folder = wakeup.directory("default")
    assert wakeup.make_directory(folder)
    dead = folder / "0-deadbeef.sock"
    left = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    left.bind(str(dead))
    left.close()  # the file stays, as when a worker is killed
    RecordJob.perform_later("wakes nobody")
    assert not dead.exists()


def test_the_directory_is_private_to_its_user():
    folder = wakeup.directory("default")
    assert wakeup.make_directory(folder)
    assert folder.stat().st_uid == os.getuid() and folder.stat().st_mode & 0o777 == 0o700


def test_an_idle_worker_polls_with_one_look_and_no_transaction(settings):
    settings.QUEBEC = {"worker_polling_interval": 30}
    worker = Worker(
        conf.WorkerConfig(queues=("*",), threads=2, polling_interval=30), settings=conf.get(), quebec=quebec.default
    )
    worker.register()
    try:
        assert worker.poll() is False
        with CaptureQueriesContext(connection) as idle:
            assert worker.poll() is False
        assert len(idle.captured_queries) == 1, [query["sql"] for query in idle.captured_queries]
        RecordJob.perform_later("found")
        with CaptureQueriesContext(connection) as busy:
            worker.poll()
        assert len(busy.captured_queries) > 1, "a look that finds a job is followed by the claim"
        wait_until(lambda: worker.pool.in_flight() == 0, message="the job to run")
    finally:
        worker.stop()
        worker.shutdown()


@pytest.mark.subprocess
def test_an_enqueue_from_another_process_wakes_a_worker_that_polls_rarely(quebec_run):
    # Polling every 30 s: a job that starts within the wait below was started by a wake-up.
    before = sockets()
    process = quebec_run("--only", "worker", env={"QUEBEC_WORKER_POLLING_INTERVAL": "30"})
    wait_until(lambda: Process.objects.filter(kind="Worker").exists() and len(sockets()) == len(before) + 1)
    first = RecordJob.perform_later("first")
    wait_until(lambda: first.status == "finished", timeout=10, message="the first job")
    second = RecordJob.perform_later("second")  # the worker is asleep now, whatever woke it before
    wait_until(lambda: second.status == "finished", timeout=10, message="the second job")
    assert process.stop() == 0
    assert sockets() == before, "a stopped worker removes its socket"


@pytest.mark.subprocess
def test_switched_off_a_worker_has_no_socket_and_polls_instead(quebec_run):
    before = sockets()
    process = quebec_run(
        "--only", "worker", env={"QUEBEC_USE_LISTEN_NOTIFY": "false", "QUEBEC_WORKER_POLLING_INTERVAL": "0.1"}
    )
    wait_until(lambda: Process.objects.filter(kind="Worker").exists())
    job = RecordJob.perform_later("polled")
    wait_until(lambda: job.status == "finished", timeout=10, message="the job")
    assert sockets() == before
    assert process.stop() == 0
