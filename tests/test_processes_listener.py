"""PostgreSQL LISTEN/NOTIFY: enqueues wake idle workers; switched off, workers poll."""

import contextlib
import dataclasses

import pytest
from django.core import checks
from django.db import connection, connections, transaction

import quebec
from quebec import conf
from quebec.db import READY_CHANNEL
from quebec.db.connection import transaction_pooled
from quebec.processes.listener import listening_alias
from quebec.processes.worker import Worker
from quebec.settings_checks import pooled_listening
from quebec.models import Process
from tests.conftest import wait_until
from tests.testapp.jobs import RecordJob

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="LISTEN/NOTIFY is PostgreSQL's"),
]


@contextlib.contextmanager
def listening():
    """A session of our own listening on the ready channel; yields a function that returns
    the notifications received so far."""
    session = connection.get_new_connection(connection.get_connection_params())
    session.autocommit = True
    session.execute(f"LISTEN {READY_CHANNEL}")
    try:
        yield lambda: list(session.notifies(timeout=0.5))
    finally:
        session.close()


def listening_sessions():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
            [f"LISTEN {READY_CHANNEL}"],
        )
        return cursor.fetchone()[0]


def test_one_notification_per_enqueue_transaction(settings):
    settings.QUEBEC = {}
    with listening() as received:
        RecordJob.perform_later("alone")
        assert len(received()) == 1
        quebec.perform_all_later(RecordJob.build(f"bulk-{index}") for index in range(3))
        assert len(received()) == 1
        with transaction.atomic():
            RecordJob.perform_later("first")
            RecordJob.perform_later("second")
            assert received() == [], "nothing is sent before the commit"
        assert len(received()) == 1
        with transaction.atomic():
            RecordJob.perform_later("rolled back")
            transaction.set_rollback(True)
        assert received() == []


def test_no_notification_when_switched_off(settings):
    settings.QUEBEC = {"use_listen_notify": False}
    with listening() as received:
        RecordJob.perform_later("quiet")
        assert received() == []


@pytest.mark.subprocess
def test_a_notification_wakes_a_worker_that_polls_rarely(quebec_run):
    # Polling every 30 s: a job that starts within the wait below was started by a notification.
    process = quebec_run("--only", "worker", env={"QUEBEC_WORKER_POLLING_INTERVAL": "30"})
    wait_until(lambda: Process.objects.filter(kind="Worker").exists() and listening_sessions() == 1)
    first = RecordJob.perform_later("first")
    wait_until(lambda: first.status == "finished", timeout=10, message="the first job")
    second = RecordJob.perform_later("second")  # the worker is asleep now, whatever woke it before
    wait_until(lambda: second.status == "finished", timeout=10, message="the second job")
    assert process.stop() == 0


@pytest.mark.subprocess
def test_switched_off_a_worker_does_not_listen_and_polls_instead(quebec_run):
    process = quebec_run(
        "--only", "worker", env={"QUEBEC_USE_LISTEN_NOTIFY": "false", "QUEBEC_WORKER_POLLING_INTERVAL": "0.05"}
    )
    wait_until(lambda: Process.objects.filter(kind="Worker").exists())
    handle = RecordJob.perform_later("polled")
    wait_until(lambda: handle.status == "finished", message="the job")
    assert listening_sessions() == 0
    assert process.stop() == 0


def sessions_listening_on(alias):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query = %s",
            [connections[alias].settings_dict["NAME"], f"LISTEN {READY_CHANNEL}"],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def pooled(monkeypatch):
    """The default database marked as behind a transaction pooler (Django's marker for one)."""
    if transaction_pooled(connection):
        pytest.skip("the test marks a direct connection as pooled, and reads what LISTENs directly")
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)


def test_behind_a_transaction_pooler_a_worker_polls_and_the_checks_say_so(start, pooled):
    worker = start(threads=1)
    handle = RecordJob.perform_later("polled")
    wait_until(lambda: handle.status == "finished", message="the job")
    assert worker.is_alive() and sessions_listening_on("default") == 0
    assert any("'default' goes through a transaction pooler" in message for message in pooled_listening(conf.get()))
    assert pooled_listening(dataclasses.replace(conf.get(), listen_databases={"default": "second"})) == []
    assert "quebec.W014" in {message.id for message in checks.run_checks()}


@pytest.mark.django_db(databases=["default", "second"], transaction=True)
def test_behind_a_transaction_pooler_a_worker_listens_on_the_alias_listen_databases_names(start, pooled):
    start(threads=1, listen_databases={"default": "second"})  # here a direct alias of another database
    wait_until(lambda: sessions_listening_on("second") == 1, message="the LISTEN on the named alias")
    assert sessions_listening_on("default") == 0


def test_listen_databases_must_name_an_alias(settings):
    settings.QUEBEC = {"listen_databases": {"default": "nowhere"}}
    assert "quebec.E007" in {message.id for message in checks.run_checks()}
    with pytest.raises(ValueError, match=r"QUEBEC\['listen_databases'\]: no database alias 'nowhere'"):
        listening_alias(conf.get(), "default")


@pytest.mark.skipif("'direct' not in connections", reason="needs the pooled run's direct alias (scripts/test)")
def test_through_a_real_pooler_a_worker_listening_directly_is_woken_by_a_pooled_enqueue(settings):
    # Polling every 30 s: a job that starts within the wait below was started by the NOTIFY,
    # sent through the pooler with the enqueue's commit and heard on the direct connection.
    settings.QUEBEC = {"use_listen_notify": True, "listen_databases": {"default": "direct"}}
    options = conf.WorkerConfig(queues=("*",), threads=1, polling_interval=30)
    worker = Worker(options, settings=conf.get(), quebec=quebec.default)
    worker.start()
    try:
        wait_until(lambda: sessions_listening_on("default") == 1, message="the LISTEN on the direct alias")
        first = RecordJob.perform_later("first")
        wait_until(lambda: first.status == "finished", timeout=10, message="the first job")
        second = RecordJob.perform_later("second")  # the worker is asleep now, whatever woke it before
        wait_until(lambda: second.status == "finished", timeout=10, message="the second job")
    finally:
        worker.stop()
        worker.join(10)
