"""``Quebec`` instances: which job classes exist, and which database they are enqueued into."""

import importlib
import inspect
import logging
import pkgutil
import warnings

from django.apps import apps
from django.utils.module_loading import module_has_submodule


logger = logging.getLogger("quebec.hooks")


class UnknownJobClass(LookupError):
    """A stored job names a class this process has not registered."""


class Quebec:
    """A registry of job classes bound to one database alias.

    Registering a class binds it to this instance, so ``MyJob.perform_later(...)`` enqueues into
    this instance's database; the latest registration wins. Workers find classes by their
    ``__qualname__``, so two different classes may not share one.
    """

    HOOKS = ("on_start", "on_stop", "on_worker_start", "on_worker_stop", "on_shutdown")

    def __init__(self, using="default", *, database_url=None, **options):
        """``Quebec()`` or ``Quebec(using="alias")`` inside a Django project.

        Outside one, ``Quebec("sqlite:///demo.db")`` (or ``database_url=...``, with
        ``postgresql://`` and ``mysql://`` too) configures a minimal Django for Quebec alone;
        keyword ``options`` are then Quebec settings (``worker_threads=3``,
        ``quiet_then_exit=True``, ...), below ``QUEBEC_*`` environment variables.
        """
        from quebec import standalone

        if database_url is None and "://" in using:
            database_url = using
        if database_url is not None:
            standalone.configure(database_url, options)
            using = "default"
        elif options:
            raise TypeError(
                f"Quebec() got settings {sorted(options)} without a database URL; in a Django project "
                "Quebec's settings go in settings.QUEBEC or queue.yml"
            )
        self.using = using
        self.jobs = {}
        self.hooks = {name: [] for name in self.HOOKS}
        _instances.append(self)

    # Lifecycle hooks, as decorators: @qc.on_start, @qc.on_worker_start, ...

    def on_start(self, function):
        """Call ``function()`` when ``quebec_run`` starts, before any component."""
        return self._add_hook("on_start", function)

    def on_stop(self, function):
        """Call ``function()`` when ``quebec_run`` is about to exit."""
        return self._add_hook("on_stop", function)

    def on_worker_start(self, function):
        """Call ``function(worker)`` in each worker as it starts (in its own process in fork mode)."""
        return self._add_hook("on_worker_start", function)

    def on_worker_stop(self, function):
        """Call ``function(worker)`` in each worker once it has stopped."""
        return self._add_hook("on_worker_stop", function)

    def on_shutdown(self, function):
        """Call ``function()`` when a graceful shutdown begins."""
        return self._add_hook("on_shutdown", function)

    def _add_hook(self, name, function):
        if not callable(function):
            raise TypeError(f"{name} takes a callable, got {function!r}")
        self.hooks[name].append(function)
        return function

    def run_hooks(self, name, *args):
        """Call the hooks registered under ``name``; an exception is logged with the hook's name."""
        for function in self.hooks[name]:
            try:
                function(*args)
            except Exception:
                logger.exception("Lifecycle hook %s (%s) raised", name, getattr(function, "__qualname__", function))

    def __repr__(self):
        return f"<Quebec using={self.using!r} jobs={len(self.jobs)}>"

    def create_tables(self):
        """Create or update Quebec's tables by running the migrations (needs DDL rights)."""
        from quebec import standalone

        standalone.create_tables()

    def run(self, create_tables=False, control_plane=None, spawn=None, config_file=None, verbosity=1):
        """Run workers, dispatcher and scheduler for this instance's jobs until SIGTERM/SIGINT;
        returns the exit code.

        ``control_plane="HOST:PORT"`` also serves the dashboard; ``spawn`` picks components
        (default: all). With ``QUEBEC_SUPERVISOR=1`` a supervisor forks the processes that
        queue.yml asks for instead. Raises ``quebec.conf.ConfigError`` for a bad configuration.
        """
        # Processes need Django's models, which this module (loaded with ``quebec``) must not.
        from quebec.processes.launcher import launch

        return launch(self, create_tables, control_plane, spawn, config_file, verbosity)

    def register_job(self, job_class):
        """Register ``job_class`` and bind it to this instance; usable as a class decorator."""
        from quebec.base_class import BaseClass

        if not (inspect.isclass(job_class) and issubclass(job_class, BaseClass)):
            raise TypeError(f"register_job takes a quebec.BaseClass subclass, got {job_class!r}")
        name = job_class.job_name()
        existing = self.jobs.get(name)
        if existing is not None and existing is not job_class and not _same_definition(existing, job_class):
            raise ValueError(
                f"two job classes are named {name!r}: {existing.__module__}.{name} and "
                f"{job_class.__module__}.{name}; workers find jobs by class name, so rename one"
            )
        self.jobs[name] = job_class
        job_class._quebec = self
        return job_class

    register_job_class = register_job

    def resolve(self, class_name):
        """The registered class for a stored ``Job.class_name``."""
        try:
            return self.jobs[class_name]
        except KeyError:
            pass
        # A django.tasks task is stored under its module path and found by importing it.
        from quebec.backends import job_class_for_path

        job_class = job_class_for_path(class_name) if "." in class_name else None
        if job_class is not None:
            return self.register_job(job_class)
        raise UnknownJobClass(
            f"unknown job class {class_name!r}: no registered job has that name in this worker "
            f"(is it in an installed app's jobs module, or passed to discover_jobs()?)"
        )

    def discover_jobs(self, *packages, recursive=True, on_error="raise"):
        """Import each package (and its submodules) and register the job classes defined there.

        Only classes whose ``__module__`` lies under one of the packages are registered; classes
        that do not define ``perform`` themselves or through a subclass are taken as abstract bases.
        ``on_error="warn"`` turns a failing submodule import into a ``RuntimeWarning``; the
        top-level packages always import strictly.
        """
        if on_error not in ("raise", "warn"):
            raise ValueError(f"on_error must be 'raise' or 'warn', got {on_error!r}")
        found = {}
        for package in packages:
            for module in _import_tree(package, recursive, on_error):
                for job_class in _job_classes_in(module, packages):
                    _check_unique(found, job_class)
                    found[job_class.job_name()] = job_class
        for job_class in found.values():
            self.register_job(job_class)
        return list(found.values())

    def autodiscover(self):
        """Register the jobs of every installed app's ``jobs`` module or package."""
        for app_config in apps.get_app_configs():
            if module_has_submodule(app_config.module, "jobs"):
                self.discover_jobs(f"{app_config.name}.jobs")


def _same_definition(first, second):
    # The same class defined again (a module re-imported, e.g. by a reloader) replaces itself.
    return first.__module__ == second.__module__ and first.__qualname__ == second.__qualname__


def _check_unique(found, job_class):
    other = found.get(job_class.job_name())
    if other is not None and other is not job_class:
        raise ValueError(
            f"discover_jobs found two job classes named {job_class.job_name()!r}: "
            f"{other.__module__} and {job_class.__module__}"
        )


def _import_tree(package, recursive, on_error):
    root = importlib.import_module(package)
    yield root
    if not recursive or not hasattr(root, "__path__"):
        return
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}.", onerror=lambda name: None):
        try:
            yield importlib.import_module(info.name)
        except Exception as error:
            if on_error == "raise":
                raise
            warnings.warn(f"discover_jobs skipped {info.name}: {error!r}", RuntimeWarning, stacklevel=3)


def _job_classes_in(module, packages):
    from quebec.base_class import BaseClass

    for value in vars(module).values():
        if (
            inspect.isclass(value)
            and issubclass(value, BaseClass)
            and value is not BaseClass
            and value.perform is not BaseClass.perform
            and any(value.__module__ == p or value.__module__.startswith(f"{p}.") for p in packages)
        ):
            yield value


_instances = []  # every Quebec made in this process, the default first
default = Quebec()


def find_job_class(class_name):
    """The job class stored as ``class_name`` in any instance of this process (limits are read
    from the class wherever it was registered)."""
    for quebec in _instances:
        if class_name in quebec.jobs:
            return quebec.jobs[class_name]
    return default.resolve(class_name)


def instance_for(job_class):
    """The instance ``job_class`` is bound to, or the default one."""
    return getattr(job_class, "_quebec", None) or default
