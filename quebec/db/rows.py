"""Building rows without the ORM's per-row work: positional models, converted values."""

import datetime
import functools
import json
from functools import partial

from django.conf import settings
from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import signals
from django.db.models.base import ModelState


def new_row(model, **values):
    """An unsaved ``model`` instance with every concrete field given (``KeyError`` if one is
    missing). ``Model.__init__`` looks up each field's default and sends two signals, which a
    bulk insert would pay for every row: the fields are set directly, unless a receiver of
    those signals listens to ``model``."""
    attnames, named = _attnames(model)
    if not values.keys() >= named:
        raise KeyError(next(name for name in attnames if name not in values))
    if not _plain_init(model):
        return model(*[values[name] for name in attnames])
    return _bare(model, values)


class RowTemplate:
    """Unsaved ``model`` instances that share the values of ``constants`` and take every other
    field's from ``new(**values)`` (``KeyError`` if one is missing or unknown), as ``new_row``
    makes them. Copying the shared values costs less than checking and setting each field by
    name: a bulk enqueue makes one row a job. The constants are the same objects in every row,
    so they must be immutable: a dict or a list is refused."""

    def __init__(self, model, **constants):
        attnames, named = _attnames(model)
        if unknown := constants.keys() - named:
            raise KeyError(sorted(unknown)[0])
        if shared := [name for name, value in constants.items() if isinstance(value, (dict, list, set))]:
            raise TypeError(f"{model.__name__}.{shared[0]}: a mutable value cannot be shared by every row")
        self.model = model
        self.constants = constants
        self.varying = named - constants.keys()

    def new(self, **values):
        if values.keys() != self.varying:
            raise KeyError(sorted(self.varying - values.keys() or values.keys() - self.varying)[0])
        if not _plain_init(self.model):
            return new_row(self.model, **self.constants, **values)
        row = _bare(self.model, self.constants)
        row.__dict__.update(values)
        return row


@functools.cache
def _attnames(model):
    """``model``'s concrete fields' attnames, in their order and as a set."""
    attnames = tuple(field.attname for field in model._meta.concrete_fields)
    return attnames, frozenset(attnames)


def _plain_init(model):
    """Whether an instance of ``model`` may skip ``Model.__init__``: no receiver of its
    ``pre_init`` or ``post_init`` signals would miss it. (Most projects connect none at all,
    which is quicker to see than whether one listens to ``model``.)"""
    if not signals.pre_init.receivers and not signals.post_init.receivers:
        return True
    return not (signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model))


def _bare(model, values, loaded_from=None):
    """An instance holding ``values`` (every field's, by attname), made without ``__init__``;
    ``loaded_from``: the alias it was read from, for a row that exists."""
    row = model.__new__(model)
    row._state = ModelState()
    if loaded_from is not None:
        row._state.adding = False
        row._state.db = loaded_from
    row.__dict__.update(values)
    return row


def loaded_rows(model, rows, connection):
    """``model`` instances of ``rows`` read from ``connection`` (each row the values of
    ``model``'s concrete fields, in their order), converted as the ORM converts them, without its
    per-row work: a raw queryset of a claim's jobs costs the worker more Python than the claim's
    statement. Only the fields with converters (JSON on most databases) are converted."""
    fields = model._meta.concrete_fields
    converting = []
    for index, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        converters = [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)]
        converters = [_empty_json_first(field, converter) for converter in converters]
        if converters:
            converting.append((index, converters, column))
    attnames = [field.attname for field in fields]
    plain = _plain_init(model)
    loaded = []
    for row in rows:
        values = list(row)
        for index, converters, column in converting:
            value = values[index]
            for converter in converters:
                value = converter(value, column, connection)
            values[index] = value
        if plain:
            instance = _bare(model, zip(attnames, values), loaded_from=connection.alias)
        else:
            instance = model.from_db(connection.alias, attnames, values)
        loaded.append(instance)
    return loaded


# The JSON texts a claimed job's columns hold most often besides its arguments (no error yet, no
# attempt yet), and the values they decode to: new ones each time, for a job may change them.
_EMPTY_JSON = {"{}": dict, "[]": list}


def _empty_json_first(field, converter):
    """``converter``, or for Django's own decoding of a plain JSON field, one that makes the
    empty object and list without parsing them: two of the three JSON columns a claim reads
    hold one of those, and ``json.loads`` was a tenth of the worker loop's time."""
    if (
        not isinstance(field, models.JSONField)
        or field.decoder is not None
        or getattr(converter, "__func__", None) is not models.JSONField.from_db_value
    ):
        return converter

    def convert(value, expression, connection):
        if type(value) is str:
            empty = _EMPTY_JSON.get(value)
            if empty is not None:
                return empty()
        return converter(value, expression, connection)

    return convert


def value_converter(field, connection):
    """A function giving ``field``'s database value, as ``get_db_prep_save`` does, that converts
    each distinct hashable value once per batch: a batch's rows share their times and most of
    their values, and the conversion is most of an insert's Python time."""
    if isinstance(field, (models.CharField, models.IntegerField)) and not field.get_internal_type().startswith("Auto"):
        return lambda value: value  # our rows already hold str and int
    if isinstance(field, models.DateTimeField) and connection.vendor == "sqlite" and settings.USE_TZ:
        prepare = _sqlite_time(field, connection)
    else:
        prepare = partial(field.get_db_prep_save, connection=connection)
    cache = {}

    def convert(value):
        key = (type(value), value)  # 1, 1.0 and True are equal keys, but not the same JSON
        try:
            return cache[key]
        except KeyError:
            cache[key] = converted = prepare(value)
            return converted
        except TypeError:  # unhashable: a dict or list for a JSON field
            return prepare(value)

    return convert


def _sqlite_time(field, connection):
    """SQLite keeps a time as text in the connection's zone: what Django's four calls make of an
    aware datetime, made directly (a batch of ends has a time per job, so most are converted,
    not found in the cache). Anything else goes through Django, which warns of a naive time."""
    zone = connection.timezone

    def convert(value):
        if value is None:
            return None
        if type(value) is not datetime.datetime or value.tzinfo is None:
            return field.get_db_prep_save(value, connection)
        return str(value.astimezone(zone).replace(tzinfo=None))

    return convert


def json_converter(field, connection):
    """A function giving JSON ``field``'s database value, as ``get_db_prep_save`` does. Where the
    database takes JSON as text (SQLite, MySQL), that is ``json.dumps`` of the value, called
    directly: a claim's batch of ends writes three JSON columns per job, and the five Python calls
    Django makes around each ``json.dumps`` were a tenth of the worker loop's time on SQLite."""
    if (
        type(connection.ops).adapt_json_value is not BaseDatabaseOperations.adapt_json_value
        or type(field).get_db_prep_save is not models.JSONField.get_db_prep_save
        or type(field).get_prep_value is not models.JSONField.get_prep_value
    ):
        return partial(field.get_db_prep_save, connection=connection)
    encoder = field.encoder
    return lambda value: None if value is None else json.dumps(value, cls=encoder)


def chunks(values, size):
    values = list(values)
    return [values[start : start + size] for start in range(0, len(values), size)]
