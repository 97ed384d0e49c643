"""``quebec_run --dashboard`` serves the project's admin from the worker process."""

import json
import re
import socket
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import wait_until

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]


def get(url, headers=None):
    """``(status, body, headers)``, whatever the status."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


def raw_get(base, path):
    """GET ``path`` exactly as written: urllib would resolve ``%2e%2e`` segments itself."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    head, _, body = reply.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


def start_dashboard(quebec_run, *args, env=None):
    process = quebec_run("--only", "dispatcher", "--dashboard", "127.0.0.1:0", *args, env=env)
    process.wait_for_output("Dashboard at")
    base = re.search(r"Dashboard at (http://[\d.]+:\d+)/", process.output())[1]
    wait_until(lambda: get(f"{base}/admin/login/")[0] == 200, message="the dashboard to answer")
    return process, base


def test_dashboard_serves_the_admin_and_its_static_files(quebec_run):
    process, base = start_dashboard(quebec_run)
    status, body, headers = get(f"{base}/admin/login/")
    assert status == 200 and "Django administration" in body
    assert headers["Server"] == "quebec"  # Waitress, not Django's development server (WSGIServer/0.2)
    status, body, headers = get(f"{base}/static/quebec/dashboard.js")
    assert status == 200 and "quebec" in body.lower() and "max-age" in headers["Cache-Control"]
    assert get(f"{base}/static/admin/css/base.css")[0] == 200
    assert process.stop() == 0


def test_dashboard_never_shows_debug_pages_or_tracebacks(quebec_run):
    """The test project runs with DEBUG on; the dashboard must not."""
    process, base = start_dashboard(quebec_run)
    for path in (
        "/static/%2e%2e/",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/../settings.py",
        "/static/admin/%2e%2e/%2e%2e/%2e%2e/quebec/conf.py",
    ):
        status, body = raw_get(base, path)
        assert status == 404, (path, status, body[:500])
        assert "Traceback" not in body and "SuspiciousFileOperation" not in body and "import" not in body
    status, body, _ = get(f"{base}/no-such-page/")
    assert status == 404 and "URLconf" not in body and "DEBUG = True" not in body
    assert "<h1>Not Found</h1>" in body
    assert "Traceback" not in process.output()
    assert process.stop() == 0


def test_dashboard_debug_is_the_projects_explicit_choice(quebec_run):
    process, base = start_dashboard(quebec_run, env={"QUEBEC_DASHBOARD_DEBUG": "true"})
    status, body, _ = get(f"{base}/no-such-page/")
    assert status == 404 and "URLconf" in body  # Django's debug page, asked for
    assert process.stop() == 0


def test_dashboard_serves_requests_in_parallel(quebec_run):
    """A client that sends half a request and waits ties up no thread that others need."""
    process, base = start_dashboard(quebec_run)
    host, port = base.removeprefix("http://").rsplit(":", 1)
    stalled = [socket.create_connection((host, int(port)), timeout=5) for _ in range(8)]
    try:
        for connection in stalled:
            connection.sendall(b"GET /admin/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        started = time.monotonic()
        assert get(f"{base}/admin/login/")[0] == 200
        assert time.monotonic() - started < 3
    finally:
        for connection in stalled:
            connection.close()
    assert process.stop() == 0


def test_a_bad_dashboard_address_is_refused(quebec_run):
    process = quebec_run("--dashboard", "localhost:http")
    assert process.wait() != 0
    assert "dashboard address must be HOST:PORT, got 'localhost:http'" in process.output()


def test_health_over_http_gives_details_only_to_the_monitoring_token(quebec_run):
    process, base = start_dashboard(quebec_run, env={"QUEBEC_MONITORING_TOKEN": "monitor-me"})
    status, body, _ = get(f"{base}/quebec/health/")
    assert status in (200, 503) and json.loads(body) == {"healthy": status == 200}
    status, body, _ = get(f"{base}/quebec/health/", headers={"Authorization": "Bearer monitor-me"})
    assert "Dispatcher" in json.loads(body)["processes"]["alive"]
    _, body, _ = get(f"{base}/quebec/health/", headers={"Authorization": "Bearer monitor-you"})
    assert set(json.loads(body)) == {"healthy"}
    assert process.stop() == 0
