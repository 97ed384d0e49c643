"""Building rows without the ORM's per-row work: positional models, converted values, JSON batches."""

import json

from django.db import models


def new_row(model, **values):
    """An unsaved ``model`` instance with every concrete field given (``KeyError`` if one is
    missing). Built positionally: keyword ``Model.__init__`` looks up each field's default,
    which a bulk insert would pay for every row."""
    return model(*[values[field.attname] for field in model._meta.concrete_fields])


def value_converter(field, connection):
    """A function giving ``field``'s database value, as ``get_db_prep_save`` does, that converts
    each distinct hashable value once per batch: a batch's rows share their times and most of
    their values, and the conversion is most of an insert's Python time."""
    if isinstance(field, (models.CharField, models.IntegerField)) and not field.get_internal_type().startswith("Auto"):
        return lambda value: value  # our rows already hold str and int
    cache = {}

    def convert(value):
        key = (type(value), value)  # 1, 1.0 and True are equal keys, but not the same JSON
        try:
            return cache[key]
        except KeyError:
            cache[key] = converted = field.get_db_prep_save(value, connection)
            return converted
        except TypeError:  # unhashable: a dict or list for a JSON field
            return field.get_db_prep_save(value, connection)

    return convert


def json_rows(fields, objects, connection):
    """``objects``' values of ``fields`` as one JSON document, a list of objects keyed by column
    plus their ``position`` (PostgreSQL reads it back with ``jsonb_to_recordset``). One string to
    send however many rows there are: json.dumps is far quicker than quoting each value of an
    array, and JSON columns go in as they are, not encoded twice."""
    rows = []
    for position, obj in enumerate(objects):
        row = {"position": position}
        for field in fields:
            value = getattr(obj, field.attname)
            if value is not None and isinstance(field, models.UUIDField):
                value = str(value)
            elif value is not None and isinstance(field, models.DateTimeField):
                value = field.get_db_prep_save(value, connection).isoformat()
            row[field.column] = value
        rows.append(row)
    encoders = {field.encoder for field in fields if isinstance(field, models.JSONField)} - {None}
    return json.dumps(rows, cls=encoders.pop() if encoders else None)


def chunks(values, size):
    values = list(values)
    return [values[start:start + size] for start in range(0, len(values), size)]
