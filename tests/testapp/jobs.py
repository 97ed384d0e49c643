"""Jobs the tests enqueue; each records its runs so tests can count them."""

import asyncio
import os
import time

from asgiref.sync import sync_to_async

import quebec
from tests.testapp.models import JobRun


def record(job, label="", value=None):
    return JobRun.objects.create(job_id=job.id, label=label, value=value, pid=os.getpid())


class RecordJob(quebec.BaseClass):
    def perform(self, label="", value=None):
        record(self, label, value)


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
