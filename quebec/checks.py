"""System checks: configuration and database support, each with a hint naming what to change."""

from django.conf import settings
from django.core import checks
from django.db import connections

from quebec import conf, recurring, registry, settings_checks
from quebec.registry import default

SUPPORTED_VENDORS = ("sqlite", "postgresql", "mysql")


@checks.register()
def check_environment_variables(app_configs=None, **kwargs):
    return [
        checks.Warning(
            message,
            hint="Correct or unset it; the settings are the keys of QUEBEC, each also a QUEBEC_<KEY> variable.",
            id="quebec.W010",
        )
        for message in settings_checks.unknown_environment_variables()
    ]


@checks.register()
def check_environment_sections(app_configs=None, **kwargs):
    try:
        config_file = conf.find_config_file()
    except conf.ConfigError:
        config_file = None  # QUEBEC_CONFIG names no file: check_configuration reports it
    return [
        checks.Warning(
            message,
            hint="Set QUEBEC_ENV to one of its sections, or add a section for this environment.",
            id="quebec.W011",
        )
        for message in settings_checks.missing_environment_sections(config_file)
    ]


@checks.register()
def check_configuration(app_configs=None, **kwargs):
    try:
        recurring.load_static_tasks(conf.load())
    except conf.ConfigError as error:
        return [
            checks.Error(
                f"Quebec's configuration is invalid: {error}",
                hint="Fix what is named above in settings.QUEBEC, queue.yml, recurring.yml or the QUEBEC_* environment.",
                id="quebec.E001",
            )
        ]
    return []


@checks.register()
def check_pooled_listening(app_configs=None, **kwargs):
    try:
        config = conf.load()
    except conf.ConfigError:
        return []  # check_configuration reports it
    unknown = [
        checks.Error(
            f"QUEBEC['listen_databases'] names the database alias {alias!r}, which is not in settings.DATABASES.",
            hint="Name a direct alias of the same database that DATABASES has.",
            id="quebec.E007",
        )
        for alias in config.listen_databases.values()
        if alias not in settings.DATABASES
    ]
    return unknown + [
        checks.Warning(
            message,
            hint="See the README's Deploying section, Behind PgBouncer in transaction mode.",
            id="quebec.W014",
        )
        for message in settings_checks.pooled_listening(config)
    ]


@checks.register()
def check_database_aliases(app_configs=None, **kwargs):
    return [
        checks.Error(
            f"A Quebec instance uses the database alias {alias!r}, which is not in settings.DATABASES.",
            hint=f"Add {alias!r} to DATABASES, or pass an alias it has to quebec.Quebec(using=...).",
            id="quebec.E006",
        )
        for alias in registry.aliases()
        if alias not in settings.DATABASES
    ]


@checks.register(checks.Tags.database)
def check_database(app_configs=None, databases=None, **kwargs):
    """Every alias a Quebec instance uses (``manage.py check --database ALIAS``) must be one
    Quebec supports."""
    aliases = [alias for alias in registry.aliases() if alias in settings.DATABASES]
    return [problem for alias in aliases if alias in (databases or ()) for problem in _database_problems(alias)]


def _database_problems(alias):
    connection = connections[alias]
    if connection.vendor not in SUPPORTED_VENDORS:
        return [
            checks.Error(
                f"Quebec does not support the {connection.vendor!r} database backend (database {alias!r}).",
                hint="Use PostgreSQL, MySQL/MariaDB or SQLite for the databases Quebec uses.",
                id="quebec.E002",
            )
        ]
    if not connection.features.has_select_for_update_skip_locked and connection.vendor != "sqlite":
        return [
            checks.Warning(
                f"The database server of {alias!r} has no SELECT ... FOR UPDATE SKIP LOCKED; workers will wait "
                "on each other.",
                hint="Upgrade to PostgreSQL 9.5+, MySQL 8+ or MariaDB 10.6+, or set QUEBEC['use_skip_locked'] = False.",
                id="quebec.W001",
            )
        ]
    return []


@checks.register()
def check_job_discovery(app_configs=None, **kwargs):
    """Jobs and tasks modules autodiscovery could not import. A warning, not an error, since an
    error would stop migrate and runserver too; quebec_run refuses to start over a jobs module."""
    jobs = [
        checks.Warning(
            f"Quebec could not import {problem}",
            hint="Fix that module; until then quebec_run refuses to start, since its jobs could not run.",
            id="quebec.W012",
        )
        for problem in default.discovery_problems
    ]
    tasks = [
        checks.Warning(
            f"Quebec could not import {problem}; the django.tasks tasks there cannot run",
            hint="Fix that module if it defines tasks for Quebec's backend.",
            id="quebec.W013",
        )
        for problem in default.task_discovery_problems
    ]
    return jobs + tasks
