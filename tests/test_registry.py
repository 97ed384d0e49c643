import textwrap
import uuid

import pytest

import quebec
from quebec.registry import UnknownJobClass
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
    assert quebec.default.resolve("RecordJob") is testapp_jobs.RecordJob
    assert quebec.default.resolve("EmailJob").__module__ == "demo.jobs"


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
    assert set(qc.jobs) == {"MailJob", "ReportsJob"}  # RecordJob is imported, not defined, there
    assert qc.resolve("MailJob")._quebec is qc  # registering binds the class to the instance


def test_discover_jobs_takes_several_packages_and_non_recursive(make_package):
    first = make_package({"a": JOB.format(name="FirstJob"), "inner.b": JOB.format(name="InnerJob")})
    second = make_package({"c": JOB.format(name="SecondJob")})
    qc = quebec.Quebec()
    qc.discover_jobs(first, second)
    assert set(qc.jobs) == {"FirstJob", "InnerJob", "SecondJob"}
    qc = quebec.Quebec()
    qc.discover_jobs(f"{first}.a", recursive=False)
    assert set(qc.jobs) == {"FirstJob"}


def test_duplicate_qualnames_raise_naming_both_modules(make_package):
    package = make_package({"one": JOB.format(name="DupJob"), "two": JOB.format(name="DupJob")})
    with pytest.raises(ValueError, match=rf"two job classes named 'DupJob': {package}\.one and {package}\.two"):
        quebec.Quebec().discover_jobs(package)


def test_register_job_refuses_a_different_class_with_the_same_name():
    qc = quebec.Quebec()

    class SameName(quebec.BaseClass):
        def perform(self):
            pass

    qc.register_job(SameName)
    other = type("SameName", (quebec.BaseClass,), {"perform": lambda self: None, "__module__": "elsewhere"})
    other.__qualname__ = SameName.__qualname__
    with pytest.raises(ValueError, match="elsewhere"):
        qc.register_job(other)
    with pytest.raises(TypeError, match="BaseClass subclass"):
        qc.register_job(object)


def test_import_errors_raise_or_warn(make_package):
    package = make_package({"good": JOB.format(name="GoodJob"), "broken": "import no_such_module_here\n"})
    with pytest.raises(ModuleNotFoundError):
        quebec.Quebec().discover_jobs(package)
    qc = quebec.Quebec()
    with pytest.warns(RuntimeWarning, match=rf"{package}\.broken"):
        qc.discover_jobs(package, on_error="warn")
    assert set(qc.jobs) == {"GoodJob"}
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
