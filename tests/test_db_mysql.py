"""MySQL and MariaDB statements lock only the rows they mean to: quebec/db/mysql.py."""

import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction

import quebec
from quebec.db import operations
from quebec.models import Job, Pause, ReadyExecution, ScheduledExecution
from tests.lifecycle_helpers import enqueue_from_threads
from tests.testapp.jobs import RecordJob

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'mysql'", reason="MySQL's locking"),
]


def test_two_transactions_deleting_different_keys_do_not_wait_for_each_other():
    """A DELETE by a list of keys on a small table could be planned as a full scan, locking every
    row; through keyed_join it locks only its own, so a second writer goes straight through."""
    handles = quebec.perform_all_later(RecordJob.build(index) for index in range(20))
    first, second = [handle.id for handle in handles[:10]], [handle.id for handle in handles[10:]]
    holding, done = threading.Event(), threading.Event()
    outcome = {}

    def hold_first():
        try:
            with transaction.atomic():
                outcome["first"] = operations("default").delete_by_pk(ReadyExecution, first)
                holding.set()
                done.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_first)
    holder.start()
    assert holding.wait(10)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 2")
        with transaction.atomic():
            outcome["second"] = operations("default").delete_by_pk(ReadyExecution, second)
    finally:
        done.set()
        holder.join(10)
    assert outcome == {"first": 10, "second": 10}
    assert not ReadyExecution.objects.exists()


def _open_transactions():
    """InnoDB transactions this connection holds open (MariaDB and MySQL alike)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()")
        return cursor.fetchone()[0]


def test_one_job_outside_a_transaction_is_written_in_one_round_trip():
    """Its row, its ready or scheduled row and the COMMIT go as one query, and leave no
    transaction open behind them."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        ready = RecordJob.perform_later("now")
        later = RecordJob.set(wait=600).perform_later("later")
    assert len(captured) == 2 and all(query["sql"].startswith("START TRANSACTION;") for query in captured)
    assert Job.objects.get(pk=ready.id).arguments["args"] == ["now"]
    assert list(ReadyExecution.objects.values_list("job_id", "queue_name")) == [(ready.id, ready.queue_name)]
    scheduled = ScheduledExecution.objects.get()
    assert (scheduled.job_id, scheduled.scheduled_at) == (later.id, Job.objects.get(pk=later.id).scheduled_at)
    assert later.status == "scheduled" and ready.status == "ready"
    assert connection.get_autocommit() and _open_transactions() == 0


def test_a_statement_failing_midway_rolls_back_the_ones_before_it():
    table = Pause._meta.db_table
    insert = f"INSERT INTO {table} (queue_name, created_at) VALUES (%s, NOW())"
    with pytest.raises(IntegrityError):
        operations("default")._send_transaction(
            f"START TRANSACTION; {insert}; {insert}; SELECT 1; COMMIT", ["twice", "twice"]
        )
    assert _open_transactions() == 0 and connection.get_autocommit()
    assert not Pause.objects.filter(queue_name="twice").exists()  # the first INSERT was rolled back
    assert operations("default")._send_transaction(f"START TRANSACTION; {insert}; SELECT 7; COMMIT", ["once"]) == 7
    assert Pause.objects.filter(queue_name="once").exists()


def test_jobs_enqueued_alone_from_many_threads_each_get_their_own_row():
    """LAST_INSERT_ID() is per connection: each handle's id is its own job's, and each job has
    exactly one ready row."""
    enqueue_from_threads()


def test_without_multi_statements_the_enqueue_sends_its_statements_one_by_one():
    """A project that turns mysqlclient's multi_statements off keeps working: the driver would
    refuse statements sent together, so the enqueue takes the general path."""
    from django.test.utils import CaptureQueriesContext

    options = connection.settings_dict["OPTIONS"]
    connection.close()
    options["multi_statements"] = False
    try:
        with CaptureQueriesContext(connection) as captured:
            handle = RecordJob.perform_later("apart")
        assert not any(";" in query["sql"] for query in captured)
        assert len(captured) > 1
        assert ReadyExecution.objects.filter(job_id=handle.id).exists()
        assert Job.objects.get(pk=handle.id).arguments["args"] == ["apart"]
    finally:
        connection.close()
        del options["multi_statements"]


def test_a_job_enqueued_inside_the_callers_transaction_goes_with_it():
    """Inside an atomic block the enqueue must not send its own START TRANSACTION (which would
    commit the caller's work): a rollback takes the job back."""

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        RecordJob.perform_later("atomic")
        assert connection.in_atomic_block and ReadyExecution.objects.count() == 1
        raise Undo
    assert not Job.objects.exists() and not ReadyExecution.objects.exists()
