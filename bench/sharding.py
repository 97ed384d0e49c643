"""Queues split between two databases, each drained by workers of its own, side by side.

Two database aliases (``bench/sharding_settings.py``): ``default`` holds the queue ``shard-a``
(``ShardAJob``), ``shard_b`` the queue ``shard-b`` (``ShardBJob``, bound with
``Quebec(using="shard_b")``). Each round drains N jobs twice, with two worker processes of 5
threads each time:

1. one database: N jobs of ``shard-a``, drained by two ``quebec_run --queues shard-a``;
2. two databases: N/2 jobs on each, drained by ``quebec_run --database default --queues
   shard-a`` and ``quebec_run --database shard_b --queues shard-b`` at once.

It prints both drain rates per round (first finish to last, over both databases) and the
median of their ratios; for the last round, each database's own rate and span, its server CPU
per job (``server_cpu.py``, when the server is on this machine), and the jobs done on each
database every half second, side by side.

    python bench/sharding.py --database-url postgres://postgres@127.0.0.1:5432/quebec_bench \\
        --second-database-url postgres://postgres@127.0.0.1:5442/quebec_shard_b

Both databases must exist (two servers, or two databases of one); the script migrates both and
empties Quebec's tables in them.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_core import CHUNK, ROOT, THREADS, empty_quebec_tables  # noqa: E402
from bench.server_cpu import Meter, other_server_ids  # noqa: E402

SETTINGS_MODULE = "bench.sharding_settings"
ALIASES = ("default", "shard_b")
QUEUES = {"default": "shard-a", "shard_b": "shard-b"}
DRAIN_TIMEOUT = 600  # seconds
TICK = 0.5  # seconds between progress samples


def setup_django(database_url, second_url):
    os.environ.update(
        DATABASE_URL=database_url, QUEBEC_BENCH_SHARD_B_URL=second_url, DJANGO_SETTINGS_MODULE=SETTINGS_MODULE
    )
    sys.path[:0] = [str(ROOT), str(ROOT / "testproject")]
    import django
    from django.core.management import call_command

    django.setup()
    for alias in ALIASES:
        call_command("migrate", database=alias, verbosity=0)


def empty_both():
    from quebec import routing

    for alias in ALIASES:
        with routing.use(alias):
            empty_quebec_tables()


def enqueue(job_class, n):
    import quebec

    for first in range(0, n, CHUNK):
        quebec.perform_all_later([job_class.build() for _ in range(min(CHUNK, n - first))])


def start_worker(alias, workdir, index):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "testproject")]),
        "QUEBEC_WORKER_THREADS": str(THREADS),
        "QUEBEC_PRESERVE_FINISHED_JOBS": "true",  # finished_at is what the drain rate is read from
    }
    command = [sys.executable, "-m", "django", "quebec_run", "--database", alias, "--only", "worker"]
    command += ["--queues", QUEUES[alias], "-v", "0"]
    with open(workdir / f"worker-{alias}-{index}.log", "wb") as log:
        return subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def counts():
    """Jobs finished and jobs in all, per alias."""
    from quebec.models import Job

    return {
        alias: (Job.objects.using(alias).filter(finished_at__isnull=False).count(), Job.objects.using(alias).count())
        for alias in ALIASES
    }


def drain(aliases, workdir):
    """Start a worker per entry of ``aliases``; sample progress until every job is finished."""
    from django.db import connections

    meters = {alias: Meter(lambda alias=alias: other_server_ids(connections[alias])).start() for alias in ALIASES}
    processes = [start_worker(alias, workdir, index) for index, alias in enumerate(aliases)]
    started, timeline = time.monotonic(), []
    try:
        while True:
            for meter in meters.values():
                meter.sample()
            now = counts()
            timeline.append((time.monotonic() - started, {alias: done for alias, (done, _) in now.items()}))
            if all(done == total for done, total in now.values()):
                break
            if any(process.poll() is not None for process in processes) or timeline[-1][0] > DRAIN_TIMEOUT:
                raise RuntimeError("a worker exited or the drain timed out (see the worker logs)")
            time.sleep(TICK)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
    return timeline, {alias: meter.seconds() for alias, meter in meters.items()}


def span(alias):
    from django.db.models import Count, Max, Min

    from quebec.models import FailedExecution, Job

    row = Job.objects.using(alias).aggregate(first=Min("finished_at"), last=Max("finished_at"), jobs=Count("id"))
    if not row["jobs"]:
        return None
    if FailedExecution.objects.using(alias).exists() or Job.objects.using(alias).exclude(executions=1).exists():
        raise RuntimeError(f"on {alias}: a job failed or ran more than once")
    return row


def rate(rows):
    first = min(row["first"] for row in rows)
    last = max(row["last"] for row in rows)
    return (sum(row["jobs"] for row in rows) - 1) / (last - first).total_seconds()


def one_database(n, workdir):
    from bench.shardapp.jobs import ShardAJob

    empty_both()
    enqueue(ShardAJob, n)
    drain(["default", "default"], workdir)
    return rate([span("default")])


def two_databases(n, workdir):
    from bench.shardapp.jobs import ShardAJob, ShardBJob

    empty_both()
    enqueue(ShardAJob, n // 2)
    enqueue(ShardBJob, n - n // 2)
    timeline, server_cpu = drain(["default", "shard_b"], workdir)
    rows = {alias: span(alias) for alias in ALIASES}
    return rows, rate(list(rows.values())), timeline, server_cpu


def report(n, rounds):
    from django.db import connections

    print(f"\nQuebec sharded across two databases: {n} no-op jobs per round, 2 worker processes x {THREADS} threads")
    print("| round | one database, 2 workers: jobs/s | two databases, 1 worker each: jobs/s | ratio |")
    print("|---:|---:|---:|---:|")
    for index, (single_rate, sharded) in enumerate(rounds, 1):
        print(f"| {index} | {single_rate:,.0f} | {sharded[1]:,.0f} | {sharded[1] / single_rate:.2f} |")
    ratios = sorted(sharded[1] / single_rate for single_rate, sharded in rounds)
    print(f"median ratio: {ratios[len(ratios) // 2]:.2f}")
    rows, _, timeline, server_cpu = rounds[-1][1]
    print("\nThe last round's two databases:")
    print("| database | server | jobs | jobs/s | drain s | server CPU ms/job |")
    print("|---|---|---:|---:|---:|---:|")
    for alias, row in rows.items():
        settings = connections[alias].settings_dict
        seconds = (row["last"] - row["first"]).total_seconds()
        print(
            f"| {alias} | {settings['HOST']}:{settings['PORT']}/{settings['NAME']} | {row['jobs']:,} | "
            f"{(row['jobs'] - 1) / seconds:,.0f} | {seconds:.2f} | {server_cpu[alias] * 1000 / row['jobs']:.3f} |"
        )
    print("\nJobs done on each, side by side (seconds after the workers' start: default / shard_b):")
    busy = [
        entry
        for index, entry in enumerate(timeline)
        if index == len(timeline) - 1 or any(timeline[index + 1][1].values())
    ]
    print("  " + "   ".join(f"{at:.1f}s: {done['default']}/{done['shard_b']}" for at, done in busy))
    print(f"\n{os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="the default database (queue shard-a)")
    parser.add_argument("--second-database-url", required=True, help="the second database (queue shard-b)")
    parser.add_argument(
        "--jobs", type=int, default=20_000, help="jobs per drain, split evenly on two databases (20,000)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both layouts, alternated (3)")
    args = parser.parse_args()
    setup_django(args.database_url, args.second_database_url)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="quebec_sharding_") as workdir:
        try:
            for _ in range(args.rounds):  # alternated, so that drift in the machine's speed hits both
                rounds.append((one_database(args.jobs, Path(workdir)), two_databases(args.jobs, Path(workdir))))
        except Exception:
            for log in sorted(Path(workdir).glob("worker-*.log")):
                print(f"--- {log.name} ---\n{log.read_text()[-3000:]}", file=sys.stderr)
            raise
        empty_both()
    report(args.jobs, rounds)


if __name__ == "__main__":
    main()
