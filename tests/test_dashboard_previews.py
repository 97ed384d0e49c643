"""Large payloads on the dashboard: lists never load a job's arguments, the job page shows the
first 64 KiB of them and links to the whole JSON."""

import html
import json
import tracemalloc

import pytest
from django.urls import reverse

from quebec.dashboard import previews
from quebec.models import FailedExecution, Job
from tests.test_admin_fixtures import (  # noqa: F401  (fixtures)
    HOSTILE,
    _whitenoise_without_collectstatic,
    failed_job,
    scheduled_job,
    staff_client,
)
from tests.testapp.jobs import RecordJob

pytestmark = pytest.mark.django_db
MEGABYTE = 2**20
LISTS = [
    "/admin/quebec/job/",
    "/admin/quebec/readyexecution/",
    "/admin/quebec/failedexecution/",
    "/admin/quebec/scheduledexecution/",
    "/admin/quebec/",
    "/admin/quebec/job/live/?fragments=failures",
]


def give_arguments(handle, arguments):
    # Written straight to the row, as older versions or other writers may have left it: enqueue
    # itself refuses arguments this large.
    Job.objects.filter(pk=handle.id).update(arguments=arguments)


def python_peak_during(call):
    """The most memory Python objects took while ``call`` ran, in bytes."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_list_pages_never_load_a_jobs_large_arguments_or_error(admin_client):
    for _ in range(5):
        give_arguments(RecordJob.perform_later(), {"args": ["head-of-ready " + "r" * (2 * MEGABYTE)]})
        give_arguments(scheduled_job(), {"args": ["s" * (2 * MEGABYTE)]})
        failed = failed_job()
        give_arguments(failed, {"args": ["head-of-failed " + "f" * (2 * MEGABYTE)]})
        FailedExecution.objects.filter(pk=failed.id).update(message="m" * MEGABYTE, backtrace="b" * MEGABYTE)
    admin_client.get("/admin/quebec/")  # imports and templates loaded before measuring
    for url in LISTS:
        response = None

        def render(url=url):
            nonlocal response
            response = admin_client.get(url)

        peak = python_peak_during(render)
        assert response.status_code == 200
        assert peak < 4 * MEGABYTE, f"{url} took {peak / MEGABYTE:.1f} MB for 15 jobs of 2 MB arguments"
        assert len(response.content) < 200_000, url
    body = html.unescape(admin_client.get("/admin/quebec/readyexecution/").content.decode())
    assert '{"args": ["head-of-ready rrrrrrrr' in body and "r" * (previews.PREVIEW_CHARS + 1) not in body
    assert "…" in body


def test_a_preview_shows_the_characters_the_arguments_hold(admin_client):
    RecordJob.perform_later("café ✓ 😀 \\u00e9 " + HOSTILE)
    body = admin_client.get("/admin/quebec/readyexecution/").content.decode()
    # The characters themselves on every database (SQLite and MySQL store them as \u escapes),
    # an escaped backslash left as it is, and the text escaped for HTML.
    assert "café ✓ 😀 \\\\u00e9 &lt;script&gt;" in body and HOSTILE not in body


@pytest.mark.parametrize(
    ("head", "shown"),
    [
        ('"caf\\u00e9"', '"café"'),
        ('"\\\\u00e9"', '"\\\\u00e9"'),
        ('"\\ud83d\\ude00"', '"😀"'),
        ('"cut \\u00', '"cut \\u00'),
        ("x" * 81, "x" * 79 + "…"),
        (None, ""),
    ],
)
def test_preview_text(head, shown):
    assert previews.preview(head) == shown


def test_the_job_page_shows_the_first_64_kib_and_links_to_the_whole_json(admin_client):
    arguments = {"args": [f"line {number:06d} {HOSTILE}" for number in range(60_000)], "kwargs": {}}
    handle = RecordJob.perform_later()
    give_arguments(handle, arguments)
    response = admin_client.get(reverse("admin:quebec_job_change", args=[handle.id]))
    body = response.content.decode()
    shown = body.split('id="quebec-arguments">')[1].split("</pre>")[0]
    assert "line 000000" in shown and "line 059999" not in shown
    assert 'id="quebec-arguments-cut"' in body
    assert "The arguments are 2.5\xa0MB of JSON; the first 64.0\xa0KB are shown." in body
    assert len(body) < 64 * 1024 * 2 + 40_000  # the escaped preview and the page around it
    assert HOSTILE not in body
    raw_url = reverse("admin:quebec_job_arguments", args=[handle.id])
    assert f'href="{raw_url}"' in body
    raw = admin_client.get(raw_url)
    assert raw.status_code == 200 and raw["Content-Type"] == "application/json"
    assert raw["X-Content-Type-Options"] == "nosniff"
    assert json.loads(raw.content) == arguments


def test_a_small_jobs_page_shows_all_of_its_arguments(admin_client):
    handle = RecordJob.perform_later("small", answer=42)
    body = admin_client.get(reverse("admin:quebec_job_change", args=[handle.id])).content.decode()
    assert "quebec-arguments-cut" not in body and "&quot;small&quot;" in body
    assert reverse("admin:quebec_job_arguments", args=[handle.id]) in body


def test_a_large_return_value_is_cut_too(admin_client):
    handle = RecordJob.perform_later()
    Job.objects.filter(pk=handle.id).update(return_value={"rows": ["y" * 100] * 20_000})
    body = admin_client.get(reverse("admin:quebec_job_change", args=[handle.id])).content.decode()
    shown = html.unescape(body.split('id="quebec-return-value">')[1].split("</pre>")[0])
    assert previews.PAGE_CHARS <= len(shown) < previews.PAGE_CHARS + 100


def test_the_raw_arguments_need_the_jobs_view_permission(client, staff_client):
    handle = RecordJob.perform_later("secret")
    url = reverse("admin:quebec_job_arguments", args=[handle.id])
    assert client.get(url).status_code == 302  # to the login page
    assert staff_client("view_readyexecution").get(url).status_code == 403
    allowed = staff_client("view_job")
    assert json.loads(allowed.get(url).content)["args"] == ["secret"]
    assert allowed.get(reverse("admin:quebec_job_arguments", args=[999_999])).status_code == 404
    assert allowed.post(url).status_code == 405
