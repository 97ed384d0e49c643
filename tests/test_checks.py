import pytest
from django.core import checks

# Django's model checks ask every configured database what it supports, the second one too.
pytestmark = pytest.mark.django_db(databases=["default", "second"])


def quebec_messages():
    return [
        message for message in checks.run_checks(include_deployment_checks=False) if message.id.startswith("quebec.")
    ]


def test_a_valid_configuration_passes():
    assert quebec_messages() == []


def test_an_invalid_setting_is_reported_with_a_hint(settings):
    settings.QUEBEC = {"worker_threads": -1}
    [message] = quebec_messages()
    assert message.id == "quebec.E001"
    assert "worker_threads must be a positive integer, got -1" in message.msg
    assert "settings.QUEBEC" in message.hint


def test_an_invalid_queue_file_is_reported(tmp_path):
    (tmp_path / "queue.yml").write_text("workers:\n  - polling_interval: often\n")
    [message] = quebec_messages()
    assert message.id == "quebec.E001" and "queue.yml: workers[0]: polling_interval" in message.msg
