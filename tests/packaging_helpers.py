"""Building this tree's package, and a fresh Django project that uses it, outside the test
environment."""

import os
import subprocess
import sys

from tests.conftest import ROOT

JOBS = """\
from pathlib import Path

import quebec


class GreetJob(quebec.BaseClass):
    def perform(self, path, name):
        Path(path).write_text(f"Hello, {name}")
"""


def clean_environment(**extra):
    """This environment without what points at the source tree, its settings or its virtualenv."""
    dropped = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    env = {name: value for name, value in os.environ.items() if name not in dropped and not name.startswith("QUEBEC_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def run(*command, cwd=None, env=None, timeout=300):
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env or clean_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def build_dist(out):
    """The sdist and the wheel, as ``python -m build`` makes them in ``out`` (the wheel from the
    sdist, with the declared build requirement in an isolated environment)."""
    run(sys.executable, "-m", "build", "--outdir", str(out), str(ROOT))
    return next(out.glob("*.tar.gz")), next(out.glob("*.whl"))


def new_project(venv, path, settings=""):
    """``django-admin startproject mysite`` at ``path`` with an app ``shop`` whose jobs.py has
    GreetJob, and quebec and shop installed; ``settings`` is appended to settings.py."""
    run(venv / "bin" / "django-admin", "startproject", "mysite", path)
    run(venv / "bin" / "python", "manage.py", "startapp", "shop", cwd=path)
    (path / "shop" / "jobs.py").write_text(JOBS)
    with open(path / "mysite" / "settings.py", "a") as file:
        file.write(f'\nINSTALLED_APPS += ["quebec", "shop"]\n{settings}')
    return path


def enqueue_greeting(venv, project, greeting, env=None):
    """Enqueue GreetJob from ``manage.py shell``; returns its job id."""
    code = f"from shop.jobs import GreetJob; print(GreetJob.perform_later({str(greeting)!r}, 'Quebec').id)"
    output = run(venv / "bin" / "python", "manage.py", "shell", "-c", code, cwd=project, env=env)
    return int(output.splitlines()[-1])  # after the shell's line about its automatic imports


def job_finished(venv, project, job_id, env=None):
    code = f"from quebec.models import Job; print(Job.objects.get(pk={job_id}).finished_at is not None)"
    return (
        run(venv / "bin" / "python", "manage.py", "shell", "-c", code, cwd=project, env=env).splitlines()[-1] == "True"
    )
