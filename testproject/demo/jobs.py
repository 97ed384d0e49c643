import asyncio
import random
import time

import quebec
from demo.models import Report


class EmailJob(quebec.BaseClass):
    queue_as = "default"

    def perform(self, to, subject):
        self.logger.info(f"Sending email to {to}: {subject}")


class ReportJob(quebec.BaseClass):
    queue_as = "reports"
    priority = 5

    def perform(self, title, rows=100):
        time.sleep(random.uniform(0.05, 0.3))
        report = Report.objects.create(title=title, rows=rows)
        self.logger.info(f"Built report {report.pk} ({title!r}, {rows} rows)")


class FetchPricesJob(quebec.BaseClass):
    queue_as = "default"

    async def perform(self, symbols):
        await asyncio.sleep(0.1)
        self.logger.info(f"Fetched prices for {', '.join(symbols)}")


class FlakyJob(quebec.BaseClass):
    """Fails on purpose, so the failed jobs table has something to show."""

    def perform(self, reason):
        raise RuntimeError(f"demo failure: {reason}")


class HeartbeatJob(quebec.BaseClass):
    """Enqueued by the scheduler every ten seconds (see QUEBEC["recurring"] in settings.py)."""

    queue_as = "maintenance"

    def perform(self):
        self.logger.info(f"Heartbeat: {Report.objects.count()} reports so far")
