import sys
import textwrap
import uuid

import pytest
from demo.jobs import EmailJob
from django.tasks import task_backends
from django.tasks.exceptions import TaskResultDoesNotExist
from django.urls import reverse

import quebec
from quebec.models import FailedExecution, Job
from quebec.registry import AmbiguousJobClass, UnknownJobClass
from tests.conftest import finished, wait_until
from tests.otherapp import jobs as otherapp_jobs
from tests.testapp import jobs as testapp_jobs
from tests.testapp.jobs import RecordJob
from tests.testapp.models import JobRun


@pytest.fixture
def make_package(tmp_path, monkeypatch):
    """Write a package of modules under a fresh, unique name; returns the package name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(modules):
        name = f"pkg_{uuid.uuid4().hex[:8]}"
        for module, source in {"__init__": "", **modules}.items():
            path = tmp_path / name / f"{module.replace('.', '/')}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / "__init__.py").touch()
            path.write_text(textwrap.dedent(source))
        return name

    return make


JOB = """
import quebec

class {name}(quebec.BaseClass):
    def perform(self):
        pass
"""


def test_installed_apps_jobs_modules_are_autodiscovered():
    assert quebec.default.resolve("tests.testapp.jobs.RecordJob") is testapp_jobs.RecordJob
    assert quebec.default.resolve("demo.jobs.EmailJob").__module__ == "demo.jobs"
    assert quebec.default.resolve("tests.otherapp.jobs.EmailJob") is otherapp_jobs.EmailJob
    assert quebec.default.discovery_problems == []


def test_rows_store_the_dotted_path_and_a_unique_bare_name_still_resolves():
    assert testapp_jobs.RecordJob.job_name() == "tests.testapp.jobs.RecordJob"
    assert quebec.default.resolve("RecordJob") is testapp_jobs.RecordJob  # rows from before dotted paths
    script_job = type("ScriptJob", (quebec.BaseClass,), {"perform": lambda self: None, "__module__": "__main__"})
    assert script_job.job_name() == "ScriptJob"  # "__main__" names no module another process shares


def test_a_bare_name_two_apps_share_is_ambiguous_naming_both():
    both = r"demo\.jobs\.EmailJob or tests\.otherapp\.jobs\.EmailJob"
    with pytest.raises(AmbiguousJobClass, match=rf"'EmailJob'.* {both}"):
        quebec.default.resolve("EmailJob")


def test_discover_jobs_registers_classes_defined_under_the_packages(make_package):
    package = make_package(
        {
            "mail": JOB.format(name="MailJob"),
            "deep.reports": JOB.format(name="ReportsJob") + "\nfrom tests.testapp.jobs import RecordJob\n",
            "base": "import quebec\nclass AbstractJob(quebec.BaseClass):\n    pass\n",
        }
    )
    qc = quebec.Quebec()
    found = qc.discover_jobs(package)
    assert sorted(job.__qualname__ for job in found) == ["MailJob", "ReportsJob"]
    # RecordJob is imported, not defined, there
    assert set(qc.jobs) == {f"{package}.mail.MailJob", f"{package}.deep.reports.ReportsJob"}
    assert qc.resolve(f"{package}.mail.MailJob")._quebec is qc  # registering binds the class to the instance


def test_discover_jobs_takes_several_packages_and_non_recursive(make_package):
    first = make_package({"a": JOB.format(name="FirstJob"), "inner.b": JOB.format(name="InnerJob")})
    second = make_package({"c": JOB.format(name="SecondJob")})
    qc = quebec.Quebec()
    qc.discover_jobs(first, second)
    assert set(qc.jobs) == {f"{first}.a.FirstJob", f"{first}.inner.b.InnerJob", f"{second}.c.SecondJob"}
    qc = quebec.Quebec()
    qc.discover_jobs(f"{first}.a", recursive=False)
    assert set(qc.jobs) == {f"{first}.a.FirstJob"}


def test_duplicate_qualnames_raise_naming_both_modules(make_package):
    package = make_package({"one": JOB.format(name="DupJob"), "two": JOB.format(name="DupJob")})
    with pytest.raises(ValueError, match=rf"two job classes named 'DupJob': {package}\.one and {package}\.two"):
        quebec.Quebec().discover_jobs(package)


def test_discover_jobs_in_separate_calls_registers_same_named_classes_under_their_paths(make_package):
    first = make_package({"mail": JOB.format(name="MailJob")})
    second = make_package({"mail": JOB.format(name="MailJob")})
    qc = quebec.Quebec()
    qc.discover_jobs(first)
    qc.discover_jobs(second)
    assert qc.resolve(f"{first}.mail.MailJob") is not qc.resolve(f"{second}.mail.MailJob")
    paths = " or ".join(sorted(f"{package}.mail.MailJob" for package in (first, second)))
    with pytest.raises(AmbiguousJobClass, match=paths.replace(".", r"\.")):
        qc.resolve("MailJob")


def test_register_job_takes_job_classes_and_replaces_a_class_defined_again():
    qc = quebec.Quebec()

    class SameName(quebec.BaseClass):
        def perform(self):
            pass

    qc.register_job(SameName)
    again = type("SameName", (quebec.BaseClass,), {"perform": lambda self: None, "__module__": __name__})
    again.__qualname__ = SameName.__qualname__  # as a module reloaded by an autoreloader makes it
    qc.register_job(again)
    assert qc.resolve(SameName.job_name()) is again
    with pytest.raises(TypeError, match="BaseClass subclass"):
        qc.register_job(object)


def test_import_errors_raise_or_warn(make_package):
    package = make_package({"good": JOB.format(name="GoodJob"), "broken": "import no_such_module_here\n"})
    with pytest.raises(ModuleNotFoundError):
        quebec.Quebec().discover_jobs(package)
    qc = quebec.Quebec()
    with pytest.warns(RuntimeWarning, match=rf"{package}\.broken"):
        qc.discover_jobs(package, on_error="warn")
    assert set(qc.jobs) == {f"{package}.good.GoodJob"}
    with pytest.raises(ModuleNotFoundError):
        qc.discover_jobs(f"{package}_missing", on_error="warn")  # the top level is always strict
    with pytest.raises(ValueError, match="on_error"):
        qc.discover_jobs(package, on_error="ignore")


def test_latest_registration_wins_the_binding():
    class BoundJob(quebec.BaseClass):
        def perform(self):
            pass

    first, second = quebec.Quebec(), quebec.Quebec()
    first.register_job(BoundJob)
    second.register_job(BoundJob)
    assert BoundJob._quebec is second


def test_unknown_class_name_is_a_clear_error():
    with pytest.raises(UnknownJobClass, match="unknown job class 'NoSuchJob'"):
        quebec.default.resolve("NoSuchJob")


def test_a_renamed_or_moved_class_strands_no_job_silently():
    with pytest.raises(UnknownJobClass, match=r"unknown job class 'tests\.testapp\.jobs\.RenamedAwayJob'"):
        quebec.default.resolve("tests.testapp.jobs.RenamedAwayJob")
    # Moved to another module: the error points at the class of that name it might have become.
    with pytest.raises(UnknownJobClass, match=r"registered classes of that name: tests\.testapp\.jobs\.RecordJob"):
        quebec.default.resolve("tests.testapp.old_jobs.RecordJob")


def test_resolving_a_path_never_imports_it():
    assert "tests.testapp.trap" not in sys.modules
    for name in ("tests.testapp.trap.TrapJob", "os.system", "tests.testapp.trap"):
        with pytest.raises(UnknownJobClass, match=rf"unknown job class '{name}'"):
            quebec.default.resolve(name)
    assert "tests.testapp.trap" not in sys.modules


# Nothing is imported because a row names it: a worker, the dashboard and get_result() alike.


def store_as(handle, class_name):
    """Make a queued job's row name ``class_name``, as anyone who can write to the table could."""
    Job.objects.filter(pk=handle.id).update(class_name=class_name)
    return handle


@pytest.mark.subprocess
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_registered_classes_only_and_names_what_it_cannot_run(quebec_run, tmp_path):
    marker = tmp_path / "trap-imported"
    trap = store_as(RecordJob.perform_later("trap"), "tests.testapp.trap.TrapJob")
    stranded = store_as(RecordJob.perform_later("stranded"), "tests.testapp.jobs.RenamedAwayJob")
    ambiguous = store_as(RecordJob.perform_later("ambiguous"), "EmailJob")
    legacy = store_as(RecordJob.perform_later("legacy"), "RecordJob")  # a row from before dotted paths
    demo_email = EmailJob.perform_later("ada@example.com", "Welcome")
    other_email = otherapp_jobs.EmailJob.perform_later("bob@example.com")
    assert (demo_email.class_name, other_email.class_name) == ("demo.jobs.EmailJob", "tests.otherapp.jobs.EmailJob")

    process = quebec_run("--only", "worker", env={"TRAP_MARKER": str(marker), "QUEBEC_WORKER_POLLING_INTERVAL": "0.05"})
    handles = (trap, stranded, ambiguous, legacy, demo_email, other_email)
    wait_until(lambda: all(finished(handle) for handle in handles), message="every job to end")
    assert process.stop() == 0

    assert not marker.exists(), marker.read_text()
    assert [handle.status for handle in handles] == ["failed", "failed", "failed", "finished", "finished", "finished"]
    failures = {failure.job_id: failure for failure in FailedExecution.objects.all()}
    assert failures[trap.id].exception_class == "quebec.registry.UnknownJobClass"
    assert "unknown job class 'tests.testapp.trap.TrapJob'" in failures[trap.id].message
    assert "unknown job class 'tests.testapp.jobs.RenamedAwayJob'" in failures[stranded.id].message
    assert failures[ambiguous.id].exception_class == "quebec.registry.AmbiguousJobClass"
    assert "demo.jobs.EmailJob or tests.otherapp.jobs.EmailJob" in failures[ambiguous.id].message
    assert set(JobRun.objects.values_list("label", flat=True)) == {"legacy", "otherapp.EmailJob"}


def test_the_job_page_shows_a_row_naming_an_unimported_module_without_importing_it(admin_client):
    assert "tests.testapp.trap" not in sys.modules
    handle = store_as(RecordJob.perform_later("trap"), "tests.testapp.trap.TrapJob")
    response = admin_client.get(reverse("admin:quebec_job_change", args=[handle.id]))
    assert response.status_code == 200 and "tests.testapp.trap.TrapJob" in response.content.decode()
    assert "tests.testapp.trap" not in sys.modules


def test_get_result_of_a_row_naming_an_unimported_module_does_not_import_it(db):
    assert "tests.testapp.trap" not in sys.modules
    handle = store_as(RecordJob.perform_later("trap"), "tests.testapp.trap.TrapJob")
    with pytest.raises(TaskResultDoesNotExist, match="unknown job class 'tests.testapp.trap.TrapJob'"):
        task_backends["default"].get_result(str(handle.id))
    assert "tests.testapp.trap" not in sys.modules
