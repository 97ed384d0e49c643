"""The demo project's settings plus a test app; the database comes from DATABASE_URL."""

import os
from pathlib import Path

import environ

from testproject.settings import *  # noqa: F403
from testproject.settings import BASE_DIR, DATABASES, INSTALLED_APPS

# tests.otherapp has an EmailJob, as the demo app does: two apps may each define one.
# tests.secondapp's jobs are bound to the second database.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp", "tests.otherapp", "tests.secondapp"]


def _second_database(first):
    """A second database beside the first: its name with a 2 on the same server, or a second
    SQLite file beside the first."""
    if first["ENGINE"] == "django.db.backends.sqlite3":
        name = Path(first["NAME"])
        return {**first, "NAME": str(name.with_name(f"{name.stem}2{name.suffix}"))}
    return {**first, "NAME": f"{first['NAME']}2"}


# Tests of several databases (tests/test_multidb.py) use "second": QUEBEC_TEST_SECOND_DATABASE_URL,
# which may be of another kind than the first (SQLite + PostgreSQL), or one beside the first.
_second_url = os.environ.get("QUEBEC_TEST_SECOND_DATABASE_URL")
DATABASES["second"] = environ.Env.db_url_config(_second_url) if _second_url else _second_database(DATABASES["default"])
if DATABASES["second"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["second"].setdefault("OPTIONS", {})["charset"] = "utf8mb4"

for _database in DATABASES.values():
    if _database["ENGINE"] == "django.db.backends.sqlite3":
        # A file, not memory: tests start real quebec_run processes that must see the same data.
        # Named after the database, so that runs with different DATABASE_URLs do not collide.
        _name = Path(_database["NAME"])
        _name = _name if _name.is_absolute() else BASE_DIR.parent / "tests" / _name
        _database["TEST"] = {"NAME": str(_name.with_name(f"test_{_name.stem}.sqlite3"))}
# The PostgreSQL databases sit behind a transaction pooler (scripts/test's PgBouncer run):
# Django's marker for one, which Quebec reads too (quebec.db.connection.transaction_pooled).
if os.environ.get("QUEBEC_TEST_TRANSACTION_POOLER"):
    for _database in DATABASES.values():
        if _database["ENGINE"] == "django.db.backends.postgresql":
            _database["DISABLE_SERVER_SIDE_CURSORS"] = True
    # "direct": the default test database reached without the pooler, for a worker's LISTEN
    # (listen_databases). No test asks for it, so no test database is made for it.
    if _direct_url := os.environ.get("QUEBEC_TEST_DIRECT_DATABASE_URL"):
        _default = DATABASES["default"]
        DATABASES["direct"] = {
            **environ.Env.db_url_config(_direct_url),
            "NAME": _default.get("TEST", {}).get("NAME") or f"test_{_default['NAME']}",
        }

# Created on its own when no test of several databases runs (tests/conftest.py: django_db_setup).
DATABASES["second"]["TEST"] = {**DATABASES["second"].get("TEST", {}), "DEPENDENCIES": []}

QUEBEC = {}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Serve static files from the finders as they are, without a collectstatic step.
WHITENOISE_AUTOREFRESH = True

# Django's Tasks framework, backed by Quebec (tests/testapp/tasks.py).
TASKS = {
    "default": {"BACKEND": "quebec.backends.QuebecBackend", "QUEUES": ["default", "urgent", "slow"]},
}
