"""Rows built without the ORM's per-row work: quebec/db/rows.py."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from quebec.db.rows import chunks, new_row, value_converter
from quebec.models import Job, ReadyExecution


def test_new_row_needs_every_field_and_sets_them_positionally():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    row = new_row(ReadyExecution, job_id=7, queue_name="mail", priority=-3, created_at=now)
    assert (row.job_id, row.queue_name, row.priority, row.created_at) == (7, "mail", -3, now)
    with pytest.raises(KeyError):
        new_row(ReadyExecution, job_id=7, queue_name="mail", created_at=now)


def test_value_converter_keeps_equal_values_of_different_types_apart():
    field = Job._meta.get_field("return_value")
    convert = value_converter(field, connection)
    values = [1, True, 1.0, {"a": [1]}, None, 1]

    def plain(value):  # psycopg wraps JSON in an adapter; the others send text
        return repr(getattr(value, "obj", value))

    assert [plain(convert(value)) for value in values] == [
        plain(field.get_db_prep_save(value, connection)) for value in values
    ]
    assert plain(convert(1)) != plain(convert(True))
    text = value_converter(Job._meta.get_field("queue_name"), connection)
    assert text("mail") == "mail"


def test_chunks_cover_every_value_once():
    assert chunks(range(7), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert chunks([], 3) == []
