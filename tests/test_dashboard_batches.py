"""The dashboard's batches: the Batches page, a batch's page, its members list, the batch on
its members' and callbacks' pages, the live refresh, and who may see them."""

import re

import pytest
from django.urls import reverse
from django.utils import translation

import quebec
from quebec.models import Batch, Job
from tests.lifecycle_helpers import fail
from tests.test_admin_fixtures import (  # noqa: F401  (fixtures)
    _whitenoise_without_collectstatic,
    staff_client,
)
from tests.testapp.jobs import BatchCallbackJob, RecordJob

pytestmark = pytest.mark.django_db
LIST = "/admin/quebec/batch/"
LIVE = "/admin/quebec/job/live/"


def batch_page(batch_id):
    return reverse("admin:quebec_batch_change", args=[batch_id])


def job_page(job_id):
    return reverse("admin:quebec_job_change", args=[job_id])


def progressbar(html):
    """The attributes of the first progress bar in ``html``."""
    tag = re.search(r'<div class="quebec-batch-progress" role="progressbar"[^>]*>', html)
    assert tag, html
    return dict(re.findall(r'(aria-[a-z]+)="([^"]*)"', tag[0]))


@pytest.fixture
def half_done():
    """A running batch of four members: one completed (cancelled), one failed, two pending."""
    with quebec.batch(
        on_finish=BatchCallbackJob.build("finish"),
        on_success=BatchCallbackJob.build("success"),
        description="import 42",
        metadata={"import": 42, "file": "rows.csv"},
    ) as batch:
        handles = [RecordJob.perform_later(f"row {index}") for index in range(4)]
    assert quebec.cancel(handles[0].id) == "discarded"
    fail(handles[1])
    return batch.refresh(), handles


def test_the_batches_page_shows_status_progress_counts_callbacks_and_metadata(admin_client, half_done):
    batch, _handles = half_done
    with quebec.batch(description="empty"):
        pass
    body = admin_client.get(LIST).content.decode()
    row = body.split(f'href="{batch_page(batch.pk)}"')[1].split("</tr>")[0]
    assert "import 42" in row and '<td class="field-status_label">Running</td>' in row
    assert progressbar(row) == {
        "aria-label": f"Progress of batch #{batch.pk}",
        "aria-valuemin": "0",
        "aria-valuemax": "100",
        "aria-valuenow": "50.0",
        "aria-valuetext": "2 of 4 ended (1 completed, 1 failed)",
    }
    cells = re.findall(r'<td class="field-(\w+)[^"]*">([^<]*)</td>', row)
    assert ("total", "4") in cells and ("pending", "2") in cells
    assert ("completed", "1") in cells and ("failed", "1") in cells
    assert "on finish: tests.testapp.jobs.BatchCallbackJob (waiting)" in row
    assert "on success: tests.testapp.jobs.BatchCallbackJob (waiting)" in row
    assert "&quot;import&quot;: 42" in row and "rows.csv" in row
    assert "2 batches" in body
    assert 'aria-valuenow="100.0"' in body  # the empty batch, finished at once
    assert 'class="quebec-tabs"' in body and 'aria-current="page">Batches' in body


def test_the_batches_page_filters_by_status_and_searches_ids_and_descriptions(admin_client, half_done):
    batch, _handles = half_done
    with quebec.batch(description="nightly 7"):
        pass
    empty = Batch.objects.exclude(pk=batch.pk).get()

    def shown(**query):
        html = admin_client.get(f"{LIST}rows/", query).json()["html"]
        return {int(pk) for pk in re.findall(r"/admin/quebec/batch/(\d+)/change/", html)}

    assert shown() == {batch.pk, empty.pk}
    assert shown(status="running") == {batch.pk}
    assert shown(status="succeeded") == {empty.pk}
    assert shown(q="nightly") == {empty.pk}
    assert shown(q=f"#{batch.pk}") == {batch.pk}
    assert shown(q='"7"') == {empty.pk}


def test_a_batch_page_shows_its_progress_callbacks_metadata_and_a_link_to_its_members(admin_client, half_done):
    batch, handles = half_done
    body = admin_client.get(batch_page(batch.pk)).content.decode()
    assert progressbar(body)["aria-valuenow"] == "50.0"
    assert 'id="quebec-batch-status">Running<' in body
    assert re.search(r"Pending</th><td>2<", body) and re.search(r"Failed</th><td>1<", body)
    assert 'id="quebec-batch-description">import 42<' in body
    assert "&quot;file&quot;: &quot;rows.csv&quot;" in body
    assert f'data-quebec-batch="{batch.pk}"' in body
    members = f"/admin/quebec/job/?batch={batch.pk}"
    assert f'href="{members}" id="quebec-batch-members"' in body
    for handle in handles[2:]:
        assert quebec.cancel(handle.id) == "discarded"
    body = admin_client.get(batch_page(batch.pk)).content.decode()
    callback = batch.refresh().fired["on_finish"]
    assert 'id="quebec-batch-status">Failed<' in body
    assert progressbar(body)["aria-valuenow"] == "100.0"
    assert f'<a href="{job_page(callback)}">job #{callback}</a>' in body
    assert re.search(r'data-callback="on_success">.*?not due', body, re.S)


def test_a_missing_batch_redirects_like_a_missing_job(admin_client):
    for object_id in (123456, "abc", 2**64):
        response = admin_client.get(f"{LIST}{object_id}/change/")
        assert response.status_code == 302 and response["Location"] == "/admin/"


def test_the_members_list_is_the_jobs_list_filtered_by_batch(admin_client, half_done):
    batch, handles = half_done
    outsider = RecordJob.perform_later("not a member")
    response = admin_client.get("/admin/quebec/job/", {"batch": batch.pk})
    body = response.content.decode()
    shown = {int(pk) for pk in re.findall(r"/admin/quebec/job/(\d+)/change/", body)}
    assert shown == {handle.id for handle in handles}
    assert f"Jobs of batch #{batch.pk}" in body
    rows = admin_client.get("/admin/quebec/job/rows/", {"batch": batch.pk, "status": "failed"}).json()["html"]
    assert set(map(int, re.findall(r"/admin/quebec/job/(\d+)/change/", rows))) == {handles[1].id}
    assert outsider.id not in shown
    assert "/admin/quebec/job/" not in admin_client.get("/admin/quebec/job/rows/", {"batch": "x"}).json()["html"]


def test_a_member_and_a_callback_link_their_batch_on_their_job_page(admin_client, half_done):
    batch, handles = half_done
    body = admin_client.get(job_page(handles[2].id)).content.decode()
    link = f'<a href="{batch_page(batch.pk)}">Batch #{batch.pk} (import 42)</a> (Running)'
    assert f'<td id="quebec-job-batch">{link}</td>' in body
    for handle in handles[2:]:
        quebec.cancel(handle.id)
    callback = Job.objects.get(class_name__endswith="BatchCallbackJob")
    body = admin_client.get(job_page(callback.pk)).content.decode()
    assert f'The on finish callback of <a href="{batch_page(batch.pk)}">Batch #{batch.pk} (import 42)</a>' in body
    Batch.objects.filter(pk=batch.pk).delete()
    body = admin_client.get(job_page(handles[2].id)).content.decode()
    assert f"batch #{batch.pk} (cleared)" in body
    assert f"A callback of batch #{batch.pk} (cleared)" in admin_client.get(job_page(callback.pk)).content.decode()
    assert 'id="quebec-job-batch"' not in admin_client.get(job_page(RecordJob.perform_later().id)).content.decode()


def test_the_live_endpoint_refreshes_a_batch_page(admin_client, half_done):
    batch, handles = half_done
    query = {"fragments": "batch_progress", "batch": batch.pk}
    before = admin_client.get(LIVE, query).json()["fragments"]["batch_progress"]
    assert (
        progressbar(before)["aria-valuenow"] == "50.0"
        and before in admin_client.get(batch_page(batch.pk)).content.decode()
    )
    quebec.cancel(handles[2].id)
    after = admin_client.get(LIVE, query).json()["fragments"]["batch_progress"]
    assert progressbar(after)["aria-valuenow"] == "75.0"
    assert admin_client.get(LIVE, {"fragments": "batch_progress", "batch": "999999"}).json()["fragments"] == {}
    assert admin_client.get(LIVE, {"fragments": "batch_progress", "batch": "x"}).json()["fragments"] == {}


@pytest.mark.parametrize("url", [LIST, f"{LIST}rows/", "batch page"])
def test_batch_pages_need_the_batch_view_permission(client, staff_client, half_done, url):
    batch, _handles = half_done
    url = batch_page(batch.pk) if url == "batch page" else url
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert staff_client("view_job").get(url).status_code == 403
    assert staff_client("view_batch").get(url).status_code == 200
    assert staff_client("change_batch").get(url).status_code == 200


def test_what_a_user_sees_of_batches_follows_their_permissions(staff_client, half_done):
    batch, handles = half_done
    jobs_only = staff_client("view_job")
    assert "/admin/quebec/batch/" not in jobs_only.get("/admin/quebec/job/").content.decode()  # no tab
    member = jobs_only.get(job_page(handles[2].id)).content.decode()
    assert f"Batch #{batch.pk} (import 42) (Running)" in member and batch_page(batch.pk) not in member
    query = {"fragments": "batch_progress", "batch": batch.pk}
    assert jobs_only.get(LIVE, query).json()["fragments"] == {}
    batches_only = staff_client("view_batch")
    assert 'id="quebec-batch-members"' not in batches_only.get(batch_page(batch.pk)).content.decode()
    assert batches_only.get(LIVE, query).json()["fragments"]["batch_progress"]
    assert batches_only.post(batch_page(batch.pk), {"description": "changed"}).status_code == 405
    assert batch.refresh().description == "import 42"


def test_the_batch_pages_speak_french(admin_client, half_done):
    batch, _handles = half_done
    with translation.override("fr"):
        listed = admin_client.get(LIST).content.decode()
        page = admin_client.get(batch_page(batch.pk)).content.decode()
    assert "Lots" in listed and "En cours" in listed and "en attente" in listed
    assert "terminées : 2 sur 4 (réussies : 1, en échec : 1)" in listed
    assert "Membres de ce lot" in page and "Avancement du lot n° " in page
