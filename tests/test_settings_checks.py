import pytest

from quebec import settings_checks
from quebec.models import Process


def test_an_unknown_quebec_variable_is_reported_with_a_correction(monkeypatch):
    monkeypatch.setenv("QUEBEC_WORKER_THREAD", "8")
    monkeypatch.setenv("QUEBEC_SHUTDOWN_TIMOUT", "10")
    monkeypatch.setenv("QUEBEC_COLOUR", "blue")
    assert settings_checks.unknown_environment_variables() == [
        "environment variable QUEBEC_COLOUR names no Quebec setting and is ignored",
        "environment variable QUEBEC_SHUTDOWN_TIMOUT names no Quebec setting and is ignored; "
        "did you mean QUEBEC_SHUTDOWN_TIMEOUT?",
        "environment variable QUEBEC_WORKER_THREAD names no Quebec setting and is ignored; "
        "did you mean QUEBEC_WORKER_THREADS?",
    ]


def test_settings_aliases_and_quebecs_other_variables_are_not_reported(monkeypatch):
    for name in (
        "QUEBEC_WORKER_THREADS",
        "QUEBEC_EXPERIMENTAL_QUEUE_CONCURRENCY",
        "QUEBEC_ENV",
        "QUEBEC_CONFIG",
        "QUEBEC_RECURRING_SCHEDULE",
        "QUEBEC_SUPERVISOR",
        "QUEBEC_DATABASE_URL",
        "QUEBEC_TEST_MYSQL_URL",
    ):
        monkeypatch.setenv(name, "1" if name != "QUEBEC_EXPERIMENTAL_QUEUE_CONCURRENCY" else "{}")
    assert settings_checks.unknown_environment_variables() == []


def test_files_keyed_by_other_environments_are_reported_with_their_sections(tmp_path, monkeypatch):
    (tmp_path / "queue.yml").write_text("production:\n  worker_threads: 8\nstaging: {}\n")
    (tmp_path / "recurring.yml").write_text("production:\n  cleanup: {class: a.B, schedule: '@daily'}\n")
    assert settings_checks.missing_environment_sections("queue.yml") == [
        "queue.yml has no section for environment 'development' (QUEBEC_ENV); its sections are 'production', "
        "'staging'; the default settings apply",
        "recurring.yml has no section for environment 'development' (QUEBEC_ENV); its sections are "
        "'production'; it gives no recurring tasks",
    ]
    monkeypatch.setenv("QUEBEC_ENV", "staging")
    assert settings_checks.missing_environment_sections("queue.yml") == [
        "recurring.yml has no section for environment 'staging' (QUEBEC_ENV); its sections are "
        "'production'; it gives no recurring tasks",
    ]


def test_flat_files_and_unreadable_files_give_no_section_warning(tmp_path, monkeypatch):
    (tmp_path / "queue.yml").write_text("worker_threads: 8\n")
    (tmp_path / "recurring.yml").write_text("cleanup: [\n")  # invalid YAML: an error elsewhere
    assert settings_checks.missing_environment_sections("queue.yml") == []
    monkeypatch.setenv("QUEBEC_RECURRING_SCHEDULE", str(tmp_path / "missing.yml"))
    assert settings_checks.missing_environment_sections(None) == []


@pytest.mark.subprocess
def test_quebec_run_refuses_an_alive_threshold_below_the_heartbeat(quebec_run):
    process = quebec_run(env={"QUEBEC_PROCESS_ALIVE_THRESHOLD": "30", "QUEBEC_PROCESS_HEARTBEAT_INTERVAL": "60"})
    assert process.wait(timeout=60) == 1
    output = process.output()
    assert (
        "(quebec.E001) Quebec's configuration is invalid: process_alive_threshold (30s, from environment "
        "variable QUEBEC_PROCESS_ALIVE_THRESHOLD) must be at least 130s: twice process_heartbeat_interval "
        "(60s, from environment variable QUEBEC_PROCESS_HEARTBEAT_INTERVAL) plus the longest pause between polls"
    ) in output
    assert "Traceback" not in output
    assert not Process.objects.exists()


@pytest.mark.subprocess
def test_quebec_run_logs_configuration_warnings_and_runs(quebec_run, tmp_path):
    config = tmp_path / "queue.yml"
    config.write_text("production:\n  worker_threads: 8\n")
    process = quebec_run(
        "--only",
        "worker",
        env={
            "QUEBEC_CONFIG": str(config),
            "QUEBEC_WORKER_POLLING_INTERVAL": "0.05",
            "QUEBEC_WORKER_THREAD": "8",
        },
    )
    process.wait_for_output("Worker ")
    output = process.output()
    assert (
        "WARNING quebec.config: environment variable QUEBEC_WORKER_THREAD names no Quebec setting and is ignored; "
        "did you mean QUEBEC_WORKER_THREADS?"
    ) in output
    assert (
        f"WARNING quebec.config: {config} has no section for environment 'development' (QUEBEC_ENV); its sections "
        "are 'production'; the default settings apply"
    ) in output
    assert process.stop() == 0
