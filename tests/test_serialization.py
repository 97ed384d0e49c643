import datetime
import decimal
import io
import uuid

import pytest

from quebec.serialization import DeserializationError, deserialize_arguments, serialize_arguments
from tests.testapp.models import Account

pytestmark = pytest.mark.django_db


def round_trip(*args, **kwargs):
    import json

    stored = json.loads(json.dumps(serialize_arguments(args, kwargs)))  # what the database keeps
    return deserialize_arguments(stored)


def test_json_values_round_trip():
    args, kwargs = round_trip(1, "two", 3.5, None, True, [1, [2]], {"nested": {"a": [1, None]}}, key="value")
    assert args == [1, "two", 3.5, None, True, [1, [2]], {"nested": {"a": [1, None]}}]
    assert kwargs == {"key": "value"}


def test_richer_types_come_back_as_themselves():
    values = [
        datetime.datetime(2026, 11, 29, 9, 30, 15, 123456, tzinfo=datetime.UTC),
        datetime.datetime(2026, 1, 2, 3, 4, 5),
        datetime.date(2026, 2, 28),
        datetime.time(23, 59, 1, 5),
        datetime.timedelta(days=-1, seconds=5, microseconds=7),
        decimal.Decimal("12345678901234567890.000000001"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        (1, (2, "three")),
    ]
    args, kwargs = round_trip(*values, when={"at": values[0]})
    assert args == values
    assert [type(value) for value in args] == [type(value) for value in values]
    assert kwargs["when"]["at"] == values[0]


def test_model_instances_are_stored_by_reference_and_fetched_again():
    account = Account.objects.create(name="before")
    stored = serialize_arguments([account], {})
    assert stored["args"][0]["value"] == {"model": "testapp.account", "pk": account.pk}
    Account.objects.filter(pk=account.pk).update(name="after")
    args, _ = deserialize_arguments(stored)
    assert args[0] == account and args[0].name == "after"


def test_deleted_model_instance_fails_with_a_clear_error():
    account = Account.objects.create(name="gone")
    stored = serialize_arguments([], {"account": account})
    account.delete()
    with pytest.raises(
        DeserializationError, match=r"kwargs\['account'\]: testapp.Account with pk \d+ no longer exists"
    ):
        deserialize_arguments(stored)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ([io.BytesIO()], {}, r"argument args\[0\] is a BytesIO"),
        ([], {"files": [1, {"handle": object()}]}, r"argument kwargs\['files'\]\[1\]\['handle'\] is a object"),
        ([{1: "int key"}], {}, r"argument args\[0\] has a key 1 of type int"),
        ([float("nan")], {}, r"argument args\[0\] is nan"),
        ([{"_quebec": "x"}], {}, r"reserved key"),
        ([{1, 2}], {}, r"is a set"),
    ],
)
def test_unsupported_values_are_refused_naming_the_argument(args, kwargs, message):
    with pytest.raises(TypeError, match=message):
        serialize_arguments(args, kwargs)


def test_unsaved_model_instance_is_refused():
    with pytest.raises(TypeError, match=r"args\[0\] is an unsaved Account"):
        serialize_arguments([Account(name="new")], {})
