"""The dashboard's admin pages: each renders, shows what it should, and escapes what it shows."""

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils.html import escape
from django.utils import translation

from quebec.lifecycle import queueing
from quebec.models import Batch, Job, Pause, Process, ReadyExecution, RecurringTask
from tests.conftest import finished, wait_until
from tests.test_admin_fixtures import (  # noqa: F401  (fixtures)
    HOSTILE,
    HOSTILE_FIELDS,
    _whitenoise_without_collectstatic,
    failed_job,
    hostile,
    hostile_world,
    scheduled_job,
    staff_client,
)
from tests.testapp.jobs import ChaosJob, RecordJob, ReturnJob, UniqueSyncJob

pytestmark = pytest.mark.django_db

PAGES = [
    "/admin/quebec/",
    "/admin/quebec/pause/",
    "/admin/quebec/job/",
    "/admin/quebec/job/?status=finished",
    "/admin/quebec/readyexecution/",
    "/admin/quebec/scheduledexecution/",
    "/admin/quebec/claimedexecution/",
    "/admin/quebec/blockedexecution/",
    "/admin/quebec/failedexecution/",
    "/admin/quebec/recurringtask/",
    "/admin/quebec/process/",
    "/admin/quebec/batch/",
]


@pytest.fixture
def some_jobs():
    """One job in most states, with hostile text in arguments and errors."""
    return {
        "ready": RecordJob.perform_later(HOSTILE),
        "scheduled": scheduled_job(HOSTILE),
        "failed": failed_job(HOSTILE, message=HOSTILE),
    }


@pytest.mark.parametrize("url", PAGES)
def test_every_page_renders_for_a_superuser(admin_client, some_jobs, url):
    response = admin_client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'class="quebec-tabs"' in body
    assert HOSTILE not in body


def test_every_text_the_dashboard_shows_is_escaped(admin_client, hostile_world):
    pages = {url: admin_client.get(url) for url in PAGES}
    for state, job_id in hostile_world.items():
        pages[state] = admin_client.get(reverse("admin:quebec_job_change", args=[job_id]))
    batch_id = Batch.objects.get().pk
    pages["batch"] = admin_client.get(reverse("admin:quebec_batch_change", args=[batch_id]))
    fragments = {"fragments": "queues,failures,workers,batch_progress", "batch": batch_id}
    live = admin_client.get("/admin/quebec/job/live/", fragments).json()
    bodies = {name: response.content.decode() for name, response in pages.items()}
    bodies.update({f"live {name}": fragment for name, fragment in live["fragments"].items()})
    assert all(response.status_code == 200 for response in pages.values())
    for field, shown_on in HOSTILE_FIELDS.items():
        for name, body in bodies.items():
            assert hostile(field) not in body, f"{field} is not escaped on {name}"
        for name in shown_on:  # where the field is shown, so that the check above means something
            assert escape(hostile(field)) in bodies[name], f"{field} is not shown on {name}"
    assert escape(hostile("process-name")) in bodies["live workers"]
    assert escape(hostile("error-message")) in bodies["live failures"]
    assert escape(hostile("queue")) in bodies["live queues"]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_users_are_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("url", PAGES[1:])
def test_staff_without_view_permission_gets_403(staff_client, url):
    assert staff_client("view_semaphore").get(url).status_code == 403


def test_the_overview_shows_counts_queues_failures_and_workers(admin_client, some_jobs):
    Pause.pause("paused-queue")
    Process.objects.register("Worker", "worker-on-duty", {"queues": ["default"], "threads": 5})
    body = admin_client.get("/admin/quebec/").content.decode()
    assert 'data-quebec-count="ready">1<' in body
    assert 'data-quebec-count="scheduled">1<' in body
    assert 'data-quebec-count="failed">1<' in body
    assert 'data-queue="paused-queue" class="quebec-paused"' in body
    assert "worker-on-duty" in body
    assert f"FailingJob #{some_jobs['failed'].id}" in body
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in body


def test_the_overview_shows_a_queues_latency(admin_client):
    RecordJob.set(queue="slow").perform_later()
    Job.objects.update(created_at="2020-01-01T00:00:00Z")
    from quebec.models import ReadyExecution

    ReadyExecution.objects.update(created_at="2020-01-01T00:00:00Z")
    body = admin_client.get("/admin/quebec/pause/").content.decode()
    assert 'data-queue="slow"' in body
    row = body.split('data-queue="slow"')[1].split("</tr>")[0]
    assert re.search(r">\d+ d( \d+ h)?<", row), row  # days, not seconds (hours only when not 0)


def test_job_detail_shows_a_failed_jobs_error_escaped(admin_client, some_jobs):
    handle = some_jobs["failed"]
    body = admin_client.get(reverse("admin:quebec_job_change", args=[handle.id])).content.decode()
    assert "FailingJob" in body and "builtins.ValueError" in body
    assert 'id="quebec-backtrace"' in body
    assert HOSTILE not in body
    assert "&lt;script&gt;" in body
    assert 'data-quebec-action="retry"' in body and 'data-quebec-action="discard"' in body


def test_job_detail_says_why_a_job_waits(admin_client, some_jobs):
    scheduled = admin_client.get(reverse("admin:quebec_job_change", args=[some_jobs["scheduled"].id]))
    assert "Scheduled for" in scheduled.content.decode()
    assert 'data-quebec-action="run_now"' in scheduled.content.decode()
    Pause.pause("default")
    ready = admin_client.get(reverse("admin:quebec_job_change", args=[some_jobs["ready"].id])).content.decode()
    assert "Waiting in queue default" in ready and "The queue is paused" in ready
    assert ready.count("data-quebec-action") == 1 and 'data-quebec-action="cancel_job"' in ready  # only Cancel


def test_job_detail_of_a_missing_job_redirects_with_a_message(admin_client):
    response = admin_client.get(reverse("admin:quebec_job_change", args=[999999]), follow=True)
    assert response.status_code == 200
    assert "doesn’t exist" in response.content.decode()


def test_state_pages_link_rows_to_the_job_detail(admin_client, some_jobs):
    body = admin_client.get("/admin/quebec/failedexecution/").content.decode()
    assert reverse("admin:quebec_job_change", args=[some_jobs["failed"].id]) in body
    execution_page = admin_client.get(f"/admin/quebec/failedexecution/{some_jobs['failed'].id}/change/")
    assert execution_page["Location"] == reverse("admin:quebec_job_change", args=[some_jobs["failed"].id])


def test_search_by_id_active_job_id_and_argument_text(admin_client):
    alice = RecordJob.perform_later("alice@example.com")
    bob = RecordJob.perform_later("bob@example.com", 12345)

    def found(query):
        response = admin_client.get("/admin/quebec/readyexecution/", {"q": query})
        return {row.pk for row in response.context["cl"].result_list}

    assert found(str(bob.id)) == {bob.id}
    assert found(f"#{alice.id}") == {alice.id}
    assert found(str(alice.active_job_id)) == {alice.id}
    assert found("alice@") == {alice.id}
    assert found('"12345"') == {bob.id}
    assert found("nobody") == set()
    assert found("99999999999999999999999") == set()


def test_filters_by_class_and_queue(admin_client):
    RecordJob.set(queue="mail").perform_later()
    RecordJob.set(queue="reports").perform_later()
    failed_job(queue="mail")

    def shown(url, **params):
        return len(admin_client.get(url, params).context["cl"].result_list)

    assert shown("/admin/quebec/readyexecution/", queue_name="mail") == 1
    assert shown("/admin/quebec/readyexecution/", class_name="tests.testapp.jobs.RecordJob") == 2
    assert shown("/admin/quebec/readyexecution/", class_name="tests.testapp.jobs.FailingJob") == 0
    assert shown("/admin/quebec/job/", status="failed", queue_name="mail") == 1
    assert shown("/admin/quebec/job/", status="ready") == 2
    choices = admin_client.get("/admin/quebec/readyexecution/").content.decode()
    assert "?queue_name=reports" in choices


def test_finished_jobs_page_lists_finished_jobs_only(admin_client):
    done = RecordJob.perform_later()
    Job.objects.filter(pk=done.id).update(finished_at="2024-05-01T00:00:00Z")
    from quebec.models import ReadyExecution

    ReadyExecution.objects.filter(pk=done.id).delete()
    RecordJob.perform_later()
    response = admin_client.get("/admin/quebec/job/", {"status": "finished"})
    assert [job.pk for job in response.context["cl"].result_list] == [done.id]
    assert response.context["title"] == "Finished jobs"


def test_counts_are_capped_instead_of_counting_every_row(admin_client, monkeypatch):
    from quebec.dashboard.lists import CappedPaginator

    monkeypatch.setattr(CappedPaginator, "cap", 3)
    for _ in range(5):
        RecordJob.perform_later()
    response = admin_client.get("/admin/quebec/job/", {"status": "ready"})
    body = response.content.decode()
    assert "3+ jobs" in body
    assert len(response.context["cl"].result_list) == 5  # the page still shows every row it holds


def test_processes_page_shows_metadata_and_liveness(admin_client, settings_config):
    settings_config(process_alive_threshold=60, process_heartbeat_interval=20)
    Process.objects.register("Worker", "fresh-worker", {"queues": ["a", "b"], "threads": 7, "rss_mb": 88})
    Process.objects.register("Worker", "stale-worker", {"queues": ["*"], "threads": 1})
    Process.objects.filter(name="stale-worker").update(last_heartbeat_at="2020-01-01T00:00:00Z")
    response = admin_client.get("/admin/quebec/process/")
    rows = {process.name: process for process in response.context["cl"].result_list}
    admin = response.context["cl"].model_admin
    assert admin.alive(rows["fresh-worker"]) and not admin.alive(rows["stale-worker"])
    body = response.content.decode()
    assert "a, b" in body and "rss_mb: 88" in body


def test_recurring_tasks_page_shows_schedule_and_last_run(admin_client):
    task = RecurringTask.objects.create(
        key="nightly", schedule="every day at 3am", class_name="tests.testapp.jobs.RecordJob"
    )
    RecurringTask.objects.create(key="idle", schedule="every hour", class_name="tests.testapp.jobs.RecordJob")
    task.run_now()
    response = admin_client.get("/admin/quebec/recurringtask/")
    rows = {row.key: row for row in response.context["cl"].result_list}
    admin = response.context["cl"].model_admin
    assert admin.last_status_label(rows["nightly"]) == "Ready"
    assert admin.last_status_label(rows["idle"]) == "-"
    assert "every day at 3am" in response.content.decode()
    assert "At 03:00 (UTC)" in response.content.decode()  # the schedule in words


ESCAPED = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"


def detail(client, handle):
    return client.get(reverse("admin:quebec_job_change", args=[handle.id])).content.decode()


def attempt_rows(body):
    table = body.split('id="quebec-attempts"')[1].split("</table>")[0]
    return table.split("<tbody>")[1].split("</tr>")[:-1]


def test_job_detail_lists_attempts_newest_first_with_errors_escaped(admin_client):
    handle = RecordJob.perform_later()
    retried = {"exception_class": "tests.testapp.jobs.Flaky", "message": HOSTILE, "backtrace": f"Traceback\n{HOSTILE}"}
    Job.objects.filter(pk=handle.id).update(
        executions=2,
        return_value={"sent": 3, "note": HOSTILE},
        attempts=[
            {
                "number": 1,
                "process": "worker-a",
                "started_at": "2026-01-01T10:00:00+00:00",
                "finished_at": "2026-01-01T10:00:02.500000+00:00",
                "outcome": "retry",
                "error": retried,
            },
            {
                "number": 2,
                "process": HOSTILE,
                "started_at": "2026-01-01T10:01:00+00:00",
                "finished_at": "2026-01-01T10:01:00.035000+00:00",
                "outcome": "finished",
            },
        ],
    )
    body = detail(admin_client, handle)
    newest, oldest = attempt_rows(body)
    assert ">2</th>" in newest and "35 ms" in newest and "Finished" in newest and "<details" not in newest
    assert ">1</th>" in oldest and "2.5 s" in oldest and "Raised, retried" in oldest and "worker-a" in oldest
    assert "tests.testapp.jobs.Flaky" in oldest and "<details" in oldest and "<summary>Backtrace</summary>" in oldest
    assert HOSTILE not in body
    assert ESCAPED in newest and oldest.count(ESCAPED) == 2  # the message and the backtrace
    return_value = body.split('id="quebec-return-value">')[1].split("</pre>")[0]
    assert return_value == "{\n  &quot;note&quot;: &quot;%s&quot;,\n  &quot;sent&quot;: 3\n}" % ESCAPED


def test_job_detail_without_attempts_says_why_in_a_sentence(admin_client):
    handle = RecordJob.perform_later()
    body = detail(admin_client, handle)
    assert "This job has not run yet." in body and 'id="quebec-attempts"' not in body
    assert 'id="quebec-return-value"' not in body
    Job.objects.filter(pk=handle.id).update(executions=1)  # ran before the attempts column existed
    assert "ran before Quebec kept a history of attempts" in detail(admin_client, handle)


def test_job_detail_survives_attempts_it_cannot_read(admin_client):
    handle = RecordJob.perform_later()
    Job.objects.filter(pk=handle.id).update(
        return_value=False,
        attempts=[
            "not an attempt",
            {"outcome": "failed", "started_at": "yesterday", "error": "gone"},
            {},
        ],
    )
    body = detail(admin_client, handle)
    assert len(attempt_rows(body)) == 2
    assert "Failed" in attempt_rows(body)[1] and "?" in attempt_rows(body)[1]
    assert 'id="quebec-return-value">false</pre>' in body  # false is a value, not the absence of one


@pytest.mark.django_db(transaction=True)
def test_job_detail_shows_the_attempts_and_return_value_a_worker_recorded(admin_client, start):
    flaky = ChaosJob.perform_later("flaky-then-ok")
    returning = ReturnJob.perform_later({"total": 3})
    start(preserve_finished_jobs=True)
    wait_until(lambda: finished(flaky, returning), message="both jobs to finish")
    newest, oldest = attempt_rows(detail(admin_client, flaky))
    assert "Finished" in newest and "Raised, retried" in oldest and "tests.testapp.jobs.Flaky" in oldest
    assert '">worker-' in newest and "Traceback" in oldest
    body = detail(admin_client, returning)
    assert len(attempt_rows(body)) == 1
    assert "&quot;total&quot;: 3" in body.split('id="quebec-return-value"')[1]


LOCALE = Path(__file__).resolve().parent.parent / "quebec" / "locale"


def test_the_overview_speaks_french(admin_client, some_jobs):
    with translation.override("fr"):
        body = admin_client.get("/admin/quebec/").content.decode()
    assert '<html lang="fr"' in body
    for french in (
        "Vue d’ensemble",
        "Exécutions terminées et en échec",
        "Derniers échecs",
        "Processus vivants",
        "Planifié",
    ):
        assert french in body
    assert "Latest failures" not in body and "Runs finished and failed" not in body


def test_lists_and_job_pages_speak_french(admin_client, some_jobs):
    with translation.override("fr"):
        ready = admin_client.get("/admin/quebec/readyexecution/").content.decode()
        job = detail(admin_client, some_jobs["failed"])
    assert "Tâches prêtes" in ready and "1 tâche<" in ready
    # Model and field names too: the sidebar's one entry, the column headers and the filters.
    assert "Tableau de bord" in ready and "Nom de file" in ready and "Priorité" in ready
    assert "En échec" in job and "Tentatives" in job and "Trace d’appels" in job


def po_catalog(path):
    """The translations a .po file holds: {(context, msgid): msgstr or (plural forms)}."""
    catalog = {}
    for entry in path.read_text(encoding="utf-8").split("\n\n")[1:]:
        fields, key = {}, None
        for line in entry.splitlines():
            if line.startswith("#"):
                continue
            if line.startswith('"'):
                fields[key] += ast.literal_eval(line)
            else:
                key, _, value = line.partition(" ")
                fields[key] = ast.literal_eval(value)
        forms = tuple(value for name, value in sorted(fields.items()) if name.startswith("msgstr["))
        catalog[fields.get("msgctxt"), fields["msgid"]] = forms or fields["msgstr"]
    return catalog


@pytest.mark.parametrize("language", [path.name for path in LOCALE.iterdir()])
def test_compiled_translations_match_their_sources(language):
    """The .mo files ship in the repository (no gettext needed to install): each must be
    compiled from its .po as it is now, and translate every string."""
    messages = LOCALE / language / "LC_MESSAGES"
    with (messages / "django.mo").open("rb") as compiled_file:
        compiled = gettext.GNUTranslations(compiled_file)
    for (context, msgid), translated in po_catalog(messages / "django.po").items():
        assert translated, f"{msgid!r} has no {language} translation"
        if isinstance(translated, tuple):
            assert compiled.ngettext(msgid, "", 2) in translated, msgid
        elif context:
            assert compiled.pgettext(context, msgid) == translated, msgid
        else:
            assert compiled.gettext(msgid) == translated, msgid


def test_a_unique_jobs_page_shows_its_key_whether_it_holds_it_and_links_the_jobs_sharing_it(admin_client):
    first = UniqueSyncJob.perform_later("acme & co")
    body = detail(admin_client, first)
    assert "<code>UniqueSyncJob/acme &amp; co</code>" in body
    assert '<span id="quebec-unique-key-state">held by this job</span>' in body
    queueing.discard(ReadyExecution.objects.all())
    second = UniqueSyncJob.perform_later("acme & co")
    UniqueSyncJob.perform_later("other")
    assert '<span id="quebec-unique-key-state">given back</span>' in detail(admin_client, first)
    link = "/admin/quebec/job/?unique_key=UniqueSyncJob%2Facme%20%26%20co"
    assert link in detail(admin_client, second)
    listed = admin_client.get(link)
    assert {job.pk for job in listed.context["cl"].result_list} == {first.id, second.id}
    assert "quebec-unique-key-state" not in detail(admin_client, RecordJob.perform_later())
