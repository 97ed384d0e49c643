"""Several schedulers at once: each run of a recurring task is enqueued exactly once, on time."""

import pytest

from quebec.models import Job, RecurringExecution
from tests.conftest import wait_until

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]

SECONDS = 10


def test_three_schedulers_enqueue_every_second_exactly_once(quebec_run, tmp_path):
    schedule = tmp_path / "recurring.yml"
    schedule.write_text("tick:\n  class: tests.testapp.jobs.RecordJob\n  args: [tick]\n  schedule: every second\n")
    env = {"QUEBEC_RECURRING_SCHEDULE": str(schedule)}
    schedulers = [quebec_run("--only", "scheduler", env=env) for _ in range(3)]
    for scheduler in schedulers:
        scheduler.wait_for_output("1 recurring task(s) configured")
    first = wait_until(lambda: RecurringExecution.objects.order_by("run_at").first(), message="a first run")
    wait_until(lambda: RecurringExecution.objects.filter(run_at__gt=first.run_at).count() >= SECONDS, timeout=30)
    assert [scheduler.stop() for scheduler in schedulers] == [0, 0, 0]

    runs = list(RecurringExecution.objects.order_by("run_at").values_list("run_at", flat=True))
    gaps = {(later - earlier).total_seconds() for earlier, later in zip(runs, runs[1:], strict=False)}
    assert gaps == {1.0}, f"runs were not one second apart: {sorted(gaps)}"
    assert Job.objects.count() == len(runs)  # one job per run, none from a scheduler that lost the race
    assert set(RecurringExecution.objects.values_list("job_id", flat=True)) == set(
        Job.objects.values_list("pk", flat=True)
    )
    logs = "".join(scheduler.output() for scheduler in schedulers)
    assert logs.count("enqueued tick for") == len(runs)
