from datetime import timedelta

import pytest

from quebec import conf


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
    [(5, 5.0), (0.5, 0.5), ("5s", 5.0), ("2m", 120.0), ("1h", 3600.0), ("250ms", 0.25), ("3", 3.0),
     (timedelta(minutes=1), 60.0)],
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
    with pytest.raises(conf.ConfigError, match=r"settings.QUEBEC: unknown key 'worker_thread'; did you mean 'worker_threads'"):
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


def test_invalid_yaml_and_missing_environment(tmp_path, monkeypatch):
    path = write_yaml(tmp_path / "queue.yml", "workers: [\n")
    with pytest.raises(conf.ConfigError, match="queue.yml: invalid YAML"):
        conf.load()
    write_yaml(path, "production:\n  worker_threads: 2\n")
    with pytest.raises(conf.ConfigError, match="no section for environment 'development'"):
        conf.load()


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
