"""What `manage.py check` says about Quebec's settings: errors stop commands, warnings do not."""

import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from tests.conftest import ROOT, database_url

# Django's model checks ask every configured database what it supports, the second one too.
pytestmark = pytest.mark.django_db(databases=["default", "second"])


def check_output():
    """The warnings `manage.py check` prints (it passes)."""
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err)
    return err.getvalue()


def check_errors():
    """The message of the SystemCheckError `manage.py check` fails with."""
    with pytest.raises(SystemCheckError) as error:
        call_command("check", stdout=StringIO(), stderr=StringIO())
    return str(error.value)


def test_an_unknown_environment_variable_is_a_warning(monkeypatch):
    monkeypatch.setenv("QUEBEC_WORKER_THREAD", "8")
    assert (
        "?: (quebec.W010) environment variable QUEBEC_WORKER_THREAD names no Quebec setting and is ignored; "
        "did you mean QUEBEC_WORKER_THREADS?\n"
        "\tHINT: Correct or unset it; the settings are the keys of QUEBEC, each also a QUEBEC_<KEY> variable."
    ) in check_output()


def test_files_without_this_environment_are_warnings(tmp_path, monkeypatch):
    (tmp_path / "queue.yml").write_text("production:\n  worker_threads: 8\n")
    (tmp_path / "recurring.yml").write_text("production: {}\nstaging: {}\n")
    monkeypatch.setenv("QUEBEC_ENV", "test")
    output = check_output()
    assert (
        "?: (quebec.W011) queue.yml has no section for environment 'test' (QUEBEC_ENV); its sections are "
        "'production'; the default settings apply\n"
        "\tHINT: Set QUEBEC_ENV to one of its sections, or add a section for this environment."
    ) in output
    assert (
        "?: (quebec.W011) recurring.yml has no section for environment 'test' (QUEBEC_ENV); its sections are "
        "'production', 'staging'; it gives no recurring tasks"
    ) in output


@pytest.mark.parametrize(
    ("quebec", "expected"),
    [
        (
            {"process_alive_threshold": 30},
            "process_alive_threshold (30s, from settings.QUEBEC) must be at least 130s: twice process_heartbeat_interval",
        ),
        ({"worker_polling_interval": 0}, "settings.QUEBEC: worker_polling_interval must be at least 0.01 seconds"),
        ({"shutdown_timeout": float("nan")}, "settings.QUEBEC: shutdown_timeout must be a finite number of seconds"),
        (
            {"recurring": {"nightly": {"clas": "tests.testapp.jobs.RecordJob", "schedule": "@daily"}}},
            "settings.QUEBEC['recurring']: recurring task 'nightly': unknown option 'clas'; did you mean 'class'?",
        ),
        ({"worker_thread": 3}, "settings.QUEBEC: unknown key 'worker_thread'; did you mean 'worker_threads'?"),
    ],
)
def test_invalid_settings_are_errors(settings, quebec, expected):
    settings.QUEBEC = quebec
    assert f"(quebec.E001) Quebec's configuration is invalid: {expected}" in check_errors()


def test_manage_py_check_shows_warnings_and_fails_on_errors(tmp_path):
    (tmp_path / "recurring.yml").write_text("cleanup:\n  class: tests.testapp.jobs.RecordJob\n  schedul: '@daily'\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("QUEBEC_")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=database_url(),
        QUEBEC_SHUTDOWN_TIMOUT="10",
        QUEBEC_RECURRING_SCHEDULE=str(tmp_path / "recurring.yml"),
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "testproject")]),
    )
    result = subprocess.run(
        [sys.executable, "-m", "django", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert (
        "(quebec.E001) Quebec's configuration is invalid: "
        f"{tmp_path / 'recurring.yml'}: recurring task 'cleanup': unknown option 'schedul'; did you mean 'schedule'?"
    ) in result.stderr
    assert (
        "(quebec.W010) environment variable QUEBEC_SHUTDOWN_TIMOUT names no Quebec setting and is ignored; "
        "did you mean QUEBEC_SHUTDOWN_TIMEOUT?" in result.stderr
    )
