from datetime import timedelta

import pytest

from quebec import conf, recurring
from quebec.processes import scheduler


def write_yaml(path, text):
    path.write_text(text)
    return path


def test_defaults_follow_the_original_library():
    config = conf.load()
    assert config.worker_threads == 3
    assert config.worker_polling_interval == 0.1
    assert config.dispatcher_batch_size == 500
    assert config.shutdown_timeout == 5
    assert config.preserve_finished_jobs is True
    assert config.clear_finished_jobs_after == 86400
    assert config.workers == (conf.WorkerConfig(queues=("*",), threads=3, polling_interval=0.1),)
    assert config.dispatchers == (conf.DispatcherConfig(polling_interval=1.0, batch_size=500),)


def test_precedence_defaults_settings_file_environment(settings, tmp_path, monkeypatch):
    settings.QUEBEC = {"worker_threads": 4, "shutdown_timeout": 7, "dispatcher_batch_size": 50}
    write_yaml(tmp_path / "queue.yml", "shutdown_timeout: 9\ndispatcher_batch_size: 60\n")
    monkeypatch.setenv("QUEBEC_DISPATCHER_BATCH_SIZE", "70")
    config = conf.load()
    assert config.worker_threads == 4  # settings over defaults
    assert config.shutdown_timeout == 9  # queue.yml over settings
    assert config.dispatcher_batch_size == 70  # environment over queue.yml
    assert config.config_file == "queue.yml"


def test_file_keyed_by_environment(tmp_path, monkeypatch):
    write_yaml(
        tmp_path / "queue.yml",
        """
development:
  workers:
    - queues: [critical, "mail*"]
      threads: 2
production:
  workers:
    - queues: "*"
      threads: 10
      processes: 4
  dispatchers:
    - polling_interval: 2s
      batch_size: 100
""",
    )
    assert conf.load().workers == (conf.WorkerConfig(queues=("critical", "mail*"), threads=2),)
    monkeypatch.setenv("QUEBEC_ENV", "production")
    config = conf.load()
    assert config.workers == (conf.WorkerConfig(queues=("*",), threads=10, processes=4),)
    assert config.dispatchers == (conf.DispatcherConfig(polling_interval=2.0, batch_size=100),)


def test_config_directory_and_explicit_path(tmp_path, monkeypatch):
    (tmp_path / "config").mkdir()
    write_yaml(tmp_path / "config" / "queue.yml", "worker_threads: 6\n")
    assert conf.load().worker_threads == 6
    other = write_yaml(tmp_path / "other.yml", "worker_threads: 8\n")
    assert conf.load(str(other)).worker_threads == 8
    monkeypatch.setenv("QUEBEC_CONFIG", str(other))
    assert conf.load().worker_threads == 8


def test_environment_threads_override_every_worker_entry(tmp_path, monkeypatch):
    write_yaml(tmp_path / "queue.yml", "workers:\n  - queues: a\n    threads: 2\n  - queues: b\n")
    monkeypatch.setenv("QUEBEC_WORKER_THREADS", "9")
    assert [worker.threads for worker in conf.load().workers] == [9, 9]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (5, 5.0),
        (0.5, 0.5),
        ("5s", 5.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("250ms", 0.25),
        ("3", 3.0),
        (timedelta(minutes=1), 60.0),
    ],
)
def test_durations(value, seconds):
    assert conf.parse_duration(value) == seconds


def test_seed_name_for_queue_limits_is_accepted(settings):
    settings.QUEBEC = {"experimental_queue_concurrency": {"reports": 2}}
    assert conf.load().queue_concurrency == {"reports": 2}


def test_force_override_queue_is_sanitised_and_pins_workers(monkeypatch):
    monkeypatch.setenv("QUEBEC_FORCE_OVERRIDE_QUEUE", "feature/branch x")
    config = conf.load()
    assert config.force_override_queue == "feature-branch-x"
    assert [worker.queues for worker in config.workers] == [("feature-branch-x",)]


def test_unknown_key_in_settings_names_it_and_suggests(settings):
    settings.QUEBEC = {"worker_thread": 3}
    with pytest.raises(
        conf.ConfigError, match=r"settings.QUEBEC: unknown key 'worker_thread'; did you mean 'worker_threads'"
    ):
        conf.load()


def test_bad_value_in_file_names_file_environment_and_key(tmp_path):
    write_yaml(tmp_path / "queue.yml", "development:\n  workers:\n    - threads: many\n")
    with pytest.raises(conf.ConfigError) as error:
        conf.load()
    message = str(error.value)
    assert "queue.yml (environment 'development')" in message
    assert "workers[0]" in message and "threads must be a positive integer" in message and "'many'" in message


def test_bad_environment_variable_is_named(monkeypatch):
    monkeypatch.setenv("QUEBEC_SHUTDOWN_TIMEOUT", "soon")
    with pytest.raises(conf.ConfigError, match="environment variable QUEBEC_SHUTDOWN_TIMEOUT: shutdown_timeout"):
        conf.load()


@pytest.mark.parametrize("value, expected", [("2ms", 0.002), ("0.01", 0.01), ("none", None), ("", None)])
def test_worker_switch_interval_takes_a_duration_or_none(monkeypatch, value, expected):
    monkeypatch.setenv("QUEBEC_WORKER_SWITCH_INTERVAL", value)
    assert conf.load().worker_switch_interval == expected


@pytest.mark.parametrize("value", ["0", "fast", "-1"])
def test_a_worker_switch_interval_of_no_time_is_refused(monkeypatch, value):
    monkeypatch.setenv("QUEBEC_WORKER_SWITCH_INTERVAL", value)
    with pytest.raises(conf.ConfigError, match="QUEBEC_WORKER_SWITCH_INTERVAL: worker_switch_interval"):
        conf.load()


def test_invalid_yaml_is_an_error(tmp_path):
    write_yaml(tmp_path / "queue.yml", "workers: [\n")
    with pytest.raises(conf.ConfigError, match="queue.yml: invalid YAML"):
        conf.load()


def test_a_file_without_this_environment_gives_the_defaults(tmp_path):
    # Not an error (manage.py check and quebec_run warn, see test_settings_checks), so that a
    # production-only queue.yml does not stop `migrate` on a development machine.
    write_yaml(tmp_path / "queue.yml", "production:\n  worker_threads: 2\nstaging:\n  worker_threads: 4\n")
    config = conf.load()
    assert config.worker_threads == 3 and config.config_file == "queue.yml"


def test_missing_explicit_file(tmp_path):
    with pytest.raises(conf.ConfigError, match="does not exist"):
        conf.load(str(tmp_path / "nope.yml"))


@pytest.mark.parametrize("queues", ["", [], ["a*b"], [3]])
def test_invalid_queue_selectors(settings, queues):
    settings.QUEBEC = {"workers": [{"queues": queues}]}
    with pytest.raises(conf.ConfigError, match=r"workers\[0\]: queues"):
        conf.load()


def test_config_is_rebuilt_when_settings_change(settings):
    settings.QUEBEC = {"worker_threads": 2}
    assert conf.get().worker_threads == 2
    settings.QUEBEC = {"worker_threads": 5}
    assert conf.get().worker_threads == 5


# Cross-checked and bounded values (a misconfiguration must not prune live workers or spin a CPU).


def test_an_alive_threshold_below_the_heartbeat_interval_is_refused(settings):
    settings.QUEBEC = {"process_alive_threshold": 30}
    with pytest.raises(conf.ConfigError) as error:
        conf.load()
    assert str(error.value).startswith(
        "process_alive_threshold (30s, from settings.QUEBEC) must be at least 130s: twice "
        "process_heartbeat_interval (60s, default) plus the longest pause between polls "
        "(the scheduler's, 5s), so that one late or failed heartbeat"
    )


def test_the_alive_threshold_leaves_room_for_one_missed_heartbeat(settings, monkeypatch):
    settings.QUEBEC = {"process_alive_threshold": 120}  # twice the heartbeat, but a beat comes between polls
    with pytest.raises(conf.ConfigError, match="must be at least 130s"):
        conf.load()
    settings.QUEBEC = {"process_alive_threshold": 130}
    assert conf.load().process_alive_threshold == 130
    monkeypatch.setenv("QUEBEC_PROCESS_HEARTBEAT_INTERVAL", "61")
    with pytest.raises(conf.ConfigError, match=r"heartbeat_interval \(61s, from environment variable QUEBEC_PROC"):
        conf.load()


def test_the_scheduler_sleep_counts_as_a_pause_between_heartbeats(settings):
    # With these, an idle scheduler (which wakes every 5 s) was pruned and quebec_run shut down.
    settings.QUEBEC = {
        "process_heartbeat_interval": 0.5,
        "worker_polling_interval": 0.05,
        "dispatcher_polling_interval": 0.1,
        "process_alive_threshold": 2,
    }
    with pytest.raises(conf.ConfigError, match=r"must be at least 11s: .* \(the scheduler's, 5s\)"):
        conf.load()
    assert conf.SCHEDULER_LONGEST_SLEEP == scheduler.MAX_SLEEP


def test_a_slow_polling_worker_entry_raises_the_threshold_it_needs(tmp_path, monkeypatch):
    write_yaml(tmp_path / "queue.yml", "workers:\n  - threads: 2\n  - polling_interval: 100s\n")
    with pytest.raises(conf.ConfigError) as error:
        conf.load()
    assert "process_alive_threshold (300s, default) must be at least 320s" in str(error.value)
    assert "(workers[1].polling_interval, 100s, from queue.yml)" in str(error.value)
    # The environment's polling interval replaces every entry's, and the check follows it.
    monkeypatch.setenv("QUEBEC_WORKER_POLLING_INTERVAL", "0.5")
    assert [worker.polling_interval for worker in conf.load().workers] == [0.5, 0.5]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"QUEBEC": {"worker_polling_interval": 0}}, "settings.QUEBEC: worker_polling_interval must be at least 0.01"),
        (
            {"env": ("QUEBEC_DISPATCHER_POLLING_INTERVAL", "0")},
            "environment variable QUEBEC_DISPATCHER_POLLING_INTERVAL: dispatcher_polling_interval must be at least 0.01",
        ),
        (
            {"yml": "workers:\n  - polling_interval: 0\n"},
            "queue.yml: workers[0]: polling_interval must be at least 0.01",
        ),
        (
            {"yml": "dispatchers:\n  - polling_interval: 1ms\n"},
            "queue.yml: dispatchers[0]: polling_interval must be at least 0.01 seconds (0 would poll without pause), "
            "got '1ms'",
        ),
    ],
)
def test_polling_intervals_must_leave_the_cpu_idle(settings, tmp_path, monkeypatch, source, expected):
    settings.QUEBEC = source.get("QUEBEC", {})
    if "env" in source:
        monkeypatch.setenv(*source["env"])
    if "yml" in source:
        write_yaml(tmp_path / "queue.yml", source["yml"])
    with pytest.raises(conf.ConfigError) as error:
        conf.load()
    assert expected in str(error.value)


@pytest.mark.parametrize(
    ("quebec", "expected"),
    [
        ({"shutdown_timeout": float("nan")}, "shutdown_timeout must be a finite number of seconds, got nan"),
        ({"shutdown_timeout": float("inf")}, "shutdown_timeout must be a finite number of seconds, got inf"),
        ({"clear_finished_jobs_after": -1}, "clear_finished_jobs_after must not be negative, got -1"),
        ({"process_heartbeat_interval": 0}, "process_heartbeat_interval must be more than 0 seconds, got 0"),
        ({"worker_memory_check_interval": "0s"}, "worker_memory_check_interval must be more than 0 seconds"),
        (
            {"dispatcher_concurrency_maintenance_interval": 1e300},
            "dispatcher_concurrency_maintenance_interval must be at most",
        ),
    ],
)
def test_durations_are_finite_and_in_range(settings, quebec, expected):
    settings.QUEBEC = quebec
    with pytest.raises(conf.ConfigError, match="settings.QUEBEC: ") as error:
        conf.load()
    assert expected in str(error.value)


def test_infinite_and_missing_numbers_from_yaml_are_refused(tmp_path):
    write_yaml(tmp_path / "queue.yml", "shutdown_timeout: .inf\n")
    with pytest.raises(conf.ConfigError, match="queue.yml: shutdown_timeout must be a finite number of seconds"):
        conf.load()
    write_yaml(tmp_path / "queue.yml", "dispatchers:\n  - polling_interval: .nan\n")
    with pytest.raises(conf.ConfigError, match=r"dispatchers\[0\]: polling_interval must be a finite number"):
        conf.load()


def test_zero_still_means_no_wait_where_it_has_a_meaning(settings):
    settings.QUEBEC = {"shutdown_timeout": 0, "clear_finished_jobs_after": 0}
    config = conf.load()
    assert config.shutdown_timeout == 0 and config.clear_finished_jobs_after == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("worker:\n  - threads: 2\n", "queue.yml: unknown key 'worker'; did you mean 'workers'?"),
        (
            "queue_concurency:\n  reports: 2\n",
            "queue.yml: unknown key 'queue_concurency'; did you mean 'queue_concurrency'?",
        ),
    ],
)
def test_a_misspelt_flat_file_is_not_taken_for_another_environment(tmp_path, text, expected):
    write_yaml(tmp_path / "queue.yml", text)
    with pytest.raises(conf.ConfigError) as error:
        conf.load()
    assert str(error.value) == expected


def test_a_misspelt_recurring_option_names_the_task_the_option_and_a_correction(settings, tmp_path):
    # One task whose schedule key is misspelt: the file is still read as tasks, not environments.
    write_yaml(tmp_path / "recurring.yml", "cleanup:\n  class: tests.testapp.jobs.RecordJob\n  schedul: '@daily'\n")
    with pytest.raises(conf.ConfigError) as error:
        recurring.load_static_tasks(conf.load())
    assert str(error.value) == (
        "recurring.yml: recurring task 'cleanup': unknown option 'schedul'; did you mean 'schedule'?"
    )
    (tmp_path / "recurring.yml").unlink()
    settings.QUEBEC = {"recurring": {"nightly": {"clas": "tests.testapp.jobs.RecordJob", "schedule": "@daily"}}}
    with pytest.raises(
        conf.ConfigError,
        match=r"settings.QUEBEC\['recurring'\]: recurring task 'nightly': "
        r"unknown option 'clas'; did you mean 'class'\?",
    ):
        recurring.load_static_tasks(conf.load())


def test_a_recurring_section_that_is_not_a_mapping_is_named(tmp_path, monkeypatch):
    write_yaml(tmp_path / "recurring.yml", "production:\n  cleanup: {class: x, schedule: '@daily'}\ndevelopment:\n")
    assert recurring.load_static_tasks(conf.load()) == {}
    monkeypatch.setenv("QUEBEC_ENV", "production")
    with pytest.raises(conf.ConfigError, match="recurring task 'cleanup': class 'x' cannot be imported"):
        recurring.load_static_tasks(conf.load())


def test_quebec_queues_sets_the_queues_of_the_one_worker_group(tmp_path, monkeypatch):
    write_yaml(tmp_path / "queue.yml", "workers:\n  - queues: [default]\n    threads: 5\n")
    monkeypatch.setenv("QUEBEC_QUEUES", "critical, mail*")
    config = conf.load()
    assert config.workers == (conf.WorkerConfig(queues=("critical", "mail*"), threads=5),)
    assert conf.load(command_line={"queues": "reports"}).workers[0].queues == ("reports",)  # quebec_run --queues


def test_queues_in_settings_apply_to_worker_entries_that_name_none(settings, tmp_path):
    settings.QUEBEC = {"queues": ["mail", "default"]}
    assert conf.load().workers[0].queues == ("mail", "default")
    write_yaml(tmp_path / "queue.yml", "workers:\n  - queues: [a]\n  - threads: 2\n")
    assert [worker.queues for worker in conf.load().workers] == [("a",), ("mail", "default")]


def test_queues_from_the_environment_cannot_cover_several_worker_groups(tmp_path, monkeypatch):
    write_yaml(tmp_path / "queue.yml", "workers:\n  - queues: [a]\n  - queues: [b]\n")
    monkeypatch.setenv("QUEBEC_QUEUES", "c")
    with pytest.raises(
        conf.ConfigError,
        match=r"queues \(c, from environment variable QUEBEC_QUEUES\) sets the "
        r"queues of one worker group, but workers \(from queue.yml\) has 2",
    ):
        conf.load()
    monkeypatch.delenv("QUEBEC_QUEUES")
    with pytest.raises(conf.ConfigError, match="quebec_run --queues: queues "):
        conf.load(command_line={"queues": "mail,"})
