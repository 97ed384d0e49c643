"""``Quebec`` instances: which job classes exist, and which database they are enqueued into."""

import importlib
import inspect
import logging
import pkgutil
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.utils.module_loading import module_has_submodule

if TYPE_CHECKING:
    from django.apps import AppConfig

    from quebec.base_class import BaseClass


logger = logging.getLogger("quebec.hooks")


class UnknownJobClass(LookupError):
    """A stored job names a class this process has not registered."""


class AmbiguousJobClass(UnknownJobClass):
    """A stored bare class name (from before rows stored dotted paths) fits several registered classes."""


class Quebec:
    """A registry of job classes bound to one database alias.

    Registering a class binds it to this instance, so ``MyJob.perform_later(...)`` enqueues into
    this instance's database; between explicit registrations (``register_job``,
    ``discover_jobs``) the latest wins. Autodiscovery registers every class of an app's ``jobs``
    module with the default instance, so that its workers know them all, but binds only the
    classes no instance has bound: ``@Quebec(using="jobs").register_job`` in a ``jobs`` module
    keeps the class on ``"jobs"``. Rows name a class by its dotted path
    (``shop.jobs.EmailJob``) and workers look it up among registered classes only: nothing is
    imported because a row names it, and two apps may each have an ``EmailJob``.
    """

    HOOKS = ("on_start", "on_stop", "on_worker_start", "on_worker_stop", "on_shutdown")

    def __init__(self, using: str = "default", *, database_url: str | None = None, **options: Any) -> None:
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
        self.jobs: dict[str, type[BaseClass]] = {}  # dotted path -> job class
        self.discovery_problems: list[str] = []  # jobs modules autodiscovery could not import, as messages
        self.task_discovery_problems: list[str] = []  # the same for tasks modules
        self.hooks: dict[str, list[Callable[..., object]]] = {name: [] for name in self.HOOKS}
        _instances.append(self)

    # Lifecycle hooks, as decorators: @qc.on_start, @qc.on_worker_start, ...

    def on_start[F: Callable[[], object]](self, function: F) -> F:
        """Call ``function()`` when ``quebec_run`` starts, before any component."""
        return self._add_hook("on_start", function)

    def on_stop[F: Callable[[], object]](self, function: F) -> F:
        """Call ``function()`` when ``quebec_run`` is about to exit."""
        return self._add_hook("on_stop", function)

    def on_worker_start[F: Callable[[Any], object]](self, function: F) -> F:
        """Call ``function(worker)`` in each worker as it starts (in its own process in fork mode)."""
        return self._add_hook("on_worker_start", function)

    def on_worker_stop[F: Callable[[Any], object]](self, function: F) -> F:
        """Call ``function(worker)`` in each worker once it has stopped."""
        return self._add_hook("on_worker_stop", function)

    def on_shutdown[F: Callable[[], object]](self, function: F) -> F:
        """Call ``function()`` when a graceful shutdown begins."""
        return self._add_hook("on_shutdown", function)

    def _add_hook[F: Callable[..., object]](self, name: str, function: F) -> F:
        if not callable(function):
            raise TypeError(f"{name} takes a callable, got {function!r}")
        self.hooks[name].append(function)
        return function

    def run_hooks(self, name: str, *args: object) -> None:
        """Call the hooks registered under ``name``; an exception is logged with the hook's name."""
        for function in self.hooks[name]:
            try:
                function(*args)
            except Exception:
                logger.exception("Lifecycle hook %s (%s) raised", name, getattr(function, "__qualname__", function))

    def __repr__(self) -> str:
        return f"<Quebec using={self.using!r} jobs={len(self.jobs)}>"

    def create_tables(self) -> None:
        """Create or update Quebec's tables by running the migrations (needs DDL rights)."""
        from quebec import standalone

        standalone.create_tables()

    def run(
        self,
        create_tables: bool = False,
        control_plane: str | None = None,
        spawn: Iterable[str] | None = None,
        config_file: str | None = None,
        verbosity: int = 1,
        queues: str | Iterable[str] | None = None,
    ) -> int:
        """Run workers, dispatcher and scheduler for this instance's jobs until SIGTERM/SIGINT;
        returns the exit code.

        ``control_plane="HOST:PORT"`` also serves the dashboard; ``spawn`` picks components
        (default: all); ``queues="a,b"`` (or a list) sets the worker's queues over every other
        source. With ``QUEBEC_SUPERVISOR=1`` a supervisor forks the processes that
        queue.yml asks for instead. Raises ``quebec.conf.ConfigError`` for a bad configuration or
        a jobs module that autodiscovery could not import.
        """
        # Processes need Django's models, which this module (loaded with ``quebec``) must not.
        from quebec.processes.launcher import launch

        self.refuse_discovery_problems()
        code: int = launch(self, create_tables, control_plane, spawn, config_file, verbosity, queues)
        return code

    def register_job[J: type[BaseClass]](self, job_class: J) -> J:
        """Register ``job_class`` under its dotted path and bind it to this instance; usable as a
        class decorator. The same path registered again (a module reloaded) replaces the class."""
        from quebec.base_class import BaseClass

        if not (inspect.isclass(job_class) and issubclass(job_class, BaseClass)):
            raise TypeError(f"register_job takes a quebec.BaseClass subclass, got {job_class!r}")
        self.jobs[job_class.job_name()] = job_class
        job_class._quebec = self
        return job_class

    register_job_class = register_job

    def _adopt(self, job_class: "type[BaseClass]") -> None:
        # Autodiscovery imports the module, whose own @qc.register_job has just bound the class
        # to its database: rebinding it here would send its jobs to the wrong one. ``vars``,
        # not ``getattr``: a subclass of a bound class is not bound by that.
        self.jobs[job_class.job_name()] = job_class
        if vars(job_class).get("_quebec") is None:
            job_class._quebec = self

    def resolve(self, class_name: str) -> "type[BaseClass]":
        """The registered class a stored ``Job.class_name`` names; raises ``UnknownJobClass``."""
        return lookup(class_name, [self.jobs, task_jobs])

    def discover_jobs(self, *packages: str, recursive: bool = True, on_error: str = "raise") -> "list[type[BaseClass]]":
        """Import each package (and its submodules) and register the job classes defined there.

        Only classes whose ``__module__`` lies under one of the packages are registered; classes
        that do not define ``perform`` themselves or through a subclass are taken as abstract bases.
        Two classes of the same name found in one call raise ``ValueError``.
        ``on_error="warn"`` turns a failing submodule import into a ``RuntimeWarning``; the
        top-level packages always import strictly.
        """
        if on_error not in ("raise", "warn"):
            raise ValueError(f"on_error must be 'raise' or 'warn', got {on_error!r}")
        found: dict[str, type[BaseClass]] = {}
        for job_class in _discover(packages, recursive, on_error):
            _check_unique(found, job_class)
            found[job_class.__qualname__] = job_class
        for job_class in found.values():
            self.register_job(job_class)
        return list(found.values())

    def autodiscover(self, tasks: bool = False) -> None:
        """Import every installed app's ``jobs`` module or package and register its job classes;
        with ``tasks``, import each ``tasks`` module too, which registers its django.tasks tasks.

        Classes of the same name in different apps are all registered, under their dotted paths.
        A module that fails to import is recorded instead of raised, so that ``migrate``,
        ``check`` and every other command still run, and ``check`` reports it. A failed ``jobs``
        module (in ``discovery_problems``) also stops ``quebec_run``; a failed ``tasks`` module
        (in ``task_discovery_problems``) does not, since a tasks module may belong to another
        queue (Celery's, say) and need what is not installed.
        """
        self.discovery_problems, self.task_discovery_problems = [], []
        for app_config in apps.get_app_configs():
            self._import_app_module(app_config, "jobs", self.discovery_problems)
            if tasks:
                self._import_app_module(app_config, "tasks", self.task_discovery_problems)

    def _import_app_module(self, app_config: "AppConfig", name: str, problems: list[str]) -> None:
        if not module_has_submodule(app_config.module, name):
            return
        try:
            for job_class in _discover([f"{app_config.name}.{name}"], True, "raise"):
                self._adopt(job_class)
        except Exception as error:
            problems.append(_describe_problem(f"{app_config.name}.{name}", error))

    def refuse_discovery_problems(self) -> None:
        """Raise ``ConfigError`` naming the jobs modules that failed at autodiscovery, if any."""
        from quebec.conf import ConfigError

        problems = [*default.discovery_problems, *(self.discovery_problems if self is not default else [])]
        if problems:
            raise ConfigError(
                f"autodiscovery could not import {'; '.join(problems)}; the jobs there could not run, so "
                "Quebec does not start until that is fixed (manage.py check reports it as quebec.W012)"
            )


def _describe_problem(module: str, error: BaseException) -> str:
    # The innermost frame of the user's code says where; importlib's own frames say nothing.
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if not frame.filename.startswith("<")]
    at = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    return f"{module}: {type(error).__name__}: {error}{at}"


def lookup(class_name: str, registries: "Iterable[Mapping[str, type[BaseClass]]]") -> "type[BaseClass]":
    """The class ``class_name`` names in ``registries`` (dicts of dotted path -> class).

    A dotted path must match exactly. A bare class name (stored before rows held dotted paths)
    resolves when exactly one registered class has it. Nothing is ever imported.
    """
    for registry in registries:
        if class_name in registry:
            return registry[class_name]
    candidates = {id(cls): cls for registry in registries for cls in registry.values()}.values()
    same_name = sorted(cls.job_name() for cls in candidates if cls.__qualname__ == class_name)
    if len(same_name) == 1:
        return next(cls for cls in candidates if cls.job_name() == same_name[0])
    if same_name:
        raise AmbiguousJobClass(
            f"ambiguous job class {class_name!r}: the row names a class by its bare name (as rows did before "
            f"they stored dotted paths), and it could be {' or '.join(same_name)}; rename one of them while "
            "such rows remain"
        )
    moved = sorted(cls.job_name() for cls in candidates if cls.__qualname__ == class_name.rpartition(".")[2])
    hint = f"; registered classes of that name: {', '.join(moved)} (was the class moved?)" if moved else ""
    raise UnknownJobClass(
        f"unknown job class {class_name!r}: no job class registered in this process has that name{hint}. "
        "Job classes are registered by autodiscovery (an installed app's jobs module), discover_jobs() "
        "or register_job(), and django.tasks functions when their module is imported (an installed "
        "app's tasks module); Quebec never imports a module because a row names it"
    )


def _check_unique(found: "Mapping[str, type[BaseClass]]", job_class: "type[BaseClass]") -> None:
    other = found.get(job_class.__qualname__)
    if other is not None and other is not job_class:
        raise ValueError(
            f"discover_jobs found two job classes named {job_class.__qualname__!r}: "
            f"{other.__module__} and {job_class.__module__}"
        )


def _discover(packages: Iterable[str], recursive: bool, on_error: str) -> "Iterator[type[BaseClass]]":
    for package in packages:
        for module in _import_tree(package, recursive, on_error):
            yield from _job_classes_in(module, packages)


def _import_tree(package: str, recursive: bool, on_error: str) -> Iterator[ModuleType]:
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


def _job_classes_in(module: ModuleType, packages: Iterable[str]) -> "Iterator[type[BaseClass]]":
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


_instances: list[Quebec] = []  # every Quebec made in this process, the default first
default = Quebec()

# Job classes of django.tasks functions, registered by the Quebec backend as each task is
# defined; they belong to no instance, since a task names its database through its backend.
task_jobs: "dict[str, type[BaseClass]]" = {}


def find_job_class(class_name: str) -> "type[BaseClass]":
    """The job class stored as ``class_name`` in any instance of this process (limits are read
    from the class wherever it was registered)."""
    return lookup(class_name, [*(quebec.jobs for quebec in _instances), task_jobs])


def for_database(alias: str) -> Quebec:
    """The instance that runs the jobs of database ``alias`` (``quebec_run --database``).

    The default instance for its own alias. For another alias, an instance on that alias that
    knows every class the default instance knows (autodiscovery registered them all there) and
    those registered on instances of that alias, and runs the lifecycle hooks of both.
    """
    if alias == default.using:
        return default
    sources = [default, *(quebec for quebec in _instances if quebec.using == alias)]
    runner = Quebec(using=alias)
    for source in sources:
        runner.jobs.update(source.jobs)
        for name, hooks in source.hooks.items():
            runner.hooks[name] += hooks
    _instances.remove(runner)  # a view of the others, not an instance of its own
    return runner


def aliases() -> list[str]:
    """The database aliases Quebec's instances use, the default instance's first."""
    return list(dict.fromkeys(quebec.using for quebec in _instances))


def instance_for(job_class: "type[BaseClass]") -> Quebec:
    """The instance ``job_class`` is bound to, or the default one."""
    return getattr(job_class, "_quebec", None) or default
