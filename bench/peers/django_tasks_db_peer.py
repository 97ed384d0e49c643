"""The workload for ``django-tasks-db`` (Django's ``django.tasks`` with a database backend),
run inside its own virtualenv.

    python django_tasks_db_peer.py enqueue --database-url URL --single N --jobs N
    python django_tasks_db_peer.py worker --database-url URL

``enqueue`` migrates, empties the results table, times ``noop.enqueue()`` one task at a time,
then 1,000 ``enqueue()`` calls per transaction (the backend has no bulk API), and leaves the
second batch ready. ``worker`` is the backend's own ``db_worker`` management command, which
runs one task at a time, polling every 0.1 s.
"""

import argparse
import json
import sys
import time
from urllib.parse import urlparse

import django
from django.conf import settings

CHUNK = 1000


def database_settings(url):
    """Django's DATABASES entry for a sqlite:///path or postgres:// URL."""
    parts = urlparse(url)
    if parts.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": parts.path.removeprefix("/") if parts.path.startswith("//") else parts.path,
        }
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "",
        "PORT": parts.port or "",
    }


def setup(url):
    settings.configure(
        INSTALLED_APPS=["django_tasks_db"],
        DATABASES={"default": database_settings(url)},
        TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}},
        USE_TZ=True,
        DEBUG=False,
        LOGGING_CONFIG=None,
    )
    django.setup()


def report(key, value, text):
    print(text, flush=True)
    print("RESULT " + json.dumps({key: value}), flush=True)


def enqueue(args):
    from django.core.management import call_command
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    from django_tasks_db_tasks import noop

    call_command("migrate", verbosity=0)
    DBTaskResult.objects.all().delete()
    started = time.perf_counter()
    for _ in range(args.single):
        noop.enqueue()
    rate = args.single / (time.perf_counter() - started)
    report("single", rate, f"single enqueue {rate:8.0f} jobs/s ({args.single} enqueue calls)")
    DBTaskResult.objects.all().delete()
    started = time.perf_counter()
    for first in range(0, args.jobs, CHUNK):
        with transaction.atomic():
            for _ in range(min(CHUNK, args.jobs - first)):
                noop.enqueue()
    rate = args.jobs / (time.perf_counter() - started)
    report("bulk", rate, f"bulk enqueue   {rate:8.0f} jobs/s ({CHUNK} enqueue calls per transaction)")


def worker(args):
    from django.core.management import call_command

    call_command("db_worker", "--interval", "0.1", "--no-startup-delay", "--no-reload", verbosity=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["enqueue", "worker"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--single", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=5000)
    args = parser.parse_args()
    setup(args.database_url)
    {"enqueue": enqueue, "worker": worker}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
