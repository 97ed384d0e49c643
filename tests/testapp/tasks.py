"""``django.tasks`` functions the backend tests enqueue; each records its runs like the test jobs."""

import os
import time
from pathlib import Path

from django.tasks import task

import quebec
from tests.testapp.models import JobRun


class Flaky(Exception):
    pass


def record(context_or_none, label, value=None):
    job_id = int(context_or_none.task_result.id) if context_or_none is not None else None
    JobRun.objects.create(job_id=job_id, label=label, value=value, pid=os.getpid())


@task
def add(a, b):
    return a + b


@task
def record_label(label):
    record(None, label)


@task(takes_context=True)
def record_context(context, label):
    result = context.task_result
    record(context, label, {"attempt": context.attempt, "status": result.status, "worker_ids": result.worker_ids})
    return context.attempt


@task
def fail(message):
    raise ValueError(message)


@task
def return_unstorable():
    return object()


@task
async def double(value):
    return value * 2


@task(takes_context=True, retry_on=[quebec.RetryStrategy(Flaky, wait=0, attempts=3, jitter=0)])
def flaky_until_third(context):
    if context.attempt < 3:
        raise Flaky(f"attempt {context.attempt}")
    return "third time"


@task(queue_name="slow")
def wait_for_file(path):
    """Runs until ``path`` exists (at most 30 s), so a test can see the task RUNNING."""
    deadline = time.monotonic() + 30
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return "released"


@task(concurrency_key=lambda account: account, concurrency_limit=1)
def one_per_account(account):
    record(None, f"start-{account}")
    time.sleep(0.2)
    record(None, f"end-{account}")


@task
def exit_abruptly():
    raise SystemExit("This task called sys.exit")


@task(unique_key=lambda account: account)
def sync_account(account):
    record(None, f"sync-{account}")


@task(unique_until="started")
def refresh_feed(feed):
    record(None, f"refresh-{feed}")


@task(takes_context=True)
def report_progress(context, rounds):
    """Reports each round; stops early, as a task may, once cancelled."""
    record(context, "started")
    for done in range(1, rounds + 1):
        context.progress(done, rounds, "round")
        context.checkpoint()
        time.sleep(0.05)
    return rounds
