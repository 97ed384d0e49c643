import os
import sys

from django.core.management.base import BaseCommand, CommandError

from quebec import conf, log, recurring
from quebec.processes.dashboard import parse_address
from quebec.processes.runner import COMPONENTS, Runner
from quebec.processes.supervisor import Supervisor
from quebec.registry import default


class Command(BaseCommand):
    help = "Run Quebec's workers, dispatcher and scheduler until SIGTERM or SIGINT."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only",
            default=",".join(COMPONENTS),
            help=f"comma-separated components to run (default: all of {','.join(COMPONENTS)})",
        )
        parser.add_argument("--config", help="path of the queue.yml to read (default: QUEBEC_CONFIG, ./queue.yml)")
        parser.add_argument("--dashboard", metavar="HOST:PORT", help="also serve the admin dashboard here")

    def handle(self, *args, only, config, dashboard, verbosity, **options):
        components = self._components(only)
        try:
            settings = conf.load(config)
            static_tasks = recurring.load_static_tasks(settings) if "scheduler" in components else {}
        except conf.ConfigError as error:
            raise CommandError(str(error)) from None
        if dashboard:
            try:
                parse_address(dashboard)
            except ValueError as error:
                raise CommandError(str(error)) from None
        conf.use(settings)
        log.configure(verbosity)
        if _fork_mode():
            supervisor = Supervisor(settings, default, only=components, static_tasks=static_tasks, dashboard=dashboard)
            exit_code = supervisor.run()
        else:
            runner = Runner(settings, default, only=components, dashboard=dashboard, static_tasks=static_tasks)
            exit_code = runner.run()
        if exit_code:
            sys.exit(exit_code)

    def _components(self, only):
        components = tuple(part.strip() for part in only.split(",") if part.strip())
        unknown = [part for part in components if part not in COMPONENTS]
        if unknown or not components:
            raise CommandError(f"--only takes a comma-separated list of {', '.join(COMPONENTS)}; got {only!r}")
        return components


def _fork_mode():
    """QUEBEC_SUPERVISOR=1 forks a supervised pool; opt-in, so that a queue.yml with ``processes``
    does not change the process model on upgrade."""
    return os.environ.get("QUEBEC_SUPERVISOR", "").strip().lower() in ("1", "true", "yes", "on")
