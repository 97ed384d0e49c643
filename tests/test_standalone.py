"""Quebec without a Django project: a plain script, and ``python -m quebec`` for a jobs package."""

import http.cookiejar
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

import quebec
from quebec.standalone import database_settings, hosts_for
from tests.conftest import ROOT, database_url, wait_until

# The script from the original Quebec's README, as its users have it.
SEED_SCRIPT = """\
import logging
from pathlib import Path
from quebec.logger import setup_logging
setup_logging(level=logging.DEBUG)
import quebec
db_path = Path('demo.db')
qc = quebec.Quebec(f'sqlite://{db_path}?mode=rwc')

@qc.register_job
class FakeJob(quebec.BaseClass):
    def perform(self, *args, **kwargs):
        self.logger.info(f"Processing job {self.id}: args={args}, kwargs={kwargs}")

if __name__ == "__main__":
    # Enqueue a job (qc is inferred from @qc.register_job)
    FakeJob.perform_later(123, foo='bar')
    # Start Quebec (handles signal, spawns workers, runs main loop)
    qc.run(
        create_tables=not db_path.exists(),
        control_plane='127.0.0.1:5006',  # Optional: web dashboard
    )
"""

JOBS_PACKAGE = {
    "jobs/__init__.py": "from .email_job import EmailJob\n",
    "jobs/email_job.py": textwrap.dedent("""\
        from pathlib import Path

        import quebec


        class EmailJob(quebec.BaseClass):
            queue_as = "default"

            def perform(self, to, subject):
                self.logger.info(f"Sending email to {to}: {subject}")
                with Path("sent.txt").open("a") as sent:
                    sent.write(f"{to}: {subject}\\n")
        """),
    "enqueue.py": textwrap.dedent("""\
        import os
        import quebec

        qc = quebec.Quebec(os.environ["DATABASE_URL"])
        qc.discover_jobs("jobs")
        from jobs import EmailJob

        print("enqueued", EmailJob.perform_later("ada@example.com", subject="Welcome").id)
        """),
}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def plain_environment(**extra):
    """The environment of a user's shell: no Django settings module, no test configuration."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DJANGO_SETTINGS_MODULE" and not key.startswith("QUEBEC_")
    }
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", QUEBEC_WORKER_POLLING_INTERVAL="0.05", **extra)
    return env


class Script:
    def __init__(self, args, cwd, env):
        self.log = cwd / f"output-{time.monotonic_ns()}.log"
        with self.log.open("wb") as log:
            self.popen = subprocess.Popen(
                args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def output(self):
        return self.log.read_text()

    def wait_for(self, text, timeout=30):
        wait_until(
            lambda: text in self.output() or self.popen.poll() is not None,
            timeout=timeout,
            message=f"{text!r} in the output",
        )
        assert text in self.output(), self.output()

    def stop(self):
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(30)

    def kill(self):
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()


@pytest.fixture
def scripts():
    started = []

    def start(args, cwd, env):
        script = Script(args, cwd, env)
        started.append(script)
        return script

    yield start
    for script in started:
        script.kill()


@pytest.mark.subprocess
def test_the_original_quickstart_script_runs_and_processes_its_job(tmp_path, scripts):
    port = free_port()  # the script's own port could be taken on a shared machine
    (tmp_path / "quickstart.py").write_text(SEED_SCRIPT.replace("127.0.0.1:5006", f"127.0.0.1:{port}"))
    script = scripts([sys.executable, "quickstart.py"], tmp_path, plain_environment())
    script.wait_for("Processing job 1: args=(123,), kwargs={'foo': 'bar'}")
    login = urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/quebec/")
    assert login.url.endswith("/admin/login/?next=/admin/quebec/") and login.status == 200
    assert script.stop() == 0
    assert (tmp_path / "demo.db").exists()


@pytest.mark.subprocess
def test_python_m_quebec_runs_a_jobs_package_with_a_dashboard_login(tmp_path, scripts):
    for name, text in JOBS_PACKAGE.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    port = free_port()
    env = plain_environment(
        DATABASE_URL="sqlite:///demo.db?mode=rwc",
        QUEBEC_CONTROL_PLANE=f"127.0.0.1:{port}",
        QUEBEC_DASHBOARD_USER="ops",
        QUEBEC_DASHBOARD_PASSWORD="s3cret-pass",
    )
    enqueue = subprocess.run([sys.executable, "enqueue.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert enqueue.returncode == 0 and "enqueued 1" in enqueue.stdout, enqueue.stderr
    runner = scripts([sys.executable, "-m", "quebec", "jobs"], tmp_path, env)
    runner.wait_for("Sending email to ada@example.com: Welcome")
    wait_until(lambda: (tmp_path / "sent.txt").exists())
    assert (tmp_path / "sent.txt").read_text() == "ada@example.com: Welcome\n"
    runner.wait_for("Dashboard at")
    assert "EmailJob" in dashboard_page(port, "ops", "s3cret-pass", "/admin/quebec/job/")
    assert status_for_host(port, "evil.example") == 400  # ALLOWED_HOSTS is the bound host, not "*"
    assert status_for_host(port, f"localhost:{port}") == 200
    assert runner.stop() == 0


def status_for_host(port, host):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/admin/login/", headers={"Host": host})
    try:
        return urllib.request.urlopen(request, timeout=5).status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.subprocess
def test_the_dashboard_allows_the_hosts_named_by_quebec_allowed_hosts(tmp_path, scripts):
    for name, text in JOBS_PACKAGE.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    port = free_port()
    env = plain_environment(
        DATABASE_URL="sqlite:///demo.db",
        QUEBEC_CONTROL_PLANE=f"127.0.0.1:{port}",
        QUEBEC_ALLOWED_HOSTS="jobs.example, ops.example",
    )
    runner = scripts([sys.executable, "-m", "quebec", "--only", "dispatcher", "jobs"], tmp_path, env)
    runner.wait_for("Dashboard at")
    wait_until(lambda: status_for_host(port, "jobs.example") == 200, message="the dashboard to answer")
    assert status_for_host(port, "ops.example") == 200
    assert status_for_host(port, f"127.0.0.1:{port}") == 400
    assert runner.stop() == 0


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("x", "This password is too short. It must contain at least 8 characters."),
        ("password", "This password is too common."),
        ("8731409265", "This password is entirely numeric."),
    ],
)
def test_a_weak_dashboard_password_is_refused(tmp_path, password, message):
    for name, text in JOBS_PACKAGE.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    env = plain_environment(
        DATABASE_URL="sqlite:///demo.db",
        QUEBEC_CONTROL_PLANE=f"127.0.0.1:{free_port()}",
        QUEBEC_DASHBOARD_USER="ops",
        QUEBEC_DASHBOARD_PASSWORD=password,
    )
    result = subprocess.run(
        [sys.executable, "-m", "quebec", "jobs"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stderr
    assert f"QUEBEC_DASHBOARD_PASSWORD is refused: {message}" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_bound_host_names_the_allowed_hosts():
    loopback = ["localhost", "127.0.0.1", "[::1]"]
    assert hosts_for("127.0.0.1") == loopback
    assert hosts_for("::1") == loopback
    assert hosts_for("localhost") == loopback
    assert hosts_for("127.0.0.2") == [*loopback, "127.0.0.2"]
    assert hosts_for("192.0.2.7") == ["192.0.2.7"]
    assert hosts_for("2001:db8::7") == ["[2001:db8::7]"]
    assert hosts_for("jobs.example") == ["jobs.example"]
    everywhere = hosts_for("0.0.0.0")
    assert {*loopback, socket.gethostname()} <= set(everywhere) and "*" not in everywhere
    assert hosts_for("::") == everywhere


@pytest.mark.subprocess
def test_python_m_quebec_on_each_database(tmp_path, scripts, transactional_db):
    """The same package against the test database: SQLite, PostgreSQL or MariaDB."""
    for name, text in JOBS_PACKAGE.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    env = plain_environment(DATABASE_URL=database_url())
    enqueue = subprocess.run([sys.executable, "enqueue.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert enqueue.returncode == 0, enqueue.stderr
    runner = scripts([sys.executable, "-m", "quebec", "--only", "worker", "jobs"], tmp_path, env)
    runner.wait_for("Sending email to ada@example.com: Welcome")
    assert runner.stop() == 0
    from quebec.models import Job

    (job,) = Job.objects.all()
    assert job.class_name == "jobs.email_job.EmailJob" and job.finished_at is not None


def test_python_m_quebec_says_what_is_missing(tmp_path):
    env = plain_environment()
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "quebec", "jobs"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1 and "set DATABASE_URL" in result.stderr
    env["DATABASE_URL"] = "sqlite:///demo.db"
    result = subprocess.run(
        [sys.executable, "-m", "quebec", "no_such_jobs"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1 and "No module named 'no_such_jobs'" in result.stderr


def dashboard_page(port, username, password, path):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}"
    opener.open(f"{base}/admin/login/")
    token = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    form = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token, "next": path}
    ).encode()
    request = urllib.request.Request(f"{base}/admin/login/", data=form, headers={"Referer": f"{base}/admin/login/"})
    page = opener.open(request)
    assert page.url == f"{base}{path}", "the login did not succeed"
    return page.read().decode()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite://demo.db?mode=rwc", {"ENGINE": "django.db.backends.sqlite3", "NAME": "demo.db"}),
        ("sqlite:///demo.db", {"ENGINE": "django.db.backends.sqlite3", "NAME": "demo.db"}),
        # An absolute path, with and without a query: Python 3.12.1's urlunsplit made both relative.
        ("sqlite:////var/lib/app/q.db", {"ENGINE": "django.db.backends.sqlite3", "NAME": "/var/lib/app/q.db"}),
        (
            "sqlite:////var/lib/app/q.db?mode=rwc&timeout=5",
            {"ENGINE": "django.db.backends.sqlite3", "NAME": "/var/lib/app/q.db", "OPTIONS": {"timeout": 5}},
        ),
        (
            "postgresql://app:pw@db:5433/jobs?sslmode=require&mode=rwc",
            {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "jobs",
                "USER": "app",
                "PASSWORD": "pw",
                "HOST": "db",
                "PORT": 5433,
                "OPTIONS": {"sslmode": "require"},
            },
        ),
        ("mariadb://root@127.0.0.1:3306/jobs", {"ENGINE": "django.db.backends.mysql", "NAME": "jobs", "PORT": 3306}),
    ],
)
def test_database_urls_are_read_as_django_environ_does_with_the_originals_forms(url, expected):
    settings = database_settings(url)
    assert {key: settings.get(key) for key in expected} == expected
    assert "mode" not in settings.get("OPTIONS", {})


def test_a_database_url_is_refused_inside_a_configured_project():
    with pytest.raises(ImproperlyConfigured, match="already configured"):
        quebec.Quebec("sqlite:///other.db")
    with pytest.raises(TypeError, match="worker_threads"):
        quebec.Quebec(worker_threads=3)
    with pytest.raises(ImproperlyConfigured, match="unsupported database URL"):
        database_settings("redis://localhost/0")


def test_standalone_modules_do_not_need_settings_to_import():
    code = "import quebec, quebec.logger, quebec.standalone; print(quebec.Quebec)"
    env = plain_environment()
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=Path(ROOT))
    assert result.returncode == 0, result.stderr
