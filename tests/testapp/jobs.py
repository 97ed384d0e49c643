"""Jobs the tests enqueue; each records its runs so tests can count them."""

import asyncio
import os
import sys
import time
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.db import DatabaseError

import quebec
from tests.testapp.models import JobRun


def record(job, label="", value=None):
    return JobRun.objects.create(job_id=job.id, label=label, value=value, pid=os.getpid())


class RecordJob(quebec.BaseClass):
    def perform(self, label="", value=None):
        record(self, label, value)


class ReturnJob(quebec.BaseClass):
    def perform(self, value):
        return value if value != "unstorable" else object()


class SleepJob(quebec.BaseClass):
    def perform(self, seconds, label="slept"):
        time.sleep(seconds)
        if label is not None:
            record(self, label)


class AsyncRecordJob(quebec.BaseClass):
    async def perform(self, label):
        await asyncio.sleep(0.01)
        await sync_to_async(record)(self, label)


class FailingJob(quebec.BaseClass):
    def perform(self, message):
        raise ValueError(message)


class EchoArgumentsJob(quebec.BaseClass):
    """Records the repr and type names of what it received, to check round-trips."""

    def perform(self, *args, **kwargs):
        record(self, "echo", {"args": [repr(a) for a in args], "kwargs": {k: repr(v) for k, v in kwargs.items()}})


class AttributesJob(quebec.BaseClass):
    queue_as = "attributes"
    priority = 7

    def perform(self, *args, **kwargs):
        record(
            self,
            "attributes",
            {
                "id": self.id,
                "active_job_id": str(self.active_job_id),
                "queue_name": self.queue_name,
                "priority": self.priority,
                "executions": self.executions,
                "arguments": repr(self.arguments),
                "enqueued_at": self.enqueued_at.isoformat(),
            },
        )


# Error handling: each outcome of a job class's strategies, recorded so tests can check it.


class Flaky(Exception):
    pass


class Discardable(Exception):
    pass


class Rescuable(Exception):
    pass


class Unexpected(Exception):
    pass


def record_handler(label):
    return lambda job, error: record(job, label, {"error": str(error), "executions": job.executions})


class ChaosJob(quebec.BaseClass):
    """Does what its ``plan`` says, so one class walks every error path."""

    retry_on = [quebec.RetryStrategy(Flaky, wait=0, attempts=3, jitter=0)]
    discard_on = [quebec.DiscardStrategy(Discardable, handler=record_handler("discard-handler"))]
    rescue_from = [quebec.RescueStrategy(Rescuable, handler=record_handler("rescued"))]

    def perform(self, plan):
        record(self, f"run-{plan}")
        if plan == "ok" or (plan == "flaky-then-ok" and self.executions >= 2):
            return
        raise {
            "flaky-then-ok": Flaky,
            "flaky": Flaky,
            "discard": Discardable,
            "rescue": Rescuable,
            "unexpected": Unexpected,
        }[plan](plan)

    def after_discard(self, error):
        record(self, "after-discard", {"error": str(error)})


class ExhaustWithHandlerJob(quebec.BaseClass):
    retry_on = [quebec.RetryStrategy((Flaky, TimeoutError), wait=0, attempts=2, handler=record_handler("gave-up"))]

    def perform(self):
        raise Flaky("always")


class TwoCountersJob(quebec.BaseClass):
    """Fails with ValueError and KeyError in turn; each strategy counts its own attempts."""

    retry_on = [
        quebec.RetryStrategy(ValueError, wait=0, attempts=2),
        quebec.RetryStrategy(KeyError, wait=0, attempts=3),
    ]

    def perform(self):
        record(self, "run", {"executions": self.executions, "counters": self.exception_executions})
        raise (ValueError if self.executions % 2 else KeyError)("again")


class CallbacksJob(quebec.BaseClass):
    """Records every callback in order; ``fail_in`` makes one of them raise."""

    def perform(self, fail_in=None):
        self._event("perform", fail_in)

    def _event(self, name, fail_in=None):
        record(self, name)
        if name == (fail_in or self.arguments[1].get("fail_in")):
            raise RuntimeError(f"{name} failed")

    def before_perform(self):
        self._event("before_perform")

    def after_perform(self):
        self._event("after_perform")

    def around_perform(self):
        self._event("around_before")
        yield
        self._event("around_after")

    def after_enqueue(self):
        record(self, "after_enqueue")


class RescueHandlerFailsJob(quebec.BaseClass):
    rescue_from = [quebec.RescueStrategy(Rescuable, handler=lambda job, error: 1 / 0)]

    def perform(self):
        raise Rescuable("original problem")


class AbortingJob(quebec.BaseClass):
    def before_enqueue(self):
        if self.arguments[0] == ["skip"]:
            raise quebec.AbortEnqueue("told to skip")

    def perform(self, what):
        pass


class SlowAsyncJob(quebec.BaseClass):
    timeout = 0.2

    async def perform(self, seconds):
        await asyncio.sleep(seconds)
        await sync_to_async(record)(self, "async-completed")


class SlowSyncJob(quebec.BaseClass):
    timeout = 0.1

    def perform(self, seconds):
        time.sleep(seconds)
        record(self, "sync-completed")


@quebec.command
def record_command(label, value=None):
    """A callable for recurring tasks' ``command``, registered as one."""
    JobRun.objects.create(label=label, value=value, pid=os.getpid())


def record_configured_command(label):
    """Not registered: a recurring ``command`` only when the static configuration names it."""
    JobRun.objects.create(label=label, pid=os.getpid())


_hoard = []


class HogMemoryJob(quebec.BaseClass):
    """Keeps ``megabytes`` of memory alive in the worker process, to trigger memory recycling."""

    def perform(self, megabytes):
        _hoard.append(bytearray(megabytes * 2**20))
        record(self, "hogging")


# Lifecycle hooks, active only when a test asks for them through the environment.
if hook_log := os.environ.get("QUEBEC_TEST_HOOK_LOG"):

    def _log_hook(name):
        def hook(*args):
            with open(hook_log, "a") as log:
                log.write(f"{name} {os.getpid()} {' '.join(type(arg).__name__ for arg in args)}\n".rstrip() + "\n")
            if name == os.environ.get("QUEBEC_TEST_FAILING_HOOK"):
                raise RuntimeError(f"{name} hook failed on purpose")

        return hook

    for _name in quebec.Quebec.HOOKS:
        getattr(quebec.default, _name)(_log_hook(_name))

if os.environ.get("QUEBEC_TEST_CRASH_WORKERS"):
    quebec.default.on_worker_start(lambda worker: os._exit(3))


class ChaosWorkJob(quebec.BaseClass):
    """Records its run first, then works a little: a kill can land before, during or after."""

    def perform(self, index):
        record(self, "chaos")
        time.sleep(0.002)


# Limits: jobs that record when they ran, so tests can look for overlaps.


class SpanJob(quebec.BaseClass):
    """Records its start and end times and process, to detect overlapping runs."""

    def perform(self, key="", seconds=0.05):
        started = time.time()
        time.sleep(seconds)
        record(
            self,
            "span",
            {"key": key, "start": started, "end": time.time(), "pid": os.getpid(), "queue": self.queue_name},
        )


class PairsJob(SpanJob):
    concurrency_limit = 2
    concurrency_duration = 60

    def concurrency_key(self, key="", seconds=0.05):
        return key


class SoloJob(SpanJob):
    concurrency_duration = 2  # a short TTL, so a killed holder frees its key quickly in tests

    def concurrency_key(self, key="", seconds=0.05):
        return key


class GroupedSoloJob(SoloJob):
    concurrency_group = "shared"


class TriosJob(SpanJob):
    concurrency_limit = 3

    def concurrency_key(self, key="", seconds=0.05):
        return key


class DropOnConflictJob(SpanJob):
    concurrency_on_conflict = quebec.ConcurrencyConflict.Discard

    def concurrency_key(self, key="", seconds=0.05):
        return key


class RateLimitedJob(SpanJob):
    rate_limit_max = 5
    rate_limit_duration = timedelta(seconds=2)


class RateLimitedDropJob(SpanJob):
    rate_limit_max = 5
    rate_limit_duration = timedelta(seconds=2)
    rate_limit_on_throttle = quebec.RateLimitConflict.Discard

    def rate_limit_key(self, key="", seconds=0.05):
        return key


class LoneJob(SpanJob):
    exclusive = True


# Connection hygiene: jobs that leave state on their thread's database connection.


class LeaveTransactionOpenJob(quebec.BaseClass):
    """Writes inside a transaction it never ends: a raw BEGIN, or autocommit turned off."""

    def perform(self, how="begin"):
        from django.db import connection, transaction

        if how == "begin":
            with connection.cursor() as cursor:
                cursor.execute("BEGIN")
        else:
            transaction.set_autocommit(False)
        record(self, "inside the open transaction")


class AdvisoryLockJob(quebec.BaseClass):
    """Takes a PostgreSQL session advisory lock or a MariaDB named lock, then fails."""

    def perform(self, key):
        from django.db import connection

        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_advisory_lock(%s)", [key])
            else:
                cursor.execute("SELECT GET_LOCK(%s, 0)", [f"quebec-test-{key}"])
        raise ValueError("failing while holding a lock")


class LeaveSessionStateJob(quebec.BaseClass):
    """Changes a setting and creates a temporary table on its PostgreSQL session."""

    def perform(self):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SET work_mem = '7777kB'")
            cursor.execute("CREATE TEMPORARY TABLE quebec_leftover (x integer)")


class ProbeSessionJob(quebec.BaseClass):
    """Records what the session it runs on looks like."""

    def perform(self):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('work_mem'), to_regclass('pg_temp.quebec_leftover') IS NOT NULL, "
                "current_setting('TimeZone')"
            )
            work_mem, temp_table, zone = cursor.fetchone()
        record(self, "probe", {"work_mem": work_mem, "temp_table": temp_table, "time_zone": zone})


class BreakConnectionJob(quebec.BaseClass):
    """Leaves its connection unusable behind Django's back: closed by the driver, or its
    PostgreSQL backend terminated."""

    def perform(self, how="close"):
        from django.db import connection

        if how == "close":
            connection.ensure_connection()
            connection.connection.close()
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")


class ConnectionIdJob(quebec.BaseClass):
    """Records which database session it ran on."""

    def perform(self):
        from django.db import connection

        sql = {"postgresql": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()"}.get(connection.vendor)
        if sql is None:
            connection.ensure_connection()
            record(self, "session", id(connection.connection))
            return
        with connection.cursor() as cursor:
            cursor.execute(sql)
            record(self, "session", cursor.fetchone()[0])


# Unique jobs.


class UniqueSyncJob(quebec.BaseClass):
    """Unique per account until it finishes; records each enqueue callback."""

    unique_until = "finished"
    enqueued = []

    def unique_key(self, account, **kwargs):
        return str(account)

    def before_enqueue(self):
        UniqueSyncJob.enqueued.append(("before", self.arguments))

    def after_enqueue(self):
        UniqueSyncJob.enqueued.append(("after", self.id))

    def perform(self, account, **kwargs):
        record(self, "sync", account)


class UniqueArgumentsJob(quebec.BaseClass):
    """Unique by its arguments (the default key)."""

    unique_until = "finished"

    def perform(self, *args, **kwargs):
        record(self, "unique-arguments")


class UniqueUntilStartedJob(UniqueSyncJob):
    unique_until = "started"


class UniqueForAWhileJob(UniqueSyncJob):
    unique_for = timedelta(seconds=1)


class UniqueRaisingJob(UniqueSyncJob):
    unique_on_conflict = quebec.UniqueConflict.Raise


class UniqueRetriedJob(UniqueSyncJob):
    retry_on = [quebec.RetryStrategy((Flaky, quebec.ProcessPrunedError), wait=60, attempts=3)]

    def perform(self, account, **kwargs):
        raise Flaky(account)


class UniqueFailingJob(UniqueSyncJob):
    def perform(self, account, **kwargs):
        raise ValueError(account)


class UniqueKeyedJob(UniqueSyncJob):
    """Unique and limited to one at a time per account, waiting when the slot is taken."""

    concurrency_duration = 60

    def concurrency_key(self, account, **kwargs):
        return str(account)


class UniqueDroppedJob(UniqueKeyedJob):
    concurrency_on_conflict = quebec.ConcurrencyConflict.Discard

    def concurrency_key(self, account, group="", **kwargs):
        return group or str(account)


class BackfillJob(quebec.BaseClass, quebec.Continuable):
    """Three steps over ``items`` items, each recorded as it is done: a step that ran twice, or
    an item done twice, shows as two rows."""

    steps = ("prepare", "items", "finish")

    def perform(self, items, pause=0.002):
        with self.step("prepare"):
            record(self, "prepare")
        with self.step("items", start=0) as step:
            for index in range(step.cursor, items):
                record(self, "item", index)
                time.sleep(pause)
                step.advance()
        self.step("finish", lambda: record(self, "finish", self.resumptions))


class ProgressJob(quebec.BaseClass):
    """Reports progress ``calls`` times over about ``seconds``."""

    def perform(self, calls, seconds):
        started = time.monotonic()
        for done in range(1, calls + 1):
            self.progress(done, calls, f"row {done}")
            while time.monotonic() - started < seconds * done / calls:
                pass
        return calls


class CancellableJob(quebec.BaseClass):
    """Reports progress until cancelled; ``how`` says how it listens: "progress" (raises
    JobCancelled), or "flag" (reads ``cancel_requested`` and returns)."""

    def perform(self, how="progress"):
        record(self, "started")
        for done in range(600):
            if how == "flag" and self.cancel_requested:
                record(self, "saw the request")
                return "stopped early"
            if how == "progress":
                self.progress(done, 600)
            time.sleep(0.05)
        record(self, "ran to its end")


class TalkativeJob(quebec.BaseClass):
    """Writes a line through ``self.logger`` on each attempt; fails its first when asked to."""

    retry_on = [quebec.RetryStrategy(Flaky, wait=0, attempts=2, jitter=0)]

    def perform(self, message, fail_first=False):
        self.logger.info("saying %s", message)
        if fail_first and self.executions == 1:
            raise Flaky(message)


# Batches.


class BatchCallbackJob(quebec.BaseClass):
    """A batch's callback: records which batch, as what it fired, and what the batch said. A
    database briefly away (a restart) is retried."""

    queue_as = "callbacks"
    retry_on = [quebec.RetryStrategy(DatabaseError, wait=1, attempts=10, jitter=0)]

    def perform(self, kind="finish"):
        from tests.testapp.models import BatchCallbackRun

        batch = self.batch
        BatchCallbackRun.objects.create(
            batch_id=batch.pk,
            kind=kind,
            status=batch.status,
            completed=batch.completed_jobs,
            failed=batch.failed_jobs,
            pid=os.getpid(),
        )


class BatchMemberJob(quebec.BaseClass):
    """A batch's member: records its batch; ``children`` more members join it from perform."""

    def perform(self, label="", children=0):
        record(self, label, {"batch": self.batch_id, "batch_status": self.batch.status})
        for index in range(children):
            BatchMemberJob.perform_later(f"{label}.{index}")


class BatchWorkJob(quebec.BaseClass):
    """The stress test's member: works a little, then as ``plan`` says: "ok", "fail" (for good)
    or "flaky" (fails its first run, then is retried)."""

    retry_on = [quebec.RetryStrategy(Flaky, wait=0, attempts=2, jitter=0)]

    def perform(self, plan="ok"):
        time.sleep(0.001)
        if plan == "fail":
            raise Unexpected("planned failure")
        if plan == "flaky" and self.executions < 2:
            raise Flaky("first run")


class SwitchIntervalJob(quebec.BaseClass):
    """Returns the GIL switch interval of the process that runs it."""

    def perform(self):
        return sys.getswitchinterval()
