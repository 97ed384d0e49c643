"""quebec_run's own log output: text or JSON lines, each line a job writes naming the job."""

import json
import logging
import re
import sys

import pytest

from quebec.conf import ConfigError
from quebec.logger import JsonFormatter
from tests.conftest import wait_until
from tests.testapp.jobs import TalkativeJob

FAST = {"QUEBEC_WORKER_POLLING_INTERVAL": "0.05", "QUEBEC_DISPATCHER_POLLING_INTERVAL": "0.1"}


def json_lines(output):
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.subprocess
def test_json_lines_carry_the_job_id_class_queue_and_attempt(quebec_run):
    worker = quebec_run(env={**FAST, "QUEBEC_LOG_FORMAT": "json"})
    handle = TalkativeJob.set(queue="chatter").perform_later("hello", fail_first=True)
    wait_until(lambda: handle.status == "finished", message="the job to finish on its second attempt")
    wait_until(lambda: len([line for line in json_lines(worker.output()) if line["logger"] == "quebec.job"]) == 2)
    assert worker.stop() == 0
    lines = json_lines(worker.output())
    text_lines = [line for line in worker.output().splitlines() if re.match(r"\d{4}-\d\d-\d\d .* quebec\.\w+: ", line)]
    assert lines and not text_lines, "Quebec's lines are JSON objects (Django's check warnings on MariaDB are not its)"
    said = [line for line in lines if line["logger"] == "quebec.job"]
    common = {
        "level": "INFO",
        "logger": "quebec.job",
        "job_id": handle.id,
        "job_class": "TalkativeJob",
        "queue_name": "chatter",
    }
    assert said == [
        {
            **common,
            "time": said[0]["time"],
            "message": f"[TalkativeJob #{handle.id} chatter, attempt 1] saying hello",
            "attempt": 1,
        },
        {
            **common,
            "time": said[1]["time"],
            "message": f"[TalkativeJob #{handle.id} chatter, attempt 2] saying hello",
            "attempt": 2,
        },
    ]
    retried = next(line for line in lines if line["message"].startswith("Retrying"))
    assert retried["level"] == "WARNING" and retried["logger"] == "quebec.worker"


@pytest.mark.subprocess
def test_text_lines_name_the_job_and_its_attempt(quebec_run):
    worker = quebec_run(env=FAST)
    handle = TalkativeJob.perform_later("plainly")
    wait_until(lambda: handle.status == "finished")
    wait_until(lambda: "saying plainly" in worker.output())
    assert worker.stop() == 0
    line = next(line for line in worker.output().splitlines() if "saying plainly" in line)
    assert line.endswith(f"INFO    quebec.job: [TalkativeJob #{handle.id} default, attempt 1] saying plainly")


def test_a_traceback_goes_into_the_json_object():
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.getLogger("quebec.job").makeRecord(
            "quebec.job", logging.ERROR, __file__, 1, "failed %s", ("here",), exc_info=sys.exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed here" and line["level"] == "ERROR"
    assert line["exception"].startswith("Traceback") and "ValueError: broken" in line["exception"]


def test_an_unknown_log_format_is_refused_naming_the_key(settings_config):
    with pytest.raises(ConfigError, match=r"settings.QUEBEC: log_format must be 'text' .* or 'json' .*, got 'xml'"):
        settings_config(log_format="xml")
    assert settings_config(log_format="JSON").log_format == "json"
