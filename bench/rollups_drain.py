"""What rollups cost a drain: no-op jobs drained with ``stats`` off and on, alternated in one sitting.

Each round drains N no-op jobs with a worker whose rollups are off (``QUEBEC_STATS=false``) and
with one whose rollups are on, in alternating order (off first in odd rounds, on first in even
ones), and prints both rates, the worker's CPU time per job, and their ratios (on / off); the
median of the rounds' ratios is the figure to quote. The target: a drain rate with rollups of
at least 0.95 of the rate without. On PostgreSQL the CPU time of the server processes serving
the bench database is counted too (from /proc, so the server must run on this machine): the
rollups' share of the database's work, which a busy shared machine's wall clock hides.

    python bench/rollups_drain.py --database-url postgres://postgres@127.0.0.1:5432/quebec_bench
    python bench/rollups_drain.py --database-url mysql://root@127.0.0.1:3306/quebec_bench --rounds 5

A server database must already exist; the script empties Quebec's tables before each drain.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_core import (  # noqa: E402
    add_database_argument,
    bench_bulk,
    bench_drain,
    check_drained,
    database_url_or_sqlite,
    empty_quebec_tables,
    setup_django,
)

SETTINGS = {"off": {"QUEBEC_STATS": "false"}, "on": {"QUEBEC_STATS": "true"}}


def drain(jobs, database_url, workdir, stats):
    from quebec.models import JobStat

    empty_quebec_tables()
    JobStat.objects.all().delete()
    bench_bulk(jobs)
    result = bench_drain(jobs, database_url, workdir, env=SETTINGS[stats], server_cpu=server_cpu_probe())
    check_drained(jobs, result)
    rolled_up = JobStat.objects.totals()["finished"]
    if rolled_up != (jobs if stats == "on" else 0):
        raise RuntimeError(f"rollups {stats}: {rolled_up} finished jobs rolled up of {jobs}")
    return result


def server_cpu_probe():
    """On PostgreSQL, a function giving {backend pid: CPU seconds} of the backends connected to
    this database (the worker's and this script's); None elsewhere."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    import psutil

    def probe():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            pids = [pid for (pid,) in cursor.fetchall()]
        seconds = {}
        for pid in pids:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            seconds[pid] = times.user + times.system
        return seconds

    return probe


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument("--jobs", type=int, default=10000, help="no-op jobs per drain (default: 10000)")
    parser.add_argument("--rounds", type=int, default=4, help="off/on pairs (default: 4)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="quebec_bench_"))
    try:
        database_url = database_url_or_sqlite(args.database_url, workdir)
        setup_django(database_url)
        from django.db import connection

        print(f"== {connection.vendor}: {args.jobs} no-op jobs per drain, 1 worker x 5 threads", flush=True)
        rate_ratios, cpu_ratios, server_ratios = [], [], []
        for round_number in range(1, args.rounds + 1):
            order = ("off", "on") if round_number % 2 else ("on", "off")
            result = {stats: drain(args.jobs, database_url, workdir, stats) for stats in order}
            off, on = result["off"], result["on"]
            rate_ratios.append(on["drain"] / off["drain"])
            cpu_ratios.append(on["cpu_ms_per_job"] / off["cpu_ms_per_job"])
            server = ""
            if on["server_cpu_ms_per_job"] is not None:
                server_ratios.append(on["server_cpu_ms_per_job"] / off["server_cpu_ms_per_job"])
                server = (
                    f" | server CPU/job off {off['server_cpu_ms_per_job']:.3f} ms, "
                    f"on {on['server_cpu_ms_per_job']:.3f} ms, x{server_ratios[-1]:.3f}"
                )
            print(
                f"round {round_number} ({order[0]} first): off {off['drain']:7.0f} jobs/s "
                f"{off['cpu_ms_per_job']:.3f} ms CPU/job | on {on['drain']:7.0f} jobs/s "
                f"{on['cpu_ms_per_job']:.3f} ms CPU/job | rate x{rate_ratios[-1]:.3f}, CPU x{cpu_ratios[-1]:.3f}"
                f"{server}",
                flush=True,
            )
        empty_quebec_tables()
        print(
            f"median of {args.rounds} rounds: drain rate x{statistics.median(rate_ratios):.3f}, "
            f"worker CPU per job x{statistics.median(cpu_ratios):.3f}"
            + (f", server CPU per job x{statistics.median(server_ratios):.3f}" if server_ratios else "")
            + " (rollups on / off)",
            flush=True,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
