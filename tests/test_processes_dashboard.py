"""``quebec_run --dashboard`` serves the project's admin from the worker process."""

import re
import urllib.error
import urllib.request

import pytest

from tests.conftest import wait_until

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_dashboard_serves_the_admin_and_its_static_files(quebec_run):
    process = quebec_run("--dashboard", "127.0.0.1:0")
    process.wait_for_output("Dashboard at")
    base = re.search(r"Dashboard at (http://[\d.]+:\d+)/", process.output())[1]
    status, body = wait_until(lambda: get(f"{base}/admin/login/"), message="the dashboard to answer")
    assert status == 200 and "Django administration" in body
    assert get(f"{base}/static/admin/css/base.css")[0] == 200
    assert process.stop() == 0


def test_a_bad_dashboard_address_is_refused(quebec_run):
    process = quebec_run("--dashboard", "localhost:http")
    assert process.wait() != 0
    assert "dashboard address must be HOST:PORT, got 'localhost:http'" in process.output()
