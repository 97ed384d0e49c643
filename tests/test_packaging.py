"""The package as a user gets it: sdist and wheel built from this tree, installed from the wheel
into a fresh virtualenv, running a job in a project ``django-admin startproject`` just made.

Slow and needs the package index, so it runs only with QUEBEC_TEST_PACKAGING=1 (scripts/test
sets it under CI=true, for one run).
"""

import os
import signal
import subprocess
import sys
import tarfile
import zipfile

import pytest

from tests.conftest import wait_until
from tests.packaging_helpers import build_dist, clean_environment, enqueue_greeting, job_finished, new_project, run

pytestmark = [
    pytest.mark.packaging,
    pytest.mark.skipif(
        os.environ.get("QUEBEC_TEST_PACKAGING") != "1",
        reason="builds and installs the package from the index: set QUEBEC_TEST_PACKAGING=1",
    ),
]


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    return build_dist(tmp_path_factory.mktemp("dist"))


def test_the_sdist_and_the_wheel_carry_the_license_and_pass_twine_check(dist):
    sdist, wheel = dist
    with tarfile.open(sdist) as archive:
        assert any(name.endswith("/LICENSE") for name in archive.getnames())
    with zipfile.ZipFile(wheel) as archive:
        assert any(name.endswith(".dist-info/licenses/LICENSE") for name in archive.namelist())
        metadata = next(archive.read(name).decode() for name in archive.namelist() if name.endswith("/METADATA"))
    import quebec

    assert f"Version: {quebec.__version__}\n" in metadata
    assert "License-Expression: MIT\n" in metadata
    # The test tools are not an extra anyone can install from the index.
    requirements = [line for line in metadata.splitlines() if line.startswith(("Requires-Dist:", "Provides-Extra:"))]
    assert requirements and not [line for line in requirements if "pytest" in line or "selenium" in line]
    run(sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel))


def test_a_fresh_project_runs_a_job_with_the_installed_wheel(dist, tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    python = venv / "bin" / "python"
    run(str(python), "-m", "pip", "install", "--quiet", str(dist[1]))
    # Nothing of the test tools, nor of standalone mode's extra, came with it.
    run(
        str(python),
        "-c",
        "import importlib.util as u; assert not any(u.find_spec(name) for name in "
        "('pytest', 'pytest_django', 'selenium', 'environ'))",
    )
    # Standalone mode says which extra it needs.
    result = subprocess.run(
        [str(python), "-c", "import quebec; quebec.Quebec('sqlite:///demo.db')"],
        cwd=tmp_path,
        env=clean_environment(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "pip install 'django-quebec[standalone]'" in result.stderr

    project = new_project(venv, tmp_path / "project")
    run(python, "manage.py", "migrate", "--verbosity", "0", cwd=project)
    greeting = tmp_path / "greeting.txt"
    job_id = enqueue_greeting(venv, project, greeting)

    worker = subprocess.Popen(
        [str(python), "manage.py", "quebec_run"],
        cwd=project,
        env=clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(greeting.exists, timeout=60, message="the job to run in quebec_run")
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0, output
    assert greeting.read_text() == "Hello, Quebec"
    assert job_finished(venv, project, job_id), output
