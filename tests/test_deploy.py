"""The files under deploy/ (Dockerfile, compose.yaml, systemd units) as the README gives them.

No container engine or systemd runs here, so the files are parsed, checked against each other,
and the commands they run are run: in a virtualenv made as the Dockerfile makes the image, in a
fresh project, against PostgreSQL. Only what names a place (the database host, the web port, the
install path) is changed to this machine's.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
import yaml

from quebec.settings_values import parse_duration
from tests.conftest import ROOT, wait_until
from tests.packaging_helpers import build_dist, clean_environment, enqueue_greeting, job_finished, new_project, run

DEPLOY = ROOT / "deploy"
# What the README tells a project to add to settings.py for these files.
SETTINGS = 'import environ\nDATABASES = {"default": environ.Env().db("DATABASE_URL")}\n'


def dockerfile():
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [tuple(line.split(None, 1)) for line in lines]


def systemd_unit(name):
    """{section: [(key, value), ...]}: systemd repeats keys (Environment=), so not configparser."""
    sections, current = {}, None
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif line and not line.startswith("#"):
            key, value = line.split("=", 1)
            current.append((key, value))
    return sections


def service(unit):
    return dict(unit["Service"]), dict(value.split("=", 1) for key, value in unit["Service"] if key == "Environment")


def compose():
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]


def test_the_deploy_files_agree_with_each_other_and_with_quebec():
    services = compose()
    assert set(services) == {"db", "migrate", "web", "worker"}
    assert services["db"]["image"].startswith("postgres:")
    # Migrations first: the web process and the workers start only once they have run.
    for name in ("web", "worker"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["migrate"]["command"].split()[:3] == ["python", "manage.py", "migrate"]
    worker = services["worker"]
    assert parse_duration(worker["stop_grace_period"]) > float(worker["environment"]["QUEBEC_SHUTDOWN_TIMEOUT"])
    instructions = dockerfile()
    assert ("STOPSIGNAL", "SIGTERM") in instructions
    assert json.loads(dict(instructions)["CMD"]) == ["python", "manage.py", "quebec_run"]

    threads, fork = systemd_unit("quebec-worker.service"), systemd_unit("quebec-supervisor.service")
    for unit in (threads, fork):
        settings, environment = service(unit)
        assert settings["ExecStart"].endswith("python manage.py quebec_run")
        assert settings["KillSignal"] == "SIGTERM"
        # systemd's SIGKILL comes after the jobs have had their shutdown_timeout.
        assert parse_duration(settings["TimeoutStopSec"]) > float(environment["QUEBEC_SHUTDOWN_TIMEOUT"])
    assert "QUEBEC_SUPERVISOR" not in service(threads)[1] and service(fork)[1]["QUEBEC_SUPERVISOR"] == "1"
    # A worker recycled for its memory exits 75, and is restarted.
    assert service(threads)[0]["RestartForceExitStatus"] == "75"


def postgres_database():
    """A fresh PostgreSQL database for these commands, named after the test server's URL."""
    psycopg = pytest.importorskip("psycopg")
    url = urlsplit(os.environ.get("QUEBEC_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/quebec"))
    name = f"{url.path.lstrip('/') or 'quebec'}_deploy"
    try:
        admin = psycopg.connect(url._replace(path="/postgres").geturl(), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no PostgreSQL server: {error}")
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return url._replace(path=f"/{name}").geturl()


def free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url):
    """Whether ``url`` answers 200; False while nothing listens yet (the web process may start
    after the worker has already run the job)."""
    try:
        return urllib.request.urlopen(url).status == 200
    except urllib.error.URLError:
        return False


def start(command, cwd, env):
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def stop(process, signum=signal.SIGTERM, timeout=30):
    """Send ``signum``, as `docker stop` or systemd would; the exit code and the output."""
    process.send_signal(signum)
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, output


@pytest.mark.packaging
@pytest.mark.skipif(
    os.environ.get("QUEBEC_TEST_PACKAGING") != "1",
    reason="builds and installs the package from the index: set QUEBEC_TEST_PACKAGING=1",
)
def test_the_commands_of_compose_and_systemd_serve_and_run_jobs(tmp_path):
    database_url = postgres_database()
    wheel = build_dist(tmp_path / "dist")[1]
    venv, bin_dir = tmp_path / "venv", tmp_path / "venv" / "bin"
    run(sys.executable, "-m", "venv", venv)
    # The image's RUN steps, with the package from this tree instead of the index.
    requirements = [
        f"{line.split('#')[0].strip()} @ {wheel.as_uri()}" if line.startswith("django-quebec") else line
        for line in (DEPLOY / "requirements.txt").read_text().splitlines()
    ]
    (tmp_path / "requirements.txt").write_text("\n".join(requirements))
    run_steps = [arguments for instruction, arguments in dockerfile() if instruction == "RUN" and "pip" in arguments]
    assert run_steps == ["pip install -r requirements.txt"]
    run(bin_dir / "python", "-m", *shlex.split(run_steps[0]), cwd=tmp_path)
    project = new_project(venv, tmp_path / "project", SETTINGS)

    services = compose()
    # The image's PATH leads to its Python; the database is this machine's, not the service "db".
    env = clean_environment(
        **{**services["worker"]["environment"], "DATABASE_URL": database_url},
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    )
    run(*shlex.split(services["migrate"]["command"]), cwd=project, env=env)
    port = free_port()
    web = start(shlex.split(services["web"]["command"].replace("0.0.0.0:8000", f"127.0.0.1:{port}")), project, env)
    worker = start(shlex.split(services["worker"]["command"]), project, env)
    try:
        greeting = tmp_path / "greeting.txt"
        job_id = enqueue_greeting(venv, project, greeting, env=env)
        wait_until(greeting.exists, timeout=60, message="the compose worker to run the job")
        wait_until(
            lambda: answers(f"http://127.0.0.1:{port}/admin/login/"),
            timeout=30,
            message="the compose web process to answer",
        )
    finally:
        code, output = stop(worker, timeout=parse_duration(services["worker"]["stop_grace_period"]))
        stop(web)
    assert code == 0, output
    assert job_finished(venv, project, job_id, env=env)

    for name in ("quebec-worker.service", "quebec-supervisor.service"):
        settings, environment = service(systemd_unit(name))
        command = settings["ExecStart"].replace("/srv/myapp/.venv/bin/", f"{bin_dir}/")
        unit_env = clean_environment(**{**environment, "DATABASE_URL": database_url})
        process = start(shlex.split(command), project, unit_env)
        greeting = tmp_path / f"{name}.txt"
        job_id = enqueue_greeting(venv, project, greeting, env=unit_env)
        wait_until(greeting.exists, timeout=60, message=f"the job to run under {name}'s command")
        code, output = stop(
            process, getattr(signal, settings["KillSignal"]), parse_duration(settings["TimeoutStopSec"])
        )
        assert code == 0, output
        assert job_finished(venv, project, job_id, env=unit_env), output
        assert ("Supervisor" in output) == (name == "quebec-supervisor.service"), output
