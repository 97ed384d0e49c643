"""Worker "hosts" in network namespaces of their own, against one PostgreSQL.

Each host is a network namespace (``ip netns``) joined to the machine by a veth pair on a bridge
that holds the database side of a private test link (10.77.0.1/24 by default); the host's one
worker process (``quebec_run --only worker``, 5 threads) reaches PostgreSQL over that link only.
For 1, 2 and 4 hosts in turn, N jobs are bulk-enqueued, every host's worker starts at once, and
the bench reports:

- throughput: jobs/s from the first finish to the last, and each host's share of the jobs;
- the database's CPU share: the CPU time of the database's client backends (``server_cpu.py``)
  beside the workers' own, and as a share of the machine's cores over the drain (the queue is
  paused while the workers start, so neither counts their startup);
- claim conflicts: deadlocks and rolled-back transactions in ``pg_stat_database``, and how often
  a sample of ``pg_stat_activity`` (every 0.1 s) found a backend waiting on a lock;
- that every job ran exactly once: each job (``RunLogJob``) appends its id to a file of its
  worker process's own, and each id must be there once and only once, with every job finished
  and its execution count at 1.

It needs root (``ip netns``) and a PostgreSQL that accepts connections from the link. Use a
cluster of its own rather than a shared one, for example:

    pg_createcluster 15 scale --port 5442 -- --auth-local=trust --auth-host=trust
    echo "listen_addresses = '*'" >> /etc/postgresql/15/scale/postgresql.conf
    echo "host all all 10.77.0.0/24 trust" >> /etc/postgresql/15/scale/pg_hba.conf
    pg_ctlcluster 15 scale start && createdb -h 127.0.0.1 -p 5442 -U postgres quebec_hosts
    python bench/many_hosts.py --database-url postgres://postgres@127.0.0.1:5442/quebec_hosts

The namespaces, veth pairs and bridge are removed at the end, and any left by an interrupted run
are removed at the start.
"""

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_core import CHUNK, ROOT, SETTINGS_MODULE, THREADS, empty_quebec_tables, setup_django  # noqa: E402
from bench.server_cpu import Meter, other_server_ids  # noqa: E402

PREFIX = "qhost"  # namespaces qhost1..., veth pairs qhost1 (bridge side) / qhost1n (host side)
BRIDGE = "qhostbr"
DRAIN_TIMEOUT = 600  # seconds
QUEUE = "default"  # RunLogJob's
SAMPLE_EVERY = 0.1  # seconds


def ip(*args, namespace=None):
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True)


class Link:
    """The bridge on the database's side and one namespace per host, each with a veth pair."""

    def __init__(self, subnet):
        self.subnet = subnet  # "10.77.0", a /24
        self.hosts = []

    def __enter__(self):
        remove_leftovers()
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{self.subnet}.1/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        return self

    def __exit__(self, *exc):
        remove_leftovers()

    def add_host(self):
        index = len(self.hosts) + 1
        name = f"{PREFIX}{index}"
        ip("netns", "add", name)
        ip("link", "add", name, "type", "veth", "peer", "name", f"{name}n")
        ip("link", "set", f"{name}n", "netns", name)
        ip("link", "set", name, "master", BRIDGE, "up")
        ip("link", "set", "lo", "up", namespace=name)
        ip("addr", "add", f"{self.subnet}.{10 + index}/24", "dev", f"{name}n", namespace=name)
        ip("link", "set", f"{name}n", "up", namespace=name)
        self.hosts.append(name)
        return name


def remove_leftovers():
    """Delete this bench's namespaces (their veth ends go with them) and its bridge."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(PREFIX):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
    for name in (BRIDGE, *(f"{PREFIX}{index}" for index in range(1, 33))):
        subprocess.run(["ip", "link", "del", name], capture_output=True)


def link_url(database_url, address):
    """``database_url`` reached at ``address`` (the database's side of the link)."""
    parts = urlsplit(database_url)
    userinfo = parts.netloc.rpartition("@")[0]
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{address}{port}" if userinfo else f"{address}{port}"))


def start_worker(host, database_url, run_log, workdir):
    """One ``quebec_run --only worker`` in ``host``'s namespace, logging to a file."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "DATABASE_URL": database_url,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "testproject")]),
        "QUEBEC_WORKER_THREADS": str(THREADS),
        "QUEBEC_PRESERVE_FINISHED_JOBS": "true",  # finished_at is what the drain rate is read from
        "QUEBEC_BENCH_RUN_LOG": str(run_log),
        "QUEBEC_BENCH_HOST": host,
    }
    command = ["ip", "netns", "exec", host, sys.executable, "-m", "django", "quebec_run", "--only", "worker", "-v", "0"]
    with open(workdir / f"{host}.log", "wb") as log:  # ip netns exec execs the command: same pid
        return subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def database_counters():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks, xact_rollback FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()


def backends_waiting_on_locks():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def enqueue(n):
    """``n`` RunLogJobs, bulk-enqueued; returns their ids."""
    import quebec
    from bench.benchapp.jobs import RunLogJob

    ids = []
    for first in range(0, n, CHUNK):
        ids += [
            handle.id for handle in quebec.perform_all_later([RunLogJob.build() for _ in range(min(CHUNK, n - first))])
        ]
    return ids


def drain(hosts, n, database_url, workdir):
    """Every host's worker over ``n`` ready jobs at once; the round's figures."""
    from django.db import connection

    from quebec.models import Pause

    run_log = workdir / f"runs-{len(hosts)}"
    run_log.mkdir()
    Pause.pause(QUEUE)  # the workers start, register and settle first: their startup is left out
    ids = enqueue(n)
    processes = [start_worker(host, database_url, run_log, workdir) for host in hosts]
    workers = [psutil.Process(process.pid) for process in processes]
    wait_registered(processes)
    deadlocks, rollbacks = database_counters()
    meter = Meter(lambda: other_server_ids(connection)).start()
    worker_base = {worker.pid: sum(worker.cpu_times()[:2]) for worker in workers}
    Pause.resume(QUEUE)
    watch = watch_drain(processes, workers, meter)
    watch["worker_cpu"] -= sum(worker_base.values())
    for process in processes:
        process.send_signal(signal.SIGTERM)
    exit_codes = [process.wait(timeout=60) for process in processes]
    deadlocks_after, rollbacks_after = database_counters()
    return {
        "hosts": len(hosts),
        **drain_span(n),
        **watch,
        "db_cpu": meter.seconds(),
        "db_connections": meter.connections_seen(),
        "deadlocks": deadlocks_after - deadlocks,
        "rollbacks": rollbacks_after - rollbacks,
        "exit_codes": exit_codes,
        **runs(ids, run_log),
    }


def wait_registered(processes):
    """Return once every worker has registered and had time to poll its paused queue."""
    from quebec.models import Process

    deadline = time.monotonic() + 60
    while Process.objects.filter(kind="Worker").count() < len(processes):
        if any(process.poll() is not None for process in processes) or time.monotonic() > deadline:
            for process in processes:
                process.kill()
            raise RuntimeError("a worker did not start (see its log)")
        time.sleep(SAMPLE_EVERY)
    time.sleep(1.0)


def watch_drain(processes, workers, meter):
    """Sample the database's connections and locks until no job is unfinished."""
    from quebec.models import Job

    started, samples, waiting = time.monotonic(), 0, 0
    worker_cpu = {}
    try:
        while Job.objects.filter(finished_at__isnull=True).exists():
            meter.sample()
            worker_cpu = {worker.pid: sum(worker.cpu_times()[:2]) for worker in workers}
            samples += 1
            waiting += backends_waiting_on_locks() > 0
            if any(process.poll() is not None for process in processes):
                raise RuntimeError("a worker exited during the drain (see its log)")
            if time.monotonic() - started > DRAIN_TIMEOUT:
                raise RuntimeError(f"jobs still unfinished after {DRAIN_TIMEOUT}s")
            time.sleep(SAMPLE_EVERY)
        meter.sample()
        worker_cpu = {worker.pid: sum(worker.cpu_times()[:2]) for worker in workers}
    except BaseException:
        for process in processes:
            process.kill()
            process.wait()
        raise
    return {
        "worker_cpu": sum(worker_cpu.values()),
        "window": time.monotonic() - started,
        "lock_wait_samples": waiting,
        "samples": samples,
    }


def drain_span(n):
    from django.db.models import Max, Min

    from quebec.models import Job

    span = Job.objects.aggregate(first=Min("finished_at"), last=Max("finished_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    return {"rate": (n - 1) / seconds, "seconds": seconds}


def runs(ids, run_log):
    """Check each job ran exactly once, by the run logs and by Quebec's rows; jobs per host."""
    from quebec.models import FailedExecution, Job

    counts, per_host = collections.Counter(), collections.Counter()
    for path in run_log.iterdir():
        lines = path.read_text().split()
        counts.update(lines)
        per_host[path.name.split("-")[0]] += len(lines)
    expected = collections.Counter(str(job_id) for job_id in ids)
    problems = []
    if counts != expected:
        twice = sum(1 for count in counts.values() if count > 1)
        problems.append(f"run logs: {len(expected - counts)} jobs never ran, {twice} ran more than once")
    if Job.objects.finished().count() != len(ids) or Job.objects.exclude(executions=1).exists():
        problems.append("Quebec's rows: not every job finished with exactly one execution")
    if FailedExecution.objects.exists():
        problems.append("some jobs failed")
    return {"exactly_once": not problems, "problems": problems, "per_host": dict(sorted(per_host.items()))}


def report(rounds, cores):
    print(
        f"\nQuebec on many hosts: {rounds[0]['jobs']} no-op jobs per round, 1 worker process x {THREADS} threads per host"
    )
    header = "| hosts | jobs/s | × 1 host | jobs per host | DB CPU s | DB share of CPU used | DB share of machine | lock-wait samples | deadlocks | rollbacks | exactly once |"
    print(header)
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
    base = rounds[0]["rate"]
    for row in rounds:
        used = row["db_cpu"] + row["worker_cpu"]
        print(
            f"| {row['hosts']} | {row['rate']:,.0f} | {row['rate'] / base:.2f} | "
            f"{' / '.join(f'{count:,}' for count in row['per_host'].values())} | {row['db_cpu']:.2f} | "
            f"{row['db_cpu'] / used:.0%} | {row['db_cpu'] / (row['window'] * cores):.0%} | "
            f"{row['lock_wait_samples']} of {row['samples']} | {row['deadlocks']} | {row['rollbacks']} | "
            f"{'yes' if row['exactly_once'] else 'NO: ' + '; '.join(row['problems'])} |"
        )
    print(f"\n{cores} cores, load average at the end {os.getloadavg()[0]:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL, as this machine reaches it")
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per round (20,000)")
    parser.add_argument("--hosts", default="1,2,4", help="host counts, one round each (1,2,4)")
    parser.add_argument("--subnet", default="10.77.0", help="the link's /24; the database side is .1 (10.77.0)")
    args = parser.parse_args()
    counts = [int(count) for count in args.hosts.split(",")]
    setup_django(args.database_url)
    workdir = Path(tempfile.mkdtemp(prefix="quebec_hosts_"))
    rounds = []
    try:
        with Link(args.subnet) as link:
            url = link_url(args.database_url, f"{args.subnet}.1")
            for count in counts:
                while len(link.hosts) < count:
                    link.add_host()
                empty_quebec_tables()
                row = drain(link.hosts[:count], args.jobs, url, workdir)
                rounds.append({**row, "jobs": args.jobs})
                print(f"{count} host(s): {row['rate']:,.0f} jobs/s, exactly once: {row['exactly_once']}", flush=True)
        empty_quebec_tables()
    except Exception:
        for log in sorted(workdir.glob("qhost*.log")):
            print(f"--- {log.name} ---\n{log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(rounds, os.cpu_count())


if __name__ == "__main__":
    main()
