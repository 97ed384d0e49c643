"""Dashboard actions: POST only, CSRF-checked, permission-checked, done through model methods."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from quebec.lifecycle import queueing
from quebec.models import FailedExecution, Job, Pause, RecurringTask, ScheduledExecution
from tests.test_admin_fixtures import (  # noqa: F401  (fixtures)
    VIEW_ALL,
    _whitenoise_without_collectstatic,
    failed_job,
    scheduled_job,
    staff_client,
)

pytestmark = pytest.mark.django_db


def job_action(job_id, action):
    return reverse("admin:quebec_job_action", args=[job_id, action])


def status(handle):
    return handle.status


@pytest.mark.parametrize(
    ("make", "action", "after"),
    [
        (failed_job, "retry", "ready"),
        (failed_job, "discard", "discarded"),
        (scheduled_job, "cancel", "discarded"),
    ],
)
def test_job_actions_change_the_jobs_state(admin_client, make, action, after):
    handle = make()
    response = admin_client.post(job_action(handle.id, action), follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:quebec_job_change", args=[handle.id])
    assert status(handle) == after
    assert f"Job #{handle.id}" in response.content.decode()


def test_run_now_makes_a_scheduled_job_due_and_the_dispatcher_moves_it(admin_client):
    handle = scheduled_job()
    admin_client.post(job_action(handle.id, "run_now"))
    assert ScheduledExecution.objects.due().count() == 1
    assert queueing.dispatch_due("default", 10) == 1
    assert status(handle) == "ready"


def test_an_action_on_a_job_that_moved_on_says_so(admin_client):
    handle = failed_job()
    queueing.retry(FailedExecution.objects.all())
    response = admin_client.post(job_action(handle.id, "discard"), follow=True)
    assert "is no longer failed; nothing was done" in response.content.decode()
    assert status(handle) == "ready"


def test_actions_refuse_get(admin_client):
    handle = failed_job()
    assert admin_client.get(job_action(handle.id, "retry")).status_code == 405
    assert status(handle) == "failed"


def test_actions_need_a_csrf_token(admin_user):
    handle = failed_job()
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(job_action(handle.id, "retry")).status_code == 403
    assert client.post(reverse("admin:quebec_queue_pause"), {"queue": "default"}).status_code == 403
    assert status(handle) == "failed" and not Pause.objects.exists()
    page = client.get(reverse("admin:quebec_job_change", args=[handle.id]))
    token = page.cookies["csrftoken"].value
    assert client.post(job_action(handle.id, "retry"), {"csrfmiddlewaretoken": token}).status_code == 302
    assert status(handle) == "ready"


def test_staff_without_the_change_permission_sees_no_button_and_gets_403(staff_client):
    failed, scheduled = failed_job(), scheduled_job()
    viewer = staff_client(*VIEW_ALL)
    for handle in (failed, scheduled):
        body = viewer.get(reverse("admin:quebec_job_change", args=[handle.id])).content.decode()
        assert "data-quebec-action" not in body
    for handle, action in ((failed, "retry"), (failed, "discard"), (scheduled, "run_now"), (scheduled, "cancel")):
        assert viewer.post(job_action(handle.id, action)).status_code == 403
    assert viewer.post(reverse("admin:quebec_queue_pause"), {"queue": "default"}).status_code == 403
    assert 'data-quebec-action="pause"' not in viewer.get("/admin/quebec/pause/").content.decode()
    failed_list = viewer.get("/admin/quebec/failedexecution/")
    assert failed_list.context["action_form"] is None
    assert status(failed) == "failed" and status(scheduled) == "scheduled" and not Pause.objects.exists()


def test_each_permission_unlocks_its_own_actions_only(staff_client):
    failed, scheduled = failed_job(), scheduled_job()
    operator = staff_client(*VIEW_ALL, "change_failedexecution")
    body = operator.get(reverse("admin:quebec_job_change", args=[failed.id])).content.decode()
    assert 'data-quebec-action="retry"' in body
    assert operator.post(job_action(scheduled.id, "cancel")).status_code == 403
    assert operator.post(job_action(failed.id, "retry")).status_code == 302
    assert status(failed) == "ready"


def bulk(client, url, action, ids, confirm=False, select_across=False, query=""):
    data = {
        "action": action,
        ACTION_CHECKBOX_NAME: [str(pk) for pk in ids],
        "select_across": "1" if select_across else "0",
    }
    if confirm:
        data["confirm"] = "yes"
    else:
        data["index"] = "0"
    return client.post(url + query, data, follow=confirm)


def test_bulk_retry_of_selected_jobs_asks_for_confirmation(admin_client):
    handles = [failed_job(), failed_job(), failed_job()]
    chosen = [handles[0].id, handles[1].id]
    url = "/admin/quebec/failedexecution/"
    confirmation = bulk(admin_client, url, "retry", chosen)
    assert confirmation.status_code == 200
    assert "Put these failed jobs back in line?" in confirmation.content.decode()
    assert [status(h) for h in handles] == ["failed"] * 3  # nothing done before confirming
    done = bulk(admin_client, url, "retry", chosen, confirm=True)
    assert "2 jobs are back in line." in done.content.decode()
    assert [status(h) for h in handles] == ["ready", "ready", "failed"]


def test_bulk_discard_of_every_job_matching_the_filters(admin_client):
    mail = [failed_job(queue="mail"), failed_job(queue="mail")]
    other = failed_job(queue="reports")
    url, query = "/admin/quebec/failedexecution/", "?queue_name=mail"
    confirmation = bulk(admin_client, url, "discard", [mail[0].id], select_across=True, query=query)
    assert "every job matching the current filters" in confirmation.content.decode()
    assert confirmation.context["count"] == "2"
    bulk(admin_client, url, "discard", [mail[0].id], confirm=True, select_across=True, query=query)
    assert [status(h) for h in mail] == ["discarded", "discarded"]
    assert status(other) == "failed"


def test_bulk_run_now_and_cancel_of_scheduled_jobs(admin_client):
    first, second = scheduled_job(), scheduled_job()
    url = "/admin/quebec/scheduledexecution/"
    bulk(admin_client, url, "run_now", [first.id], confirm=True)
    bulk(admin_client, url, "cancel", [second.id], confirm=True)
    assert ScheduledExecution.objects.due().count() == 1
    assert status(second) == "discarded"


def test_bulk_actions_need_the_change_permission(staff_client):
    handle = failed_job()
    viewer = staff_client(*VIEW_ALL)
    response = bulk(viewer, "/admin/quebec/failedexecution/", "retry", [handle.id], confirm=True)
    assert status(handle) == "failed"
    assert response.status_code == 200  # the admin ignores an action the user may not run


def test_pause_and_resume_one_queue_and_all(admin_client):
    from tests.testapp.jobs import RecordJob

    RecordJob.set(queue="mail").perform_later()
    RecordJob.set(queue="reports").perform_later()
    pause, resume = reverse("admin:quebec_queue_pause"), reverse("admin:quebec_queue_resume")
    response = admin_client.post(pause, {"queue": "mail"})
    assert response["Location"] == "/admin/quebec/pause/"
    assert set(Pause.objects.values_list("queue_name", flat=True)) == {"mail"}
    admin_client.post(resume, {"queue": "mail", "next": "/admin/quebec/"})
    assert not Pause.objects.exists()
    admin_client.post(pause, {"all": "1"})
    assert set(Pause.objects.values_list("queue_name", flat=True)) == {"mail", "reports"}
    admin_client.post(resume, {"all": "1"})
    assert not Pause.objects.exists()


def test_queue_actions_do_not_redirect_off_site(admin_client):
    response = admin_client.post(reverse("admin:quebec_queue_pause"), {"queue": "q", "next": "https://evil.example/"})
    assert response["Location"] == "/admin/quebec/pause/"
    assert admin_client.post(reverse("admin:quebec_queue_pause"), {"queue": ""}).status_code == 400


def test_recurring_task_actions(admin_client, staff_client):
    task = RecurringTask.objects.create(key="report", schedule="every hour", class_name="tests.testapp.jobs.RecordJob")
    url = "/admin/quebec/recurringtask/"
    viewer = staff_client(*VIEW_ALL)
    bulk(viewer, url, "pause", [task.pk], confirm=True)
    task.refresh_from_db()
    assert task.paused_at is None
    bulk(admin_client, url, "pause", [task.pk], confirm=True)
    task.refresh_from_db()
    assert task.paused_at is not None
    bulk(admin_client, url, "resume", [task.pk], confirm=True)
    task.refresh_from_db()
    assert task.paused_at is None
    response = bulk(admin_client, url, "run_now", [task.pk], confirm=True)
    assert "Enqueued a run of report." in response.content.decode()
    assert Job.objects.filter(class_name="tests.testapp.jobs.RecordJob").count() == 1


def test_run_now_of_a_task_whose_class_is_gone_reports_the_error(admin_client):
    RecurringTask.objects.create(key="broken", schedule="every hour", class_name="tests.testapp.jobs.Gone")
    task = RecurringTask.objects.get()
    response = bulk(admin_client, "/admin/quebec/recurringtask/", "run_now", [task.pk], confirm=True)
    assert "Broken: unknown job class &#x27;tests.testapp.jobs.Gone&#x27;" in response.content.decode()
    assert not Job.objects.exists()


def blocked_pair():
    from tests.testapp.jobs import SoloJob

    holder, blocked = SoloJob.perform_later("k"), SoloJob.perform_later("k")
    assert status(blocked) == "blocked"
    return holder, blocked


def test_unblock_and_cancel_a_blocked_job_from_its_page(admin_client):
    from quebec.models import Semaphore

    _, blocked = blocked_pair()
    page = admin_client.get(reverse("admin:quebec_job_change", args=[blocked.id])).content.decode()
    assert job_action(blocked.id, "unblock") in page and job_action(blocked.id, "cancel_job") in page
    admin_client.post(job_action(blocked.id, "unblock"))
    assert status(blocked) == "ready"
    assert Semaphore.objects.get(key="SoloJob/k").value == -1  # over the limit, and counted
    _, other = blocked_pair()
    admin_client.post(job_action(other.id, "cancel_job"))
    assert status(other) == "discarded"
    assert Job.objects.get(pk=other.id).cancel_requested_by == "admin"


def test_bulk_unblock_and_cancel_of_blocked_jobs(admin_client):
    _, first = blocked_pair()
    _, second = blocked_pair()
    url = "/admin/quebec/blockedexecution/"
    bulk(admin_client, url, "unblock", [first.id], confirm=True)
    bulk(admin_client, url, "cancel", [second.id], confirm=True)
    assert (status(first), status(second)) == ("ready", "discarded")


def test_blocked_actions_need_the_change_permission(staff_client):
    _, blocked = blocked_pair()
    viewer = staff_client(*VIEW_ALL)
    assert viewer.post(job_action(blocked.id, "unblock")).status_code == 403
    assert "unblock" not in viewer.get(reverse("admin:quebec_job_change", args=[blocked.id])).content.decode()
    assert status(blocked) == "blocked"
