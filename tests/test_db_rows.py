"""Rows built without the ORM's per-row work: quebec/db/rows.py."""

import warnings
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.db import connection

from quebec.db.rows import RowTemplate, chunks, json_converter, loaded_rows, new_row, value_converter
from quebec.models import Job, ReadyExecution


def test_new_row_needs_every_field_and_sets_them_positionally():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    row = new_row(ReadyExecution, job_id=7, queue_name="mail", priority=-3, created_at=now)
    assert (row.job_id, row.queue_name, row.priority, row.created_at) == (7, "mail", -3, now)
    with pytest.raises(KeyError):
        new_row(ReadyExecution, job_id=7, queue_name="mail", created_at=now)


def test_a_row_template_shares_its_constants_and_takes_every_other_field():
    from django.db.models.signals import post_init

    now = datetime(2026, 12, 1, tzinfo=UTC)
    template = RowTemplate(ReadyExecution, queue_name="mail", created_at=now)
    first, second = template.new(job_id=1, priority=0), template.new(job_id=2, priority=-3)
    assert [(row.job_id, row.queue_name, row.priority, row.created_at) for row in (first, second)] == [
        (1, "mail", 0, now),
        (2, "mail", -3, now),
    ]
    assert first._state.adding and first._state.db is None  # unsaved, as new_row makes them
    second.queue_name = "other"  # each row holds its own values
    assert first.queue_name == "mail" and template.new(job_id=3, priority=0).queue_name == "mail"
    with pytest.raises(KeyError, match="priority"):
        template.new(job_id=4)
    with pytest.raises(KeyError, match="color"):
        template.new(job_id=4, priority=0, color="red")
    with pytest.raises(KeyError, match="color"):
        RowTemplate(ReadyExecution, color="red")
    with pytest.raises(TypeError, match="attempts"):
        RowTemplate(Job, attempts=[])  # one list in every row would be every row's
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=ReadyExecution)
    try:  # a receiver of post_init sees the rows the template makes, through Model.__init__
        row = template.new(job_id=5, priority=1)
    finally:
        post_init.disconnect(receiver, sender=ReadyExecution)
    assert seen == [row] and (row.job_id, row.queue_name) == (5, "mail")


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


def test_time_and_json_converters_give_what_django_sends(settings):
    """The converters' shortcuts (times on SQLite, JSON as text) send exactly Django's values."""
    field = Job._meta.get_field("finished_at")
    moment = datetime(2026, 12, 1, 20, 38, 5, 123456, tzinfo=UTC)
    times = [None, moment, moment.replace(microsecond=0), moment.astimezone(timezone(timedelta(hours=-5)))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # Django warns of the naive time and the date
        odd = [datetime(2026, 12, 1, 9, 30), date(2026, 12, 1)]
        for use_tz in (True, False):
            settings.USE_TZ = use_tz
            values = times + odd if use_tz else [None, datetime(2026, 12, 1, 9, 30)]
            convert = value_converter(field, connection)
            assert [convert(value) for value in values] == [field.get_db_prep_save(v, connection) for v in values]
    settings.USE_TZ = True
    attempts = Job._meta.get_field("attempts")
    convert = json_converter(attempts, connection)
    for value in (None, [], [{"number": 1, "outcome": "finished"}], {"é": "ü"}):

        def plain(value):  # psycopg wraps JSON in an adapter; the others send text
            return repr(getattr(value, "obj", value))

        assert plain(convert(value)) == plain(attempts.get_db_prep_save(value, connection))


def test_chunks_cover_every_value_once():
    assert chunks(range(7), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert chunks([], 3) == []


@pytest.mark.django_db
def test_loaded_rows_are_the_rows_the_orm_loads():
    from django.db.models.signals import post_init

    from tests.testapp.jobs import RecordJob

    handle = RecordJob.set(wait=60, priority=-4).perform_later("a", nested={"k": [1, 2.5, None]})
    Job.objects.filter(pk=handle.id).update(
        attempts=[{"attempt": 1, "error": "é"}], progress={"done": 3, "total": 9}, return_value=None
    )
    columns = ", ".join(connection.ops.quote_name(field.column) for field in Job._meta.concrete_fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {Job._meta.db_table} WHERE id = %s", [handle.id])
        rows = cursor.fetchall()
    expected = Job.objects.get(pk=handle.id)

    def fields(job):
        return {field.attname: getattr(job, field.attname) for field in Job._meta.concrete_fields}

    [loaded] = loaded_rows(Job, rows, connection)
    assert fields(loaded) == fields(expected)
    assert (loaded._state.adding, loaded._state.db) == (False, connection.alias)
    loaded.priority = 5
    loaded.save(update_fields=["priority"])  # a loaded row saves as an existing one
    assert Job.objects.get(pk=handle.id).priority == 5 and Job.objects.count() == 1

    initialised = []

    def seen(sender, instance, **kwargs):
        initialised.append(instance)

    post_init.connect(seen, sender=Job)
    try:
        [through_init] = loaded_rows(Job, rows, connection)  # a listener sees it made the usual way
    finally:
        post_init.disconnect(seen, sender=Job)
    assert initialised == [through_init] and fields(through_init) == fields(expected)


@pytest.mark.django_db
def test_loaded_rows_give_each_job_its_own_empty_json_values():
    """An empty object or list is made without parsing it, but never shared between jobs: a
    job that changes its own must not change another's."""
    from tests.testapp.jobs import RecordJob

    ids = [RecordJob.perform_later(index).id for index in range(2)]
    Job.objects.filter(pk=ids[1]).update(attempts=[], exception_executions={}, progress={"done": 0}, return_value=[])
    columns = ", ".join(connection.ops.quote_name(field.column) for field in Job._meta.concrete_fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {Job._meta.db_table} WHERE id IN (%s, %s) ORDER BY id", ids)
        rows = cursor.fetchall()
    first, second = loaded_rows(Job, rows, connection)
    for loaded, expected in zip((first, second), Job.objects.filter(pk__in=ids).order_by("id"), strict=True):
        for name in ("attempts", "exception_executions", "progress", "return_value", "arguments"):
            assert getattr(loaded, name) == getattr(expected, name), name
            assert type(getattr(loaded, name)) is type(getattr(expected, name)), name
    assert first.attempts == [] and first.attempts is not second.attempts
    assert first.exception_executions == {} and first.exception_executions is not second.exception_executions
    first.attempts.append({"attempt": 1})
    assert second.attempts == []
