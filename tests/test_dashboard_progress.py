"""The dashboard's view of progress, steps and cancellation: the job page, the in-progress
list, the live fragment, and the Cancel action with its own permission."""

import pytest
from django.urls import reverse
from django.utils import timezone

from quebec.lifecycle import running
from quebec.models import ClaimedExecution, Job
from tests.test_admin_fixtures import VIEW_ALL, _whitenoise_without_collectstatic, staff_client  # noqa: F401
from tests.testapp.jobs import BackfillJob, SleepJob

pytestmark = pytest.mark.django_db


def job_page(client, handle):
    return client.get(reverse("admin:quebec_job_change", args=[handle.id])).content.decode()


def cancel_url(handle):
    return reverse("admin:quebec_job_action", args=[handle.id, "cancel_job"])


def running_backfill():
    """A backfill claimed by no live process, halfway through its second step."""
    handle = BackfillJob.perform_later(2000)
    running.claim("default", ["*"], 1, None)
    Job.objects.filter(pk=handle.id).update(
        progress={"done": 500, "total": 2000, "message": "rows", "at": timezone.now().isoformat()},
        continuation={"completed": ["prepare"], "current": ["items", 500], "resumptions": 2},
        attempts=[{"number": 1, "process": "worker-a", "outcome": "resumed"}],
    )
    return handle


def test_the_job_page_shows_steps_resumptions_and_the_progress_bar(admin_client):
    page = job_page(admin_client, running_backfill())
    assert '<progress max="100" value="25.0">' in page and "500 of 2000 (25.0%)" in page
    assert "Steps done</th><td>prepare</td>" in page
    assert "Current step</th><td>items (cursor 500)</td>" in page
    assert "Steps to come</th><td>finish</td>" in page  # BackfillJob declares its steps
    assert "Resumptions</th><td>2</td>" in page
    assert "Interrupted, back in line" in page  # the attempt a stop cut short


def test_the_in_progress_list_shows_each_jobs_progress(admin_client):
    running_backfill()
    page = admin_client.get("/admin/quebec/claimedexecution/").content.decode()
    assert '<progress max="100" value="25.0">25.0%</progress>' in page


def test_the_live_fragment_refreshes_the_job_pages_progress(admin_client):
    handle = running_backfill()
    Job.objects.filter(pk=handle.id).update(progress={"done": 1500, "total": 2000})
    response = admin_client.get(reverse("admin:quebec_live"), {"fragments": "job_progress", "job": handle.id})
    assert "1500 of 2000 (75.0%)" in response.json()["fragments"]["job_progress"]
    assert admin_client.get(reverse("admin:quebec_live"), {"fragments": "job_progress", "job": "x"}).status_code == 200


def test_cancelling_a_running_job_from_its_page_shows_the_request_pending(admin_client):
    handle = running_backfill()
    assert f'action="{cancel_url(handle)}"' in job_page(admin_client, handle)
    assert admin_client.post(cancel_url(handle)).status_code == 302
    assert handle.status == "claimed" and ClaimedExecution.objects.filter(pk=handle.id).exists()
    page = job_page(admin_client, handle)
    assert "Cancellation requested by admin" in page and "pending until the job reaches its next checkpoint" in page


def test_cancel_needs_its_own_permission(staff_client):
    handle = SleepJob.perform_later(0)
    changer = staff_client(*VIEW_ALL, "change_scheduledexecution", "change_blockedexecution", "change_failedexecution")
    assert cancel_url(handle) not in job_page(changer, handle)
    assert changer.post(cancel_url(handle)).status_code == 403
    assert handle.status == "ready"
    canceller = staff_client(*VIEW_ALL, "cancel_job")
    assert cancel_url(handle) in job_page(canceller, handle)
    assert canceller.post(cancel_url(handle)).status_code == 302
    assert handle.status == "discarded"
    assert "Cancelled by" in job_page(canceller, handle)
