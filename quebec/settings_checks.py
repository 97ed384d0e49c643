"""Configuration that is valid but probably not what was meant: reported, never refused.

``manage.py check`` lists these as warnings and ``quebec_run`` logs them at start. Invalid
values are errors instead, raised by ``quebec.conf.load``.
"""

import difflib
import logging
import os
from pathlib import Path

from quebec import conf, recurring

logger = logging.getLogger("quebec.config")

PREFIX = "QUEBEC_"
# QUEBEC_* variables read outside the settings: by Quebec itself, by ``python -m quebec`` and
# its dashboard, and by the scripts of a source checkout (QUEBEC_TEST_* by its test runner).
OTHER_VARIABLES = (
    "ENV",
    "CONFIG",
    "RECURRING_SCHEDULE",
    "SUPERVISOR",
    "DATABASE_URL",
    "SPAWN",
    "CONTROL_PLANE",
    "CREATE_TABLES",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DASHBOARD_USER",
    "DASHBOARD_PASSWORD",
    "PYTHON",
    "VENV",
    "DEMO_ADDRESS",
)
TEST_PREFIX = "QUEBEC_TEST_"


def unknown_environment_variables(environ=None):
    """One message per ``QUEBEC_*`` variable that names no setting, with a likely correction.

    A warning, not an error: the environment is shared with other tools and other versions of
    Quebec, so a variable Quebec does not read may be meant for something else. (An unknown key
    in the ``QUEBEC`` dict, which is Quebec's alone, is an error.)
    """
    environ = os.environ if environ is None else environ
    # Compared without the shared prefix, which would make every name look alike.
    known = [*(key.upper() for key in [*conf.SETTINGS, *conf.ALIASES]), *OTHER_VARIABLES]
    messages = []
    for name in sorted(environ):
        suffix = name.removeprefix(PREFIX)
        if suffix == name or name.startswith(TEST_PREFIX) or suffix in known:
            continue
        close = difflib.get_close_matches(suffix, known, n=1)
        hint = f"; did you mean {PREFIX}{close[0]}?" if close else ""
        messages.append(f"environment variable {name} names no Quebec setting and is ignored{hint}")
    return messages


def missing_environment_sections(config_file):
    """One message per queue.yml (``config_file``) or recurring.yml keyed by environment that
    lacks this one."""
    files = []
    if config_file:
        files.append((Path(config_file), conf.is_flat_config, "the default settings apply"))
    try:
        if schedule := recurring.find_schedule_file():
            files.append((schedule, recurring.is_flat_schedule, "it gives no recurring tasks"))
    except conf.ConfigError:
        pass  # QUEBEC_RECURRING_SCHEDULE names no file: an error, which conf.load's callers report
    messages = []
    for path, is_flat, consequence in files:
        try:
            message = conf.missing_environment_section(path, is_flat)
        except (conf.ConfigError, OSError):
            continue  # unreadable or invalid YAML: an error, reported where the file is loaded
        if message:
            messages.append(f"{message}; {consequence}")
    return messages


def pooled_listening(config):
    """One message per pooled PostgreSQL alias (``transaction_pooled``) whose workers will poll
    although ``use_listen_notify`` is on, for want of a direct alias in ``listen_databases``."""
    from django.db import connections

    from quebec.db.connection import transaction_pooled

    if not config.use_listen_notify:
        return []
    return [
        f"database {connection.alias!r} goes through a transaction pooler (DISABLE_SERVER_SIDE_CURSORS), "
        f"where LISTEN cannot work: its workers poll; name a direct alias for it in "
        f"QUEBEC['listen_databases'], or set use_listen_notify to false"
        for connection in connections.all()
        if transaction_pooled(connection) and connection.alias not in config.listen_databases
    ]


def configuration_warnings(config):
    return [
        *unknown_environment_variables(),
        *missing_environment_sections(config.config_file),
        *pooled_listening(config),
    ]


def log_warnings(config):
    """What ``quebec_run`` does at start: each warning to the ``quebec.config`` log."""
    for message in configuration_warnings(config):
        logger.warning("%s", message)
