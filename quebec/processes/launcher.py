"""Starting Quebec's processes: what ``quebec_run`` and ``Quebec.run()`` do once Django is set up."""

import logging
import os

from quebec import conf, recurring, settings_checks, standalone
from quebec.logger import configure as configure_logging
from quebec.processes.dashboard import parse_address
from quebec.processes.runner import COMPONENTS, Runner
from quebec.processes.supervisor import Supervisor

logger = logging.getLogger("quebec.hooks")


def fork_mode():
    """QUEBEC_SUPERVISOR=1 forks a supervised pool; opt-in, so that a queue.yml with ``processes``
    does not change the process model on upgrade."""
    return os.environ.get("QUEBEC_SUPERVISOR", "").strip().lower() in ("1", "true", "yes", "on")


def launch(quebec, create_tables=False, control_plane=None, spawn=None, config_file=None, verbosity=1, queues=None):
    """Run workers, dispatcher and scheduler for ``quebec``'s jobs until SIGTERM/SIGINT; returns
    the exit code. See ``Quebec.run``."""
    components = tuple(spawn) if spawn else COMPONENTS
    unknown = [name for name in components if name not in COMPONENTS]
    if unknown:
        raise ValueError(f"spawn takes components among {', '.join(COMPONENTS)}; got {list(components)}")
    if control_plane:
        parse_address(control_plane)  # a bad address fails now, not in the server thread
    if create_tables:
        quebec.create_tables()
    settings = conf.load(config_file, command_line={"queues": queues} if queues else None)
    static_tasks = recurring.load_static_tasks(settings) if "scheduler" in components else {}
    conf.use(settings)
    configure_logging(verbosity, settings.log_format)
    settings_checks.log_warnings(settings)
    if control_plane and standalone.ensure_dashboard_user():
        logger.info("Dashboard user %s is ready", os.environ["QUEBEC_DASHBOARD_USER"])
    if fork_mode():
        return Supervisor(settings, quebec, only=components, static_tasks=static_tasks, dashboard=control_plane).run()
    return Runner(settings, quebec, only=components, dashboard=control_plane, static_tasks=static_tasks).run()
