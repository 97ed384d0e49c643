"""Quebec's benchmarks in one command: Quebec on SQLite, PostgreSQL and MariaDB, the same
workloads on three peers, and a markdown report with the ratios, all measured in one run.

    bench/run                                  # finds Python 3.12+ and the venv, like scripts/test
    .venv/bin/python bench/run.py              # the same, with the project's Python
    .venv/bin/python bench/run.py --quick      # fewer jobs and finished rows: a few minutes
    .venv/bin/python bench/run.py --no-peers --databases postgres --jobs 5000

Quebec's side is bench/quebec_suite.py, run once per database (see its docstring for the
phases). Each peer is installed from PyPI into its own virtualenv under bench/.peers/ (kept
between runs) and runs a small workload script from bench/peers/: enqueue one by one, enqueue
in bulk, then one worker process drains the bulk-enqueued no-op jobs while this script watches
the peer's own tables. A peer that cannot be installed or run is reported with the reason.

With ``--rounds N`` all of it runs N times in turn (Quebec, then the peers, then Quebec
again...), and the report gives each figure's median and each ratio's median over the rounds,
with their range: a single sitting's ratio moves with the machine's load from minute to minute.

Databases are throwaway ones created here and dropped at the end: quebec_bench and
peer_<name> on PostgreSQL, quebec_bench on MariaDB, SQLite files in a temp dir.
"""

import argparse
import dataclasses
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from server_cpu import DrainCpu, other_server_ids

BENCH = Path(__file__).resolve().parent
PEERS_HOME = BENCH / ".peers"
QUEBEC_DATABASE = "quebec_bench"
DEFAULTS = {"single": 5000, "jobs": 20000, "latency_jobs": 200, "finished": 1_000_000}
QUICK = {"single": 500, "jobs": 2000, "latency_jobs": 50, "finished": 100_000}
PEER_THREADS = 5
POLL = 0.5  # seconds between looks at a peer's tables: SQLite readers without WAL hold writers up


@dataclasses.dataclass
class Peer:
    """A job queue to compare with, and how to read its progress from its own tables."""

    key: str  # also its virtualenv's folder and its PostgreSQL database's suffix
    title: str
    distribution: str  # the PyPI package whose version the report shows
    packages: list
    script: str
    vendors: tuple
    worker_note: str
    done_sql: str  # how many jobs have finished
    span_sql: dict  # vendor -> seconds from the first finish to the last


def _span(table, column, where=""):
    return {
        "postgresql": f"SELECT EXTRACT(EPOCH FROM max({column}) - min({column})) FROM {table} {where}",
        "sqlite": f"SELECT (julianday(max({column})) - julianday(min({column}))) * 86400 FROM {table} {where}",
    }


PEERS = [
    Peer(
        key="quebec-pypi",
        title="quebec (PyPI, Rust engine)",
        distribution="quebec",
        packages=["quebec", "psycopg[binary]"],
        script="quebec_pypi.py",
        vendors=("postgresql", "sqlite"),
        worker_note=f"1 process x {PEER_THREADS} threads",
        done_sql="SELECT count(finished_at) FROM solid_queue_jobs",
        span_sql=_span("solid_queue_jobs", "finished_at"),
    ),
    Peer(
        key="django-tasks-db",
        title="django-tasks-db (django.tasks)",
        distribution="django-tasks-db",
        packages=["django-tasks-db", "psycopg[binary]"],
        script="django_tasks_db_peer.py",
        vendors=("postgresql", "sqlite"),
        worker_note="1 db_worker process, 1 task at a time (it has no threads)",
        done_sql="SELECT count(*) FROM django_tasks_database_dbtaskresult WHERE status = 'SUCCESSFUL'",
        span_sql=_span("django_tasks_database_dbtaskresult", "finished_at", "WHERE status = 'SUCCESSFUL'"),
    ),
    Peer(
        key="pgqueuer",
        title="pgqueuer (asyncio)",
        distribution="pgqueuer",
        packages=["pgqueuer", "asyncpg"],
        script="pgqueuer_peer.py",
        vendors=("postgresql",),
        worker_note="1 process, asyncio, default batch of 10",
        done_sql="SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'",
        span_sql=_span("pgqueuer_log", "created", "WHERE status = 'successful'"),
    ),
]
VENDOR_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MariaDB"}
DATABASE_CHOICES = {"sqlite": "sqlite", "postgres": "postgresql", "mariadb": "mysql"}


class Failed(Exception):
    """A measurement that could not be made; the message goes into the report."""


# Databases


def recreate_postgres(server, name):
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_postgres(server, name):
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def mariadb_execute(server, sql):
    import MySQLdb
    from urllib.parse import urlparse

    parts = urlparse(server)
    connection = MySQLdb.connect(
        host=parts.hostname, port=parts.port or 3306, user=parts.username or "root", password=parts.password or ""
    )
    try:
        connection.cursor().execute(sql)
    finally:
        connection.close()


def connect(vendor, url):
    """A DB-API connection to watch a peer's tables from here."""
    if vendor == "sqlite":
        import sqlite3

        return sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
    import psycopg

    return psycopg.connect(url, autocommit=True)


# Subprocesses


def stream(command, env=None, cwd=None):
    """Run ``command``, echo its lines as they come, and return the ``RESULT`` figures."""
    results = {}
    tail = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd
    ) as process:
        for line in process.stdout:
            line = line.rstrip("\n")
            if line.startswith("RESULT "):
                results.update(json.loads(line[len("RESULT ") :]))
            elif line.strip():
                print(f"    {line}", flush=True)
                tail = [*tail[-5:], line]
    if process.returncode:
        reason = next((line for line in reversed(tail) if "Error" in line or "error" in line), None)
        raise Failed(reason or f"exited with code {process.returncode}", results)
    return results


# Quebec


def run_quebec(vendor, url, counts):
    command = [
        sys.executable,
        str(BENCH / "quebec_suite.py"),
        "--single",
        str(counts["single"]),
        "--jobs",
        str(counts["jobs"]),
        "--latency-jobs",
        str(counts["latency_jobs"]),
        "--finished",
        str(counts["finished"]),
    ]
    if url:
        command += ["--database-url", url]
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    try:
        return stream(command, env=env)
    except Failed as failure:
        reason, partial = failure.args
        return {**partial, "error": reason}


def run_quebec_everywhere(vendors, counts, args):
    """Quebec's suite on each database, in a fresh database; {vendor: its figures}."""
    quebec_rows = {}
    for vendor in vendors:
        url = None  # SQLite: quebec_suite.py makes a file in a temp dir
        try:
            if vendor == "postgresql":
                recreate_postgres(args.postgres, QUEBEC_DATABASE)
                url = f"{args.postgres}/{QUEBEC_DATABASE}"
            elif vendor == "mysql":
                mariadb_execute(args.mariadb, f"DROP DATABASE IF EXISTS {QUEBEC_DATABASE}")
                mariadb_execute(args.mariadb, f"CREATE DATABASE {QUEBEC_DATABASE} CHARACTER SET utf8mb4")
                url = f"{args.mariadb}/{QUEBEC_DATABASE}"
        except Exception as error:
            print(f"== Quebec on {VENDOR_NAMES[vendor]}: cannot create the database: {error}", flush=True)
            quebec_rows[vendor] = {"error": f"cannot create the database: {error}"}
            continue
        quebec_rows[vendor] = run_quebec(vendor, url, counts)
    return quebec_rows


# Peers


def install_peer(peer):
    """The peer's virtualenv Python, installing it on first use; raises Failed with pip's reason."""
    home = PEERS_HOME / peer.key
    python = home / "bin" / "python"
    stamp = home / ".installed"
    wanted = " ".join(peer.packages)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"  installing {wanted} into {home.relative_to(BENCH.parent)}", flush=True)
    shutil.rmtree(home, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(home)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *peer.packages],
    ]
    for step in steps:
        done = subprocess.run(step, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode:
            lines = [line for line in done.stdout.splitlines() if line.strip() and "WARNING" not in line]
            raise Failed(f"install failed: {lines[-1] if lines else done.returncode}")
    stamp.write_text(wanted)
    return python


def peer_version(python, distribution):
    done = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({distribution!r}))"],
        stdout=subprocess.PIPE,
        text=True,
    )
    return done.stdout.strip() or "?"


def run_peer(peer, python, vendor, url, counts, workdir, timeout):
    """The enqueue and drain figures of one peer on one database."""
    script = str(BENCH / "peers" / peer.script)
    base = [str(python), script]
    results = stream(
        [*base, "enqueue", "--database-url", url, "--single", str(counts["single"]), "--jobs", str(counts["jobs"])],
        cwd=workdir,
    )
    log_path = workdir / f"{peer.key}-{vendor}-worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [*base, "worker", "--database-url", url], stdout=log, stderr=subprocess.STDOUT, cwd=workdir
        )
    connection = connect(vendor, url)
    servers = (lambda: other_server_ids(connection, vendor)) if vendor == "postgresql" else None
    cpu = DrainCpu(worker.pid, servers)
    try:
        deadline = time.monotonic() + timeout
        while (done := connection.execute(peer.done_sql).fetchone()[0]) < counts["jobs"]:
            cpu.look(done)
            if worker.poll() is not None:
                raise Failed(f"worker exited with code {worker.returncode}: {last_line(log_path)}", results)
            if time.monotonic() > deadline:
                results["partial"] = f"{done} of {counts['jobs']} done in {timeout}s"
                break
            time.sleep(POLL)
        cpu.look(done)
        results["rss_drained"] = psutil.Process(worker.pid).memory_info().rss / 2**20
        span = connection.execute(peer.span_sql[vendor]).fetchone()[0]
        results["drain"] = (done - 1) / float(span)
        results["drain_cpu"] = cpu.per_job()
    finally:
        connection.close()
        stop(worker)
    note = f" ({results['partial']})" if "partial" in results else ""
    print(f"    drain                {results['drain']:8.0f} jobs/s ({peer.worker_note}){note}", flush=True)
    if results["drain_cpu"]:
        print(f"    drain CPU per job    {cpu_text(results['drain_cpu'])}", flush=True)
    print(f"    RSS after drain      {results['rss_drained']:8.1f} MiB", flush=True)
    return results


def last_line(path):
    lines = [line for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_peers(peers, vendors, counts, args, workdir):
    """Every peer on every database it supports among ``vendors``; a failure becomes a row."""
    rows = []
    for peer in peers:
        print(f"== {peer.title}", flush=True)
        try:
            python = install_peer(peer)
            version = peer_version(python, peer.distribution)
        except Failed as failure:
            print(f"    {failure.args[0]}", flush=True)
            rows += [
                {"peer": peer, "vendor": vendor, "error": failure.args[0]}
                for vendor in peer.vendors
                if vendor in vendors
            ]
            continue
        for vendor in peer.vendors:
            if vendor not in vendors:
                continue
            print(f"  on {VENDOR_NAMES[vendor]}", flush=True)
            row = {"peer": peer, "vendor": vendor, "version": version}
            try:
                if vendor == "postgresql":
                    database = f"peer_{peer.key.replace('-', '_')}"
                    recreate_postgres(args.postgres, database)
                    url = f"{args.postgres}/{database}"
                else:
                    url = f"sqlite:///{workdir / peer.key}.sqlite3"
                row.update(run_peer(peer, python, vendor, url, counts, workdir, args.peer_timeout))
            except Failed as failure:
                print(f"    failed: {failure.args[0]}", flush=True)
                row.update(failure.args[1] if len(failure.args) > 1 else {}, error=failure.args[0])
            except Exception as error:  # a peer's oddity must not stop the run
                print(f"    failed: {error!r}", flush=True)
                row["error"] = f"{type(error).__name__}: {error}"
            finally:
                if vendor == "postgresql":
                    drop_postgres(args.postgres, f"peer_{peer.key.replace('-', '_')}")
            rows.append(row)
    return rows


# Report


def number(value, digits=0):
    return "—" if value is None else f"{value:,.{digits}f}"


def ratio(ours, theirs):
    if not ours or not theirs:
        return "—"
    return f"{ours / theirs:.2f}x"


RATIO_KEYS = ("single", "bulk", "drain")


def cpu_text(cpu):
    """A drain's CPU per job: the worker's, plus its server connections' where measured."""
    if not cpu or cpu.get("worker_us") is None:
        return "—"
    if cpu.get("server_us") is None:
        return f"{cpu['worker_us']:.0f} us"
    total = cpu["worker_us"] + cpu["server_us"]
    return f"{cpu['worker_us']:.0f} + {cpu['server_us']:.0f} = {total:.0f} us"


def median_rows(rounds):
    """One row from the same row of several rounds: each figure's median over the rounds that
    measured it (a latency, per percentile); an error of any round is kept."""
    merged = {}
    for row in rounds:
        for key, value in row.items():
            merged.setdefault(key, []).append(value)
    result = {}
    for key, values in merged.items():
        if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
            result[key] = statistics.median(values)
        elif all(isinstance(value, dict) for value in values):  # a latency's percentiles, a drain's CPU
            result[key] = {name: _median([value.get(name) for value in values]) for name in values[0]}
        else:
            result[key] = values[-1] if key != "error" else values[0]
    return result


def _median(values):
    """The median of the values measured (not None), or None when none was."""
    measured = [value for value in values if value is not None]
    return statistics.median(measured) if measured else None


def round_ratios(quebec_rounds, peer_rounds):
    """{(peer key, vendor): {figure: [Quebec ÷ peer in each round that measured both]}}."""
    ratios = {}
    for quebec_rows, peer_rows in zip(quebec_rounds, peer_rounds, strict=True):
        for row in peer_rows:
            ours = quebec_rows.get(row["vendor"], {})
            for key in RATIO_KEYS:
                if ours.get(key) and row.get(key):
                    place = ratios.setdefault((row["peer"].key, row["vendor"]), {})
                    place.setdefault(key, []).append(ours[key] / row[key])
    return ratios


def ratio_text(values):
    """The median ratio, with the rounds' range when there were several."""
    if not values:
        return "—"
    text = f"{statistics.median(values):.2f}x"
    return text if len(values) == 1 else f"{text} ({min(values):.2f}–{max(values):.2f})"


def quebec_table(rows, counts):
    jobs, finished = counts["jobs"], counts["finished"]
    lines = [
        f"| database | single enqueue jobs/s | bulk enqueue jobs/s | drain 1×5 jobs/s | drain 2×5 fork jobs/s "
        f"| latency p50 / p95 / max ms | claim jobs/s, 0 finished | claim jobs/s, {finished:,} finished "
        f"| claim ratio | RSS idle MiB | RSS after {jobs:,} jobs MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for vendor, row in rows.items():
        latency = row.get("latency")
        latency_text = " / ".join(f"{latency[key]:.1f}" for key in ("p50", "p95", "max")) if latency else "—"
        cells = [
            VENDOR_NAMES[vendor],
            number(row.get("single")),
            number(row.get("bulk")),
            number(row.get("drain")),
            number(row.get("drain_fork")),
            latency_text,
            number(row.get("drain")),
            number(row.get("drain_big")),
            ratio(row.get("drain_big"), row.get("drain")),
            number(row.get("rss_idle"), 1),
            number(row.get("rss_drained"), 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [f"\n{VENDOR_NAMES[vendor]} failed: {row['error']}" for vendor, row in rows.items() if "error" in row]
    return "\n".join(lines)


def peers_table(quebec_rows, peer_rows, ratios):
    lines = [
        "| system | database | single enqueue jobs/s | bulk enqueue jobs/s | drain jobs/s "
        "| drain CPU per job, worker + server | RSS after drain MiB | worker | Quebec ÷ peer: single / bulk / drain |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for vendor, row in quebec_rows.items():
        if vendor in {peer_row["vendor"] for peer_row in peer_rows}:
            lines.append(
                f"| Quebec (this project) | {VENDOR_NAMES[vendor]} | {number(row.get('single'))} "
                f"| {number(row.get('bulk'))} | {number(row.get('drain'))} | {cpu_text(row.get('drain_cpu'))} "
                f"| {number(row.get('rss_drained'), 1)} | 1 process x 5 threads | |"
            )
    for row in peer_rows:
        peer, vendor = row["peer"], row["vendor"]
        title = f"{peer.title} {row.get('version', '')}".strip()
        if "error" in row and "drain" not in row:
            lines.append(f"| {title} | {VENDOR_NAMES[vendor]} | not run: {row['error']} | | | | | | |")
            continue
        measured = ratios.get((peer.key, vendor), {})
        ratio_cells = " / ".join(ratio_text(measured.get(key)) for key in RATIO_KEYS)
        worker = peer.worker_note + (f"; partial: {row['partial']}" if "partial" in row else "")
        lines.append(
            f"| {title} | {VENDOR_NAMES[vendor]} | {number(row.get('single'))} | {number(row.get('bulk'))} "
            f"| {number(row.get('drain'))} | {cpu_text(row.get('drain_cpu'))} | {number(row.get('rss_drained'), 1)} "
            f"| {worker} | {ratio_cells} |"
        )
    return "\n".join(lines)


def machine_note():
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; load average {load} "
        f"at the end (a shared machine: compare the ratios within one run, not across runs)"
    )


# Main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"fewer jobs for development: {', '.join(f'{k}={v}' for k, v in QUICK.items())}",
    )
    parser.add_argument("--single", type=int, help=f"jobs enqueued one by one (default {DEFAULTS['single']})")
    parser.add_argument("--jobs", type=int, help=f"jobs per bulk enqueue and drain (default {DEFAULTS['jobs']})")
    parser.add_argument("--latency-jobs", type=int, help=f"jobs for the latency (default {DEFAULTS['latency_jobs']})")
    parser.add_argument(
        "--finished", type=int, help=f"finished jobs kept for the second claim rate (default {DEFAULTS['finished']:,})"
    )
    parser.add_argument(
        "--databases",
        default="sqlite,postgres,mariadb",
        help="comma-separated: sqlite, postgres, mariadb (default: all three)",
    )
    parser.add_argument(
        "--peers",
        default=",".join(peer.key for peer in PEERS),
        help="comma-separated peers to compare with (default: all)",
    )
    parser.add_argument("--no-peers", action="store_true", help="measure Quebec only")
    parser.add_argument(
        "--peer-timeout",
        type=int,
        default=900,
        help="seconds a peer's drain may take; past that its rate is from the jobs done (default 900)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="run everything this many times in turn; report medians (default 1)"
    )
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL")
    parser.add_argument("--mariadb", default="mysql://root@127.0.0.1:3306", help="MariaDB server URL")
    args = parser.parse_args()

    counts = {**(QUICK if args.quick else DEFAULTS)}
    counts.update({key: getattr(args, key) for key in counts if getattr(args, key) is not None})
    if counts["jobs"] < 2 or counts["single"] < 1 or counts["latency_jobs"] < 1 or counts["finished"] < 1:
        parser.error("--jobs must be at least 2, and the other counts at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    vendors = []
    for name in args.databases.split(","):
        if name.strip() not in DATABASE_CHOICES:
            parser.error(f"unknown database {name!r}: use sqlite, postgres or mariadb")
        vendors.append(DATABASE_CHOICES[name.strip()])
    peer_keys = [] if args.no_peers else [key.strip() for key in args.peers.split(",") if key.strip()]
    unknown = set(peer_keys) - {peer.key for peer in PEERS}
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(sorted(unknown))}: use {', '.join(peer.key for peer in PEERS)}")
    peers = [peer for peer in PEERS if peer.key in peer_keys]

    started = time.monotonic()
    print(
        f"Counts: {counts['single']:,} single enqueues, {counts['jobs']:,} jobs per bulk enqueue and drain, "
        f"{counts['latency_jobs']} latency jobs, {counts['finished']:,} finished rows",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="quebec_bench_run_"))
    quebec_rounds, peer_rounds = [], []
    try:
        for number_of in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"# Round {number_of} of {args.rounds}", flush=True)
            quebec_rounds.append(run_quebec_everywhere(vendors, counts, args))
            peer_rounds.append(run_peers(peers, vendors, counts, args, workdir) if peers else [])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for vendor in vendors:
            try:
                if vendor == "postgresql":
                    drop_postgres(args.postgres, QUEBEC_DATABASE)
                elif vendor == "mysql":
                    mariadb_execute(args.mariadb, f"DROP DATABASE IF EXISTS {QUEBEC_DATABASE}")
            except Exception as error:
                print(f"could not drop {QUEBEC_DATABASE} on {VENDOR_NAMES[vendor]}: {error}", file=sys.stderr)

    quebec_rows = {vendor: median_rows([rows[vendor] for rows in quebec_rounds]) for vendor in vendors}
    peer_rows = [median_rows([rows[index] for rows in peer_rounds]) for index in range(len(peer_rounds[0]))]
    rounds_note = f", medians of {args.rounds} rounds" if args.rounds > 1 else ""
    print()
    print(f"## Quebec: {counts['jobs']:,} no-op jobs per drain, {counts['single']:,} single enqueues{rounds_note}")
    print()
    print(quebec_table(quebec_rows, counts))
    if peer_rows:
        print()
        print(f"## Quebec and its peers: the same no-op workload, one worker process{rounds_note}")
        print()
        print(peers_table(quebec_rows, peer_rows, round_ratios(quebec_rounds, peer_rounds)))
    print()
    print(f"Machine: {machine_note()}. Run took {(time.monotonic() - started) / 60:.1f} min.")
    failed = any("error" in row for row in quebec_rows.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
