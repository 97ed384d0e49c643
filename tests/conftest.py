import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connections
from django.test.utils import setup_databases, teardown_databases

import quebec
from quebec import conf
from quebec.processes.worker import Worker

ROOT = Path(__file__).resolve().parent.parent


def _drop_despite_the_pooler(creation, test_database_name, verbosity):
    """Drop a test database the pooler still holds idle server sessions on (PostgreSQL 13+)."""
    with creation._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE {creation.connection.ops.quote_name(test_database_name)} WITH (FORCE)")


if os.environ.get("QUEBEC_TEST_TRANSACTION_POOLER"):
    # A pooler keeps its server sessions on a database after our connections closed, and a plain
    # DROP DATABASE refuses to drop a database in use.
    from django.db.backends.postgresql.creation import DatabaseCreation

    DatabaseCreation._destroy_test_db = _drop_despite_the_pooler


def database_url(alias="default"):
    """A DATABASE_URL for the test database this session created, for child processes."""
    settings = connections[alias].settings_dict
    vendor = connections[alias].vendor
    if vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    scheme = {"postgresql": "postgres", "mysql": "mysql"}[vendor]
    user = quote(settings["USER"] or "")
    password = f":{quote(settings['PASSWORD'])}" if settings["PASSWORD"] else ""
    port = f":{settings['PORT']}" if settings["PORT"] else ""
    return f"{scheme}://{user}{password}@{settings['HOST'] or 'localhost'}{port}/{settings['NAME']}"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test databases pytest-django creates, and the second one whichever tests run: a child
    process (quebec_run, manage.py check) reaches every alias, since Django's model checks ask
    each database what it supports."""
    if Path(connections["second"].settings_dict["NAME"]).name.startswith("test_"):
        yield  # a test of several databases asked for it: pytest-django made it
        return
    with django_db_blocker.unblock():
        created = setup_databases(verbosity=0, interactive=False, aliases={"second"})
    yield
    with django_db_blocker.unblock():
        teardown_databases(created, verbosity=0)


class QuebecProcess:
    """A real ``manage.py quebec_run`` process against the test database."""

    def __init__(self, *args, env=None, log_path=None):
        child_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url(),
            "QUEBEC_TEST_SECOND_DATABASE_URL": database_url("second"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "testproject")]),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.log_path = log_path
        self._log = open(log_path, "w+b")  # noqa: SIM115 (closed in wait())
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "django", "quebec_run", *args],
            cwd=ROOT,
            env=child_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill() also reaches forked children
        )

    def output(self):
        return Path(self.log_path).read_text()

    def wait_for_output(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in quebec_run output:\n{self.output()}")
            time.sleep(0.05)

    def send(self, signum):
        self.popen.send_signal(signum)

    def stop(self, signum=signal.SIGTERM, timeout=30):
        """Send ``signum`` and return the exit code."""
        if self.popen.poll() is None:
            self.send(signum)
        return self.wait(timeout)

    def wait(self, timeout=30):
        try:
            return self.popen.wait(timeout)
        finally:
            self._log.close()

    def kill(self):
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()
        self._log.close()


@pytest.fixture
def quebec_run(tmp_path, transactional_db):
    """Start ``quebec_run`` processes; each is killed at the end of the test if still running."""
    started = []

    def start(*args, env=None):
        process = QuebecProcess(*args, env=env, log_path=tmp_path / f"quebec_run_{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def wait_until(condition, timeout=30, interval=0.05, message="condition"):
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
    return result


@pytest.fixture
def settings_config(settings):
    """Set ``QUEBEC`` settings for a test and return the resulting config."""

    def apply(**values):
        settings.QUEBEC = values
        return conf.get()

    return apply


@pytest.fixture(autouse=True)
def _fresh_config(monkeypatch, tmp_path):
    """Each test starts from the defaults: no queue.yml, no QUEBEC_* variables, no installed config."""
    for name in list(os.environ):
        if name.startswith("QUEBEC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    conf.use(None)
    conf._cached.cache_clear()
    yield
    conf.use(None)
    conf._cached.cache_clear()


@pytest.fixture
def start(settings, transactional_db):
    """Start workers/dispatchers in threads with fast polling; stop them at the end of the test."""
    running = []

    def start_component(component_class=Worker, threads=3, queues=("*",), **quebec_settings):
        settings.QUEBEC = {"worker_polling_interval": 0.02, "dispatcher_polling_interval": 0.05, **quebec_settings}
        config = conf.get()
        if component_class is Worker:
            options = conf.WorkerConfig(queues=queues, threads=threads, polling_interval=0.02)
        else:
            options = conf.DispatcherConfig(polling_interval=0.05)
        component = component_class(options, settings=config, quebec=quebec.default)
        component.start()
        running.append(component)
        wait_until(lambda: component.process is not None, message="registration")
        return component

    yield start_component
    for component in running:
        component.stop()
    for component in running:
        component.join(10)


def finished(*handles):
    """True once every job has come to rest (finished, failed or discarded)."""
    return all(handle.status in ("finished", "failed", "discarded") for handle in handles)
