"""Quebec's app start: autodiscovery never stops a manage.py command, and what it could not
import is reported by check and refused by quebec_run."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, database_url

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]


def manage(*args, settings="tests.settings"):
    """Run ``manage.py <args>`` against the test database; returns (exit code, output)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "DATABASE_URL": database_url(),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "testproject")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "django", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout + done.stderr


def test_two_apps_each_with_an_email_job_run_every_command():
    # demo.jobs and tests.otherapp.jobs both define EmailJob.
    for command in (["check"], ["migrate", "--check"], ["migrate"]):
        code, output = manage(*command)
        assert code == 0, output
        assert "quebec.W012" not in output


def test_a_broken_jobs_module_is_reported_by_check_and_stops_only_quebec_run():
    code, output = manage("check", settings="tests.settings_brokenjobs")
    assert code == 0, output
    assert "quebec.W012" in output
    assert "Quebec could not import tests.brokenapp.jobs: ImportError: cannot import name 'NoSuchModel'" in output
    assert f"{os.path.join('tests', 'brokenapp', 'jobs.py')}, line 4" in output
    # A tasks module that needs another queue's library is reported too.
    assert "quebec.W013" in output and "tests.celeryapp.tasks: ModuleNotFoundError" in output
    code, output = manage("migrate", settings="tests.settings_brokenjobs")
    assert code == 0, output
    code, output = manage("quebec_run", settings="tests.settings_brokenjobs")
    assert code != 0
    assert "autodiscovery could not import tests.brokenapp.jobs: ImportError" in output
    assert "Quebec running" not in output


def test_a_tasks_module_that_fails_to_import_is_reported_but_quebec_run_starts(quebec_run):
    code, output = manage("check", settings="tests.settings_celerytasks")
    assert code == 0 and "quebec.W013" in output and "quebec.W012" not in output, output
    process = quebec_run("--only", "worker", env={"DJANGO_SETTINGS_MODULE": "tests.settings_celerytasks"})
    process.wait_for_output("Quebec running")
    assert process.stop() == 0
