import sys

from django.core.management.base import BaseCommand, CommandError

from quebec import conf, registry, routing
from quebec.processes.dashboard import parse_address
from quebec.processes.runner import COMPONENTS


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
        parser.add_argument(
            "--database",
            metavar="ALIAS",
            default=registry.default.using,
            help="run the jobs of this database alias: workers, dispatcher, scheduler and process rows all use it",
        )
        parser.add_argument(
            "--queues",
            metavar="QUEUE,...",
            help="comma-separated queues the worker reads, in order ('*', 'name', 'prefix*'): "
            "the one worker group's queues (default: QUEBEC_QUEUES, queue.yml, '*')",
        )

    def handle(self, *args, only, config, dashboard, database, queues, verbosity, **options):
        components = self._components(only)
        try:
            routing.check_alias(database, "quebec_run --database")
        except ValueError as error:
            raise CommandError(str(error)) from None
        if dashboard:
            try:
                parse_address(dashboard)
            except ValueError as error:
                raise CommandError(str(error)) from None
        try:
            quebec = registry.for_database(database)
            exit_code = quebec.run(
                control_plane=dashboard, spawn=components, config_file=config, verbosity=verbosity, queues=queues
            )
        except conf.ConfigError as error:
            raise CommandError(str(error)) from None
        if exit_code:
            sys.exit(exit_code)

    def _components(self, only):
        components = tuple(part.strip() for part in only.split(",") if part.strip())
        unknown = [part for part in components if part not in COMPONENTS]
        if unknown or not components:
            raise CommandError(f"--only takes a comma-separated list of {', '.join(COMPONENTS)}; got {only!r}")
        return components
