"""The health endpoint and ``manage.py quebec_health``: healthy means a live worker and, when a
limit is given, no queue waiting longer than it."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import include, path
from django.utils import timezone

from quebec.models import Pause, Process, ReadyExecution
from tests.test_admin_fixtures import _whitenoise_without_collectstatic, staff_client  # noqa: F401  (fixtures)
from tests.testapp.jobs import RecordJob

# This module is its own URLconf: the public endpoint as a project would include it.
urlpatterns = [path("quebec/", include("quebec.dashboard.urls"))]
pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.test_health")]


def worker(heartbeat_age=timedelta(0)):
    process = Process.objects.register("Worker", f"worker-{heartbeat_age}", {"queues": ["*"], "threads": 3})
    Process.objects.filter(pk=process.pk).update(last_heartbeat_at=timezone.now() - heartbeat_age)


def waiting(queue, age):
    RecordJob.set(queue=queue).perform_later()
    ReadyExecution.objects.filter(queue_name=queue).update(created_at=timezone.now() - age)


def test_healthy_with_a_live_worker(admin_client):
    worker()
    response = admin_client.get("/quebec/health/")
    assert response.status_code == 200
    data = response.json()
    assert data["healthy"] is True and data["problems"] == []
    assert data["processes"] == {"alive": {"Worker": 1}, "dead": 0}
    assert set(data["counts"]) == {"ready", "scheduled", "claimed", "blocked", "failed", "finished"}
    assert response["Cache-Control"].startswith("max-age=0")


def test_unhealthy_without_a_live_worker(admin_client, settings_config):
    settings_config(process_alive_threshold=60, process_heartbeat_interval=20)
    worker(heartbeat_age=timedelta(minutes=5))
    response = admin_client.get("/quebec/health/")
    assert response.status_code == 503
    assert response.json()["problems"] == ["no worker process is alive"]
    assert response.json()["processes"]["dead"] == 1


def test_latency_over_the_limit_is_unhealthy_unless_the_queue_is_paused(admin_client):
    client = admin_client
    worker()
    waiting("slow", timedelta(minutes=10))
    waiting("fast", timedelta(seconds=1))
    assert client.get("/quebec/health/").status_code == 200  # no limit given: latency is reported only
    response = client.get("/quebec/health/", {"max_latency": "60"})
    assert response.status_code == 503
    [problem] = response.json()["problems"]
    assert problem.startswith("queue slow: oldest ready job has waited 600s")
    assert response.json()["queues"]["slow"]["size"] == 1
    Pause.pause("slow")
    assert client.get("/quebec/health/", {"max_latency": "60"}).status_code == 200


def test_a_bad_limit_is_a_bad_request(client):
    assert client.get("/quebec/health/", {"max_latency": "soon"}).status_code == 400


def test_anonymous_callers_learn_only_whether_quebec_is_healthy(client, settings_config):
    worker()
    waiting("payroll-secret", timedelta(minutes=10))
    response = client.get("/quebec/health/")
    assert response.status_code == 200 and response.json() == {"healthy": True}
    assert "Authorization" in response["Vary"]
    response = client.get("/quebec/health/", {"max_latency": "60"})
    assert response.status_code == 503 and response.json() == {"healthy": False}
    settings_config(process_alive_threshold=60, process_heartbeat_interval=20)
    Process.objects.update(last_heartbeat_at=timezone.now() - timedelta(minutes=5))
    response = client.get("/quebec/health/")
    assert response.status_code == 503 and response.json() == {"healthy": False}


def test_staff_sessions_get_the_details_and_other_users_do_not(client, staff_client):
    worker()
    assert "queues" in staff_client().get("/quebec/health/").json()  # staff, with no permission at all
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("customer", password="pw"))
    assert client.get("/quebec/health/").json() == {"healthy": True}


def test_the_monitoring_token_gives_the_details(client, settings_config):
    worker()
    settings_config(monitoring_token="s3cret-token")
    details = client.get("/quebec/health/", headers={"Authorization": "Bearer s3cret-token"}).json()
    assert details["processes"] == {"alive": {"Worker": 1}, "dead": 0}
    assert client.get("/quebec/health/", headers={"Authorization": "bearer s3cret-token"}).json()["healthy"]
    for wrong in ("Bearer s3cret-tokeN", "Bearer s3cret", "Bearer ", "Basic s3cret-token", "s3cret-token"):
        assert client.get("/quebec/health/", headers={"Authorization": wrong}).json() == {"healthy": True}, wrong


def test_the_monitoring_token_comes_from_the_environment_too(client, monkeypatch):
    worker()
    monkeypatch.setenv("QUEBEC_MONITORING_TOKEN", "from-env")
    assert client.get("/quebec/health/").json() == {"healthy": True}
    assert "queues" in client.get("/quebec/health/", headers={"Authorization": "Bearer from-env"}).json()


@pytest.mark.parametrize("header", ["Bearer ", "Bearer None", "Bearer"])
def test_no_bearer_is_accepted_without_a_configured_token(client, header):
    worker()
    assert client.get("/quebec/health/", headers={"Authorization": header}).json() == {"healthy": True}


def test_the_token_is_kept_out_of_the_configs_repr(settings_config):
    assert "s3cret-token" not in repr(settings_config(monitoring_token="s3cret-token"))


def test_the_command_exits_zero_when_healthy(capsys):
    worker()
    call_command("quebec_health")
    assert capsys.readouterr().out.strip() == "healthy: 1 Worker alive"


def test_the_command_exits_non_zero_when_unhealthy(capsys):
    waiting("slow", timedelta(minutes=10))
    with pytest.raises(SystemExit) as exit_info:
        call_command("quebec_health", "--max-latency", "30")
    assert exit_info.value.code == 1
    errors = capsys.readouterr().err
    assert "unhealthy: no worker process is alive" in errors and "unhealthy: queue slow" in errors


def test_the_command_prints_json(capsys):
    import json

    worker()
    call_command("quebec_health", "--json")
    assert json.loads(capsys.readouterr().out)["healthy"] is True


@pytest.mark.subprocess
def test_the_command_exit_code_in_a_real_process(transactional_db):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT, database_url

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "testproject")]),
    }
    command = [sys.executable, "-m", "django", "quebec_health"]
    unhealthy = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert unhealthy.returncode == 1 and "no worker process is alive" in unhealthy.stderr
    worker()
    healthy = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert healthy.returncode == 0, healthy.stderr
