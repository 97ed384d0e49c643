"""Connections: quebec/db/connection.py."""

import pytest
from django.db import connection

from quebec.db import close_broken_connections, write_transaction

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_connection_a_job_left_in_a_transaction_is_closed_and_its_work_rolled_back():
    from quebec.models import Pause

    connection.set_autocommit(False)
    Pause.objects.create(queue_name="left-open")
    close_broken_connections()
    assert connection.connection is None
    assert connection.get_autocommit()
    assert not Pause.objects.filter(queue_name="left-open").exists()


def test_a_healthy_connection_is_kept():
    connection.ensure_connection()
    raw = connection.connection
    close_broken_connections(ping=True)
    assert connection.connection is raw


def test_write_transaction_is_atomic_and_leaves_the_connection_as_it_found_it():
    from quebec.models import Pause

    mode = getattr(connection, "transaction_mode", None)
    with pytest.raises(RuntimeError):
        with write_transaction("default"):
            Pause.objects.create(queue_name="rolled-back")
            raise RuntimeError("undo")
    assert not Pause.objects.filter(queue_name="rolled-back").exists()
    assert getattr(connection, "transaction_mode", None) == mode
