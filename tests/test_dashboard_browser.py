"""The dashboard in a real browser: headless Chromium (Debian's chromium and chromium-driver)
driven by Selenium against a live server, with screenshots under the test's tmp_path.

Skipped when Chromium, its driver or Selenium is missing, except on CI (CI=true), where that
is a failure. With SAVE_DOCS_SCREENSHOTS=1, the charts page of a real run is also saved as
docs/dashboard-charts.png (the README shows it).
"""

import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import User

import quebec
from quebec.models import Job, JobStat, Pause, Process
from tests.conftest import finished, wait_until
from tests.test_admin_fixtures import _whitenoise_without_collectstatic, fail, failed_job  # noqa: F401  (fixture)
from tests.testapp.jobs import ChaosJob, FailingJob, RecordJob, SleepJob

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # The live server is shared by the session and starts before any per-test setting: WhiteNoise
    # warns there that the test settings have no collected static files (it serves the apps' own).
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

PAGES = {
    "overview": "/admin/quebec/",
    "charts": "/admin/quebec/jobstat/",
    "queues": "/admin/quebec/pause/",
    "ready": "/admin/quebec/readyexecution/",
    "scheduled": "/admin/quebec/scheduledexecution/",
    "in-progress": "/admin/quebec/claimedexecution/",
    "blocked": "/admin/quebec/blockedexecution/",
    "failed": "/admin/quebec/failedexecution/",
    "finished": "/admin/quebec/job/?status=finished",
    "recurring": "/admin/quebec/recurringtask/",
    "processes": "/admin/quebec/process/",
    "batches": "/admin/quebec/batch/",
}


def unavailable(reason):
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests must run on CI: {reason}")
    pytest.skip(reason)


def find_browser():
    try:
        from selenium import webdriver
    except ImportError:
        unavailable("selenium is not installed (pip install selenium)")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        unavailable("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    return webdriver, binary, driver


@pytest.fixture
def browser(tmp_path):
    webdriver, binary, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    chrome = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))
    chrome.implicitly_wait(0)
    yield chrome
    chrome.quit()


class Dashboard:
    """The pages as a user sees them: open, click, read, screenshot."""

    def __init__(self, browser, base_url, shots):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser, self.base_url, self.shots = browser, base_url, shots
        self.by, self.wait_class = By, WebDriverWait

    def open(self, path):
        self.browser.get(self.base_url + path)

    def css(self, selector):
        return self.browser.find_element(self.by.CSS_SELECTOR, selector)

    def all(self, selector):
        return self.browser.find_elements(self.by.CSS_SELECTOR, selector)

    def texts(self, selector):
        """The text of every match, read at once: the refresh may replace elements between reads."""
        script = "return [...document.querySelectorAll(arguments[0])].map((el) => el.textContent.trim())"
        return self.browser.execute_script(script, selector)

    def choose(self, selector, value):
        from selenium.webdriver.support.ui import Select

        Select(self.css(selector)).select_by_value(value)

    def wait_for(self, condition, timeout=20):
        return self.wait_class(self.browser, timeout, poll_frequency=0.2).until(lambda _: condition())

    def screenshot(self, name):
        path = self.shots / f"{name}.png"
        assert self.browser.save_screenshot(str(path))
        return path

    def full_screenshot(self, name):
        """The whole page, however long, at the current width."""
        height = self.browser.execute_script("return document.scrollingElement.scrollHeight")
        self.viewport(self.width, height)
        try:
            return self.screenshot(name)
        finally:
            self.viewport(self.width, 1000)

    width = 1400

    def viewport(self, width, height=1000):
        """Lay pages out for a screen ``width`` CSS pixels wide (a phone's below 600: mobile)."""
        self.width = width
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
        self.browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)

    def sideways_overflow(self):
        """How many CSS pixels the page, or a list in its own scrolling box, is wider than its
        box (0 or less: nothing scrolls sideways)."""
        script = """
            const boxes = [document.scrollingElement, ...document.querySelectorAll(".results, .quebec-scroll")];
            return Math.max(...boxes.map((box) => box.scrollWidth - box.clientWidth));
        """
        return self.browser.execute_script(script)

    def tab_rows(self):
        """The distinct tops of the tabs: one when they all fit on one row."""
        script = "return [...document.querySelectorAll('.quebec-tabs li')].map((li) => li.getBoundingClientRect().top)"
        return sorted(set(self.browser.execute_script(script)))

    def log_in(self, username, password):
        self.open("/admin/login/?next=/admin/quebec/")
        self.css("#id_username").send_keys(username)
        self.css("#id_password").send_keys(password)
        self.css("input[type=submit]").click()
        self.wait_for(lambda: self.all(".quebec-tabs"))


@pytest.fixture
def dashboard(browser, live_server, tmp_path):
    User.objects.create_superuser("boss", "boss@example.com", "secret")
    page = Dashboard(browser, live_server.url, tmp_path)
    page.log_in("boss", "secret")
    return page


def test_every_page_opens(dashboard):
    RecordJob.perform_later("visible")
    for name, path in PAGES.items():
        dashboard.open(path)
        assert dashboard.all(".quebec-tabs li.active"), name
        assert "Server Error" not in dashboard.browser.title
        dashboard.screenshot(name)
    dashboard.open("/admin/quebec/")
    dashboard.wait_for(lambda: dashboard.all(".quebec-chart svg"))
    assert dashboard.screenshot("overview-chart").stat().st_size > 0


def test_retry_a_failed_job_and_see_it_run(dashboard, start):
    handle = fail(RecordJob.perform_later("second time lucky"))
    dashboard.open(f"/admin/quebec/job/{handle.id}/change/")
    assert dashboard.css(".quebec-status").text == "Failed"
    dashboard.screenshot("failed-job")
    dashboard.css('[data-quebec-action="retry"]').click()
    dashboard.wait_for(lambda: "back in line" in dashboard.css(".messagelist").text)
    start(threads=1)
    wait_until(lambda: handle.status == "finished", message="the retried job to run")
    dashboard.browser.refresh()
    assert dashboard.css(".quebec-status").text == "Finished"
    dashboard.screenshot("retried-job")


def test_pause_a_queue(dashboard):
    RecordJob.set(queue="mail").perform_later()
    dashboard.open("/admin/quebec/pause/")
    dashboard.css('tr[data-queue="mail"] [data-quebec-action="pause"]').click()
    dashboard.wait_for(lambda: dashboard.all('tr[data-queue="mail"].quebec-paused'))
    assert Pause.objects.filter(queue_name="mail").exists()
    dashboard.screenshot("paused-queue")
    dashboard.css('tr[data-queue="mail"] [data-quebec-action="resume"]').click()
    dashboard.wait_for(lambda: dashboard.all('tr[data-queue="mail"]:not(.quebec-paused)'))
    assert not Pause.objects.exists()


def test_counts_change_live_without_a_reload(dashboard):
    dashboard.open("/admin/quebec/")
    count = dashboard.css('.quebec-counts [data-quebec-count="ready"]')
    assert count.text == "0"
    dashboard.browser.execute_script("window.quebecNotReloaded = true")
    RecordJob.set(queue="live").perform_later()
    RecordJob.set(queue="live").perform_later()
    dashboard.wait_for(lambda: count.text == "2")
    dashboard.wait_for(lambda: dashboard.all('#quebec-queues tr[data-queue="live"]'))
    assert dashboard.browser.execute_script("return window.quebecNotReloaded") is True
    assert Job.objects.count() == 2
    dashboard.screenshot("live-count")


def job_links(dashboard):
    return set(dashboard.texts("#result_list .field-job_link a"))


def test_list_rows_change_live_without_a_reload(dashboard, start):
    waiting = RecordJob.set(queue="live").perform_later("first")
    dashboard.open("/admin/quebec/readyexecution/?queue_name=live")
    assert job_links(dashboard) == {f"#{waiting.id}"}
    dashboard.browser.execute_script("window.quebecNotReloaded = true")
    RecordJob.set(queue="elsewhere").perform_later("filtered out")
    second = RecordJob.set(queue="live").perform_later("second")
    dashboard.wait_for(lambda: job_links(dashboard) == {f"#{waiting.id}", f"#{second.id}"})
    dashboard.screenshot("ready-rows-live")
    start(threads=1, preserve_finished_jobs=True)
    wait_until(lambda: Job.objects.filter(finished_at__isnull=False).count() == 3, message="the jobs to run")
    dashboard.wait_for(lambda: not job_links(dashboard))
    assert dashboard.texts(".quebec-result-count") == ["0 jobs"]
    assert dashboard.browser.execute_script("return window.quebecNotReloaded") is True
    dashboard.screenshot("ready-rows-drained")


def test_finished_list_fills_as_a_worker_runs_jobs(dashboard, start):
    dashboard.open("/admin/quebec/job/?status=finished")
    assert not job_links(dashboard)
    dashboard.browser.execute_script("window.quebecNotReloaded = true")
    handles = [RecordJob.perform_later(label) for label in ("one", "two")]
    start(threads=1, preserve_finished_jobs=True)
    dashboard.wait_for(lambda: job_links(dashboard) == {f"#{handle.id}" for handle in handles})
    assert dashboard.browser.execute_script("return window.quebecNotReloaded") is True
    dashboard.screenshot("finished-rows-live")


def test_rows_stay_while_the_user_selects_and_a_hint_says_the_list_changed(dashboard):
    first = failed_job("first")
    dashboard.open("/admin/quebec/failedexecution/")
    dashboard.browser.execute_script("window.quebecNotReloaded = true")
    dashboard.css("input.action-select").click()
    second = failed_job("second")
    hint = dashboard.css("[data-quebec-rows-hint]")
    dashboard.wait_for(hint.is_displayed)
    assert job_links(dashboard) == {f"#{first.id}"}
    assert dashboard.css("input.action-select").is_selected()
    dashboard.screenshot("rows-held-while-selecting")
    dashboard.css("input.action-select").click()  # nothing selected any more: the rows may change
    dashboard.wait_for(lambda: job_links(dashboard) == {f"#{first.id}", f"#{second.id}"})
    assert not hint.is_displayed()
    dashboard.css("#action-toggle").click()  # the admin's select-all works on the new rows
    assert dashboard.texts(".action-counter") == ["2 of 2 selected"]
    assert all(box.is_selected() for box in dashboard.all("input.action-select"))
    assert dashboard.browser.execute_script("return window.quebecNotReloaded") is True
    assert (
        dashboard.browser.execute_script(
            "return Object.hasOwn(document, 'addEventListener') || Object.hasOwn(window, 'addEventListener')"
        )
        is False
    )  # the rebinding left the document's own methods in place
    dashboard.screenshot("rows-refreshed-then-selected")
    dashboard.choose("select[name=action]", "retry")
    dashboard.css("button[name=index]").click()
    dashboard.wait_for(lambda: dashboard.all('[data-quebec-action="confirm"]'))
    assert "2 job(s) will be affected" in dashboard.css(".quebec-confirm").text


def test_a_jobs_attempts_with_backtraces_folded(dashboard, start):
    handle = ChaosJob.perform_later("flaky-then-ok")
    start(threads=1, preserve_finished_jobs=True)
    wait_until(lambda: handle.status == "finished", message="the flaky job to finish")
    dashboard.open(f"/admin/quebec/job/{handle.id}/change/")
    rows = dashboard.all("#quebec-attempts tbody tr")
    assert [row.find_element(dashboard.by.TAG_NAME, "th").text for row in rows] == ["2", "1"]
    backtrace = dashboard.css("#quebec-attempts details pre")
    assert not backtrace.is_displayed()
    dashboard.css("#quebec-attempts details summary").click()
    assert backtrace.is_displayed() and "Traceback" in backtrace.text and "Flaky" in backtrace.text
    dashboard.browser.execute_script("arguments[0].scrollIntoView()", dashboard.css("#quebec-attempts"))
    dashboard.screenshot("job-attempts")


def batch_progress(dashboard, batch_id):
    """The batch's progress bar on the Batches page, as assistive technology reads it."""
    script = """
        const link = document.querySelector(`#result_list a[href$="/batch/${arguments[0]}/change/"]`);
        const bar = link && link.closest("tr").querySelector("[role=progressbar]");
        return bar && [bar.getAttribute("aria-valuenow"), bar.getAttribute("aria-valuetext")];
    """
    return dashboard.browser.execute_script(script, batch_id)


def test_a_batchs_progress_bar_advances_live_and_its_members_list_opens(dashboard, start):
    with quebec.batch(description="import 7", on_success=RecordJob.build("mail")) as batch:
        members = [RecordJob.set(queue=queue).perform_later(queue) for queue in ("first", "first", "second", "second")]
    dashboard.open("/admin/quebec/batch/")
    assert batch_progress(dashboard, batch.pk) == ["0.0", "0 of 4 ended (0 completed, 0 failed)"]
    dashboard.browser.execute_script("window.quebecNotReloaded = true")
    dashboard.screenshot("batch-waiting")
    start(threads=1, queues=("first",), preserve_finished_jobs=True)  # half of the members
    dashboard.wait_for(lambda: batch_progress(dashboard, batch.pk) == ["50.0", "2 of 4 ended (2 completed, 0 failed)"])
    dashboard.screenshot("batch-half-done")
    start(threads=1, queues=("second", "default"), preserve_finished_jobs=True)
    dashboard.wait_for(lambda: batch_progress(dashboard, batch.pk) == ["100.0", "4 of 4 ended (4 completed, 0 failed)"])
    row = dashboard.texts(f'#result_list tr:has(a[href$="/batch/{batch.pk}/change/"])')[0]
    assert "Succeeded" in row and "on success: tests.testapp.jobs.RecordJob (fired)" in row
    assert dashboard.browser.execute_script("return window.quebecNotReloaded") is True
    dashboard.screenshot("batch-done")
    dashboard.css(f'#result_list a[href$="/batch/{batch.pk}/change/"]').click()
    dashboard.wait_for(lambda: dashboard.all("#quebec-batch-members"))
    assert dashboard.css("#quebec-batch-status").text == "Succeeded"
    assert dashboard.css("[role=progressbar]").get_attribute("aria-valuenow") == "100.0"
    dashboard.screenshot("batch-page")
    dashboard.css("#quebec-batch-members").click()
    dashboard.wait_for(lambda: dashboard.all("#result_list"))
    assert job_links(dashboard) == {f"#{member.id}" for member in members}
    assert f"Jobs of batch #{batch.pk}" in dashboard.browser.title
    dashboard.screenshot("batch-members")
    dashboard.css(f'#result_list a[href$="/job/{members[0].id}/change/"]').click()
    dashboard.wait_for(lambda: dashboard.all("#quebec-job-batch a"))
    assert dashboard.css("#quebec-job-batch").text == f"Batch #{batch.pk} (import 7) (Succeeded)"


def test_a_batch_page_follows_its_batch_live_and_links_its_fired_callback(dashboard, start):
    with quebec.batch(description="import 8", on_finish=RecordJob.build("report")) as batch:
        RecordJob.set(queue="first").perform_later("a")
        RecordJob.set(queue="second").perform_later("b")
    dashboard.open(f"/admin/quebec/batch/{batch.pk}/change/")

    def bar():
        return dashboard.browser.execute_script(
            "return document.querySelector('[role=progressbar]').getAttribute('aria-valuenow')"
        )

    assert bar() == "0.0" and dashboard.texts("#quebec-batch-status") == ["Running"]
    assert dashboard.texts('[data-callback="on_finish"] td:last-child') == ["waiting"]
    dashboard.browser.execute_script("window.quebecNotReloaded = true")
    start(threads=1, queues=("first",), preserve_finished_jobs=True)
    dashboard.wait_for(lambda: bar() == "50.0")
    dashboard.screenshot("batch-page-half-done")
    start(threads=1, queues=("second", "default"), preserve_finished_jobs=True)
    dashboard.wait_for(lambda: dashboard.texts("#quebec-batch-status") == ["Succeeded"])
    assert bar() == "100.0" and dashboard.texts("#quebec-batch-finished") != ["-"]
    callback = batch.refresh().fired["on_finish"]
    assert dashboard.texts('[data-callback="on_finish"] td:last-child') == [f"fired (job #{callback})"]
    assert dashboard.browser.execute_script("return window.quebecNotReloaded") is True
    dashboard.screenshot("batch-page-done")
    dashboard.css('[data-callback="on_finish"] a').click()
    dashboard.wait_for(lambda: dashboard.all("#quebec-job-batch"))
    assert (
        dashboard.css("#quebec-job-batch").text == f"The on finish callback of Batch #{batch.pk} (import 8) (Succeeded)"
    )


def fill_every_list():
    """Rows in every list, with long names and messages, as a busy installation has."""
    long_name = "tests.testapp.jobs.RecordJob"
    for index in range(3):
        RecordJob.set(queue=f"imports-{index}-with-a-long-queue-name").perform_later(
            f"import {index}", value={"rows": "x" * 300}
        )
        RecordJob.set(wait=3600).perform_later({"account": index, "note": "y" * 300})
        failed_job(index, message="Traceback: " + "a very long error message " * 20)
        Process.objects.register(
            "Worker", f"worker-{index}-{'z' * 40}", {"queues": ["*", long_name], "threads": 5, "rss_mb": 123}
        )
    Pause.pause("imports-0-with-a-long-queue-name")


def test_tabs_fit_one_row_and_no_list_scrolls_sideways_at_1400_px(dashboard, start):
    fill_every_list()
    start(threads=1, queues=("imports-1*",), preserve_finished_jobs=True)  # a worker, and finished jobs
    wait_until(lambda: Job.objects.filter(finished_at__isnull=False).exists(), message="a job to finish")
    dashboard.viewport(1400)
    for name, path in PAGES.items():
        dashboard.open(path)
        dashboard.screenshot(f"wide-{name}")
        assert len(dashboard.tab_rows()) == 1, name
        assert dashboard.sideways_overflow() <= 0, name


def test_the_overview_is_readable_on_a_phone(dashboard):
    fill_every_list()
    dashboard.viewport(390, 844)
    dashboard.open(PAGES["charts"])  # wide tables scroll in their own box; the page does not
    assert dashboard.browser.execute_script("return document.scrollingElement.scrollWidth <= innerWidth")
    dashboard.full_screenshot("phone-charts")
    dashboard.open(PAGES["overview"])
    dashboard.full_screenshot("phone-overview")
    assert dashboard.sideways_overflow() <= 0
    counts = dashboard.browser.execute_script(
        "return [...document.querySelectorAll('.quebec-count')].map((el) => el.getBoundingClientRect().width)"
    )
    assert counts and min(counts) >= 100  # count cards stay wide enough to read
    size = dashboard.browser.execute_script(
        "return parseFloat(getComputedStyle(document.querySelector('#quebec-queues td')).fontSize)"
    )
    assert size >= 12


def test_charts_of_a_real_run(dashboard, start):
    """Jobs of a few classes, some failing, run by a real worker: the charts show what they did."""
    handles = [
        *(RecordJob.set(queue="default").perform_later(index) for index in range(12)),
        *(SleepJob.set(queue="reports").perform_later(0.5 + 0.25 * (index % 4)) for index in range(8)),
        *(ChaosJob.set(queue="default").perform_later("flaky-then-ok") for _ in range(3)),
        *(ChaosJob.set(queue="default").perform_later("discard") for _ in range(2)),
        *(FailingJob.set(queue="mail").perform_later("smtp down") for _ in range(3)),
    ]
    start(threads=3)
    wait_until(lambda: finished(*handles), message="the jobs to end")
    ended = lambda: sum(JobStat.objects.totals()[name] for name in ("finished", "failed", "retried", "discarded"))  # noqa: E731
    wait_until(lambda: ended() == 31, message="the rollups of every run")  # 28 jobs, 3 retried once
    dashboard.viewport(1400)
    dashboard.open(PAGES["charts"] + "?range=hour")
    bars = dashboard.all("#quebec-throughput-chart rect")
    assert bars and all(bar.get_attribute("class").startswith("quebec-bar-") for bar in bars)
    assert dashboard.css("#quebec-throughput-svg-desc").get_attribute("textContent") == "23 finished, 6 failed"
    assert set(dashboard.texts("#quebec-by-class tbody th")) == {
        "tests.testapp.jobs.RecordJob",
        "tests.testapp.jobs.SleepJob",
        "tests.testapp.jobs.ChaosJob",
        "tests.testapp.jobs.FailingJob",
    }
    assert dashboard.texts("#quebec-slowest tbody th")[0] == "tests.testapp.jobs.SleepJob"
    assert len(dashboard.tab_rows()) == 1 and dashboard.sideways_overflow() <= 0
    shot = dashboard.full_screenshot("charts")
    if os.environ.get("SAVE_DOCS_SCREENSHOTS") == "1":
        shutil.copy(shot, Path(__file__).resolve().parent.parent / "docs" / "dashboard-charts.png")
