"""``python -m quebec``: run Quebec for a package of jobs, with no Django project and no script.

    DATABASE_URL=sqlite:///demo.db python -m quebec jobs
    DATABASE_URL=... python -m quebec manage createsuperuser

The database comes from DATABASE_URL (or QUEBEC_DATABASE_URL); every other setting from
QUEBEC_* environment variables, as in queue.yml. ``manage`` runs a Django management command
against the same database (``createsuperuser`` makes a dashboard login).
"""

import argparse
import os
import sys

# As quebec.processes.runner.COMPONENTS, which cannot be imported before Django is configured.
COMPONENTS = ("worker", "dispatcher", "scheduler")


def parser():
    parser = argparse.ArgumentParser(
        prog="python -m quebec",
        description="Run Quebec's workers, dispatcher and scheduler for the jobs in PACKAGE(s). "
        "The database is DATABASE_URL or QUEBEC_DATABASE_URL; settings come from QUEBEC_* variables.",
    )
    parser.add_argument(
        "packages",
        nargs="+",
        metavar="PACKAGE",
        help="dotted package(s) whose job classes to run, e.g. 'jobs' or 'app.jobs'",
    )
    parser.add_argument(
        "--only",
        default=os.environ.get("QUEBEC_SPAWN", ",".join(COMPONENTS)),
        help=f"comma-separated components to run (default: {','.join(COMPONENTS)})",
    )
    parser.add_argument(
        "--control-plane",
        default=os.environ.get("QUEBEC_CONTROL_PLANE"),
        metavar="HOST:PORT",
        help="also serve the dashboard here (default: QUEBEC_CONTROL_PLANE)",
    )
    parser.add_argument(
        "--create-tables",
        action="store_true",
        default=os.environ.get("QUEBEC_CREATE_TABLES", "").lower() in ("1", "true", "yes", "on"),
        help="run Quebec's migrations first (default: QUEBEC_CREATE_TABLES; SQLite always gets them)",
    )
    return parser


def database_url():
    url = os.environ.get("QUEBEC_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("python -m quebec: set DATABASE_URL (or QUEBEC_DATABASE_URL), e.g. DATABASE_URL=sqlite:///demo.db")
    return url


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    # The current directory holds the user's packages, as for ``python script.py``.
    sys.path.insert(0, os.getcwd())
    import quebec
    from quebec import conf

    if argv[:1] == ["manage"]:
        from django.core.management import execute_from_command_line

        quebec.Quebec(database_url())
        execute_from_command_line(["python -m quebec manage", *argv[1:]])
        return 0
    arguments = parser().parse_args(argv)
    components = [part.strip() for part in arguments.only.split(",") if part.strip()]
    qc = quebec.Quebec(database_url())
    try:
        qc.discover_jobs(*arguments.packages)
        return qc.run(create_tables=arguments.create_tables, control_plane=arguments.control_plane, spawn=components)
    except (conf.ConfigError, ValueError, ImportError) as error:
        sys.exit(f"python -m quebec: {error}")


if __name__ == "__main__":
    sys.exit(main())
