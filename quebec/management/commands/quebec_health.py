import json

from django.core.management.base import BaseCommand, CommandError

from quebec import routing
from quebec.dashboard import health
from quebec.registry import default


class Command(BaseCommand):
    help = (
        "Check that Quebec is working: exit 0 when healthy, 1 when not. Unhealthy means no live "
        "worker process, or (with --max-latency) a queue whose oldest ready job waited too long."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--max-latency",
            type=float,
            metavar="SECONDS",
            help="also fail when a queue that is not paused has a ready job older than this",
        )
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the full report as JSON")
        parser.add_argument("--database", metavar="ALIAS", default=default.using, help="check this database alias")

    def handle(self, *args, max_latency, as_json, database, **options):
        try:
            routing.check_alias(database, "quebec_health --database")
        except ValueError as error:
            raise CommandError(str(error)) from None
        with routing.use(database):
            report = health.check(max_latency)
        if as_json:
            self.stdout.write(json.dumps(report.payload, indent=2, sort_keys=True))
        elif report.healthy:
            alive = ", ".join(f"{count} {kind}" for kind, count in sorted(report.payload["processes"]["alive"].items()))
            self.stdout.write(f"healthy: {alive} alive")
        for problem in report.problems:
            self.stderr.write(f"unhealthy: {problem}")
        if not report.healthy:
            raise SystemExit(1)
