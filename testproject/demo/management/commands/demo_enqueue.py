from datetime import timedelta

from django.core.management.base import BaseCommand

import quebec
from demo.jobs import EmailJob, FetchPricesJob, FlakyJob, ReportJob
from demo.tasks import resize_image


class Command(BaseCommand):
    help = "Enqueue a handful of demo jobs."

    def handle(self, *args, **options):
        handles = [
            EmailJob.perform_later("alice@example.com", "Welcome to Quebec"),
            EmailJob.set(priority=-5).perform_later("bob@example.com", "Urgent: your invoice"),
            ReportJob.perform_later("Monthly sales", rows=1200),
            FetchPricesJob.perform_later(["ACME", "INITECH"]),
            EmailJob.set(wait=timedelta(seconds=3)).perform_later("carol@example.com", "Sent three seconds later"),
            FlakyJob.perform_later("to show a failed job in the dashboard"),
            *quebec.perform_all_later(ReportJob.build(f"Daily report {day}", rows=day * 10) for day in range(1, 4)),
        ]
        for handle in handles:
            self.stdout.write(f"Enqueued {handle.class_name} #{handle.id} on {handle.queue_name!r} ({handle.status})")
        result = resize_image.enqueue("holiday.jpg", width=640)
        self.stdout.write(f"Enqueued task {result.task.module_path} #{result.id} ({result.status})")
