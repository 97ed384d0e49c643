"""MySQL and MariaDB statements lock only the rows they mean to: quebec/db/mysql.py."""

import threading

import pytest
from django.db import connection, connections, transaction

import quebec
from quebec.db import operations
from quebec.models import ReadyExecution
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
