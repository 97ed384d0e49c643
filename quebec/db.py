"""Database helpers shared by the models: write transactions and SQLite tuning."""

import contextlib

from django.db import connections, models, transaction
from django.db.backends.signals import connection_created
from django.dispatch import receiver

# Long enough that a burst of writers queues up instead of failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000
# The PostgreSQL channel that tells listening workers jobs became ready.
READY_CHANNEL = "quebec_ready"


@contextlib.contextmanager
def write_transaction(using):
    """An atomic block that takes the database's write lock up front.

    PostgreSQL and MySQL lock rows as statements touch them, so a plain ``atomic()`` is enough.
    SQLite has one writer at a time: a transaction that reads and then writes can fail at once
    with "database is locked" when another writer got in between, busy timeout or not. Starting
    with ``BEGIN IMMEDIATE`` makes it wait its turn instead.
    """
    connection = connections[using]
    immediate = connection.vendor == "sqlite" and not connection.in_atomic_block
    if not immediate:
        with transaction.atomic(using=using):
            yield
        return
    connection.ensure_connection()  # the backend sets transaction_mode when it connects
    previous = connection.transaction_mode
    connection.transaction_mode = "IMMEDIATE"
    try:
        with transaction.atomic(using=using):
            connection.transaction_mode = previous
            yield
    finally:
        connection.transaction_mode = previous


@receiver(connection_created)
def tune_sqlite(sender, connection, **kwargs):
    """Let readers and writers overlap (WAL) and make writers wait rather than fail."""
    if connection.vendor != "sqlite" or connection.settings_dict["NAME"] in ("", ":memory:"):
        return
    if "mode=memory" in str(connection.settings_dict["NAME"]):
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        if cursor.fetchone()[0] < SQLITE_BUSY_TIMEOUT_MS:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode")
        if cursor.fetchone()[0] != "wal":
            cursor.execute("PRAGMA journal_mode = WAL")


def close_broken_connections(ping=False):
    """Close this thread's connections that a job or a lost server left unusable.

    Like Django's ``close_old_connections`` but without ``CONN_MAX_AGE``: a worker thread keeps
    its connection for its whole life instead of reconnecting around every job. With ``ping``,
    each open connection is checked with a round trip (as ``CONN_HEALTH_CHECKS`` does per
    request), so that a session the server dropped while the thread waited does not fail the
    next job.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]:
            connection.close()  # a job left autocommit off: closing rolls its work back
        elif connection.errors_occurred or ping:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()


def fetch_locked(queryset, mysql_index):
    """Evaluate a ``select_for_update()`` values_list queryset; returns its rows as tuples.

    On MySQL/MariaDB the optimizer may read a small table in full and sort it, and InnoDB then
    locks every row it read, not just the LIMIT it returns: one claimer takes them all and the
    others find nothing. Naming the index that matches the ORDER BY makes it walk the index in
    order and stop at the LIMIT.
    """
    connection = connections[queryset.db]
    if connection.vendor != "mysql":
        return [tuple(row) for row in queryset]
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    table = connection.ops.quote_name(queryset.model._meta.db_table)
    hint = f"FROM {table} FORCE INDEX ({connection.ops.quote_name(mysql_index)})"
    with connection.cursor() as cursor:
        cursor.execute(sql.replace(f"FROM {table}", hint, 1), params)
        return [tuple(row) for row in cursor.fetchall()]


# Keys per statement when MySQL deletes through a list of keys: bounds the statement's size.
MYSQL_KEYS_PER_STATEMENT = 500


def mysql_keyed_join(keys, table, column):
    """``FROM`` clause and params reaching each row of ``table`` whose ``column`` is in ``keys``
    through that column's unique index, on MySQL/MariaDB.

    Given ``column IN (...)`` on a small table, MySQL may plan a full scan, which locks (and
    waits on) every row, including ones other transactions hold; two workers doing that deadlock.
    Here the keys are a derived table, and STRAIGHT_JOIN makes it the driving side, so each row
    is found by one index lookup and only matching rows are locked.
    """
    derived = " UNION ALL ".join(["SELECT %s AS k"] + ["SELECT %s"] * (len(keys) - 1))
    return f"FROM ({derived}) AS keyed STRAIGHT_JOIN {table} AS t ON t.{column} = keyed.k", list(keys)


def _chunks(values, size):
    values = list(values)
    return [values[start:start + size] for start in range(0, len(values), size)]


def delete_by_pk(model, pks, using):
    """Delete rows by primary key; returns how many were deleted."""
    connection = connections[using]
    if connection.vendor != "mysql":
        return model._default_manager.using(using).filter(pk__in=pks).delete()[0]
    quote = connection.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    deleted = 0
    with connection.cursor() as cursor:  # without the ORM's delete machinery
        for chunk in _chunks(pks, MYSQL_KEYS_PER_STATEMENT):
            join, params = mysql_keyed_join(chunk, table, pk)
            cursor.execute(f"DELETE t {join}", params)
            deleted += cursor.rowcount
    return deleted


def delete_claims(model, job_ids, process_id, using):
    """Delete the claims of ``job_ids`` that ``process_id`` holds; returns the ids deleted.

    Deleting by (job, process) is the ownership check of a batch of finished jobs: a claim that
    was released or pruned meanwhile is not deleted, and its job must not be touched.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    job = quote(model._meta.get_field("job").column)
    process = quote(model._meta.get_field("process").column)
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            # MySQL's multi-table DELETE returns no rows: lock the claims still ours, then
            # delete exactly those (see mysql_keyed_join for why through a derived table).
            owned = set()
            for chunk in _chunks(job_ids, MYSQL_KEYS_PER_STATEMENT):
                join, params = mysql_keyed_join(chunk, table, job)
                cursor.execute(f"SELECT t.{job} {join} WHERE t.{process} = %s FOR UPDATE", [*params, process_id])
                owned.update(row[0] for row in cursor.fetchall())
            delete_by_pk(model, sorted(owned), using)  # the claim's primary key is its job
            return owned
        where = f"{process} = %s AND {job} IN ({', '.join(['%s'] * len(job_ids))})"
        params = [process_id, *job_ids]
        if connection.features.can_return_columns_from_insert:  # such versions have DELETE ... RETURNING too
            cursor.execute(f"DELETE FROM {table} WHERE {where} RETURNING {job}", params)
            return {row[0] for row in cursor.fetchall()}
        # An old SQLite: the caller's write transaction holds the only write lock, so nothing
        # changes between the read and the delete.
        cursor.execute(f"SELECT {job} FROM {table} WHERE {where}", params)
        deleted = {row[0] for row in cursor.fetchall()}
        cursor.execute(f"DELETE FROM {table} WHERE {where}", params)
        return deleted


def update_rows(model, objects, fields, using):
    """Write ``fields`` of each of ``objects`` to its row, matched by primary key.

    One statement text for all rows, sent with ``executemany``: psycopg pipelines it into a
    single round trip, and it skips building a query per object the way ``save()`` does. On
    MySQL, whose driver would send the rows one by one, one UPDATE with a CASE per column.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in columns)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    rows = [
        [*(field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns), obj.pk]
        for obj in objects
    ]
    if connection.vendor == "mysql" and len(rows) > 1:
        # MySQLdb sends executemany's UPDATEs one by one: one statement with a CASE per column
        # instead. Only the primary key is read, and InnoDB's semi-consistent read lets an UPDATE
        # pass rows others have locked, so this locks no more than the statements one by one.
        pk = quote(meta.pk.column)
        whens = " ".join([f"WHEN %s THEN %s"] * len(rows))
        sets = ", ".join(f"{quote(field.column)} = CASE {pk} {whens} END" for field in columns)
        sql = f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {pk} IN ({', '.join(['%s'] * len(rows))})"
        params = [value for index in range(len(columns)) for row in rows for value in (row[-1], row[index])]
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, *(row[-1] for row in rows)])
        return
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


class _Notify:
    """The commit hook that sends the NOTIFY; its type lets a transaction register only one."""

    def __init__(self, using):
        self.using = using

    def __call__(self):
        with connections[self.using].cursor() as cursor:
            cursor.execute(f"NOTIFY {READY_CHANNEL}")


def notify_ready(using):
    """Wake listening PostgreSQL workers once the current transaction commits.

    One NOTIFY per transaction however many jobs it made ready, sent after the commit so that
    a woken worker finds them. A failed NOTIFY is only logged: workers poll as well.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    from quebec import conf

    if not conf.get().use_listen_notify:
        return
    if connection.in_atomic_block and any(isinstance(hook, _Notify) for _, hook, _ in connection.run_on_commit):
        return  # this transaction notifies already
    transaction.on_commit(_Notify(using), using=using, robust=True)


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


def insert_rows(model, objects, using, batch_size=500):
    """INSERT ``objects`` (unsaved instances of ``model``) and set their primary keys.

    What ``bulk_create`` does for Quebec's own rows, at a fraction of its cost per row: the
    statement is built once per batch, and each distinct value goes through its field's own
    conversion once (``value_converter``), without the per-row, per-field machinery of the
    ORM's insert compiler.
    """
    if not objects:
        return
    connection = connections[using]
    if connection.vendor == "postgresql" and len(objects) > 1:
        # Django inserts many rows on PostgreSQL with one array per column (UNNEST): fewer
        # parameters to adapt than a VALUES list, so it beats the statement below there.
        model._default_manager.using(using).bulk_create(objects)
        return
    quote = connection.ops.quote_name
    meta = model._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key or not field.auto_created]
    auto_pk = meta.pk.auto_created
    head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) VALUES "
    row = f"({', '.join(['%s'] * len(fields))})"
    returning = f" RETURNING {quote(meta.pk.column)}" if auto_pk else ""
    with connection.cursor() as cursor:
        converters = [(field.attname, value_converter(field, connection)) for field in fields]
        if auto_pk and not connection.features.can_return_rows_from_bulk_insert:
            # MySQL hands back only the id of a single-row insert.
            for obj in objects:
                cursor.execute(head + row, [convert(getattr(obj, name)) for name, convert in converters])
                obj.pk = cursor.lastrowid
                obj._state.adding, obj._state.db = False, using
            return
        for start in range(0, len(objects), batch_size):
            batch = objects[start : start + batch_size]
            params = [convert(getattr(obj, name)) for obj in batch for name, convert in converters]
            cursor.execute(head + ", ".join([row] * len(batch)) + returning, params)
            ids = [row_id for row_id, in cursor.fetchall()] if auto_pk else None
            for index, obj in enumerate(batch):
                if auto_pk:
                    obj.pk = ids[index]
                obj._state.adding, obj._state.db = False, using
