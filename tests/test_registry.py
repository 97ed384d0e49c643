import sys
import textwrap
import uuid

import pytest

import quebec
from quebec.registry import AmbiguousJobClass, UnknownJobClass
from tests.otherapp import jobs as otherapp_jobs
from tests.testapp import jobs as testapp_jobs


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
    with pytest.raises(AmbiguousJobClass, match=r"'EmailJob'.* demo\.jobs\.EmailJob or tests\.otherapp\.jobs\.EmailJob"):
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
    with pytest.raises(AmbiguousJobClass, match=rf"{first}\.mail\.MailJob or {second}\.mail\.MailJob"):
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
