"""Jobs entering the line: quebec/lifecycle/queueing.py."""

from datetime import timedelta

import pytest
from django.utils import timezone

import quebec
from quebec.lifecycle import queueing
from quebec.models import ScheduledExecution
from tests.testapp.jobs import RecordJob

pytestmark = pytest.mark.django_db


def test_dispatch_due_moves_only_due_jobs_in_batches():
    past = timezone.now() - timedelta(seconds=1)
    handles = quebec.perform_all_later(RecordJob.set(wait_until=past + timedelta(days=1)).build(i) for i in range(3))
    ScheduledExecution.objects.filter(job_id__in=[h.id for h in handles[:2]]).update(scheduled_at=past)
    assert queueing.dispatch_due("default", batch_size=1) == 1
    assert queueing.dispatch_due("default", batch_size=10) == 1
    assert queueing.dispatch_due("default", batch_size=10) == 0
    assert [handle.status for handle in handles] == ["ready", "ready", "scheduled"]
