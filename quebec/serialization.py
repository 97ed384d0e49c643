"""Job arguments to JSON and back.

Plain JSON values are stored as they are. The other supported types are stored as small tagged
objects (``{"_quebec": "datetime", "value": ...}``) so they come back as the same type. Model
instances are stored as a reference and fetched again when the job runs.
"""

import datetime
import decimal
import math
import uuid

from django.apps import apps
from django.db import models

TAG = "_quebec"
SUPPORTED = "JSON types, datetime, date, time, timedelta, Decimal, UUID, tuples and saved model instances"


class DeserializationError(Exception):
    """A stored argument cannot be turned back into its value (e.g. its row was deleted)."""


def serialize_arguments(args, kwargs):
    """The JSON document stored in ``Job.arguments``; raises ``TypeError`` naming a bad argument."""
    return {
        "args": [serialize(value, f"args[{index}]") for index, value in enumerate(args)],
        "kwargs": {_key(name, "kwargs"): serialize(value, f"kwargs[{name!r}]") for name, value in kwargs.items()},
    }


def deserialize_arguments(document):
    """``(args, kwargs)`` from a stored ``Job.arguments`` document."""
    args = [deserialize(value, f"args[{index}]") for index, value in enumerate(document.get("args", []))]
    kwargs = {name: deserialize(value, f"kwargs[{name!r}]") for name, value in document.get("kwargs", {}).items()}
    return args, kwargs


def _key(key, path):
    if not isinstance(key, str):
        raise TypeError(f"argument {path} has a key {key!r} of type {type(key).__name__}; only str keys can be stored")
    if key == TAG:
        raise TypeError(f"argument {path} uses the reserved key {TAG!r}")
    return key


def serialize(value, path):
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"argument {path} is {value!r}, which JSON cannot store")
        return value
    if isinstance(value, list):
        return [serialize(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dict):
        return {_key(key, path): serialize(item, f"{path}[{key!r}]") for key, item in value.items()}
    for kind, (python_type, encode, _) in CODECS.items():
        if isinstance(value, python_type):
            return {TAG: kind, "value": encode(value, path)}
    raise TypeError(f"argument {path} is a {type(value).__qualname__}, which Quebec cannot store; use {SUPPORTED}")


def deserialize(value, path):
    if isinstance(value, list):
        return [deserialize(item, path) for item in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(TAG)
    if kind is None:
        return {key: deserialize(item, f"{path}[{key!r}]") for key, item in value.items()}
    if kind not in CODECS:
        raise DeserializationError(f"argument {path} has an unknown stored type {kind!r}")
    return CODECS[kind][2](value["value"], path)


def _encode_model(instance, path):
    if instance.pk is None:
        raise TypeError(f"argument {path} is an unsaved {type(instance).__qualname__}; save it before enqueueing")
    return {
        "model": instance._meta.label_lower,
        "pk": serialize(instance.pk, f"{path}.pk"),
    }


def _decode_model(reference, path):
    label = reference["model"]
    try:
        model = apps.get_model(label)
    except LookupError:
        raise DeserializationError(f"argument {path} refers to model {label!r}, which is not installed") from None
    pk = deserialize(reference["pk"], path)
    try:
        return model._default_manager.get(pk=pk)
    except model.DoesNotExist:
        raise DeserializationError(f"argument {path}: {model._meta.label} with pk {pk!r} no longer exists") from None


def _encode_timedelta(value, path):
    return [value.days, value.seconds, value.microseconds]


def _decode_timedelta(value, path):
    days, seconds, microseconds = value
    return datetime.timedelta(days=days, seconds=seconds, microseconds=microseconds)


# kind: (Python type, encode(value, path), decode(stored, path)). datetime before date: it is one.
CODECS = {
    "tuple": (
        tuple,
        lambda value, path: [serialize(item, f"{path}[{index}]") for index, item in enumerate(value)],
        lambda value, path: tuple(deserialize(item, path) for item in value),
    ),
    "datetime": (
        datetime.datetime,
        lambda value, path: value.isoformat(),
        lambda value, path: datetime.datetime.fromisoformat(value),
    ),
    "date": (
        datetime.date,
        lambda value, path: value.isoformat(),
        lambda value, path: datetime.date.fromisoformat(value),
    ),
    "time": (
        datetime.time,
        lambda value, path: value.isoformat(),
        lambda value, path: datetime.time.fromisoformat(value),
    ),
    "timedelta": (datetime.timedelta, _encode_timedelta, _decode_timedelta),
    "decimal": (decimal.Decimal, lambda value, path: str(value), lambda value, path: decimal.Decimal(value)),
    "uuid": (uuid.UUID, lambda value, path: str(value), lambda value, path: uuid.UUID(value)),
    "model": (models.Model, _encode_model, _decode_model),
}
