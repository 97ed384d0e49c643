"""Does a worker's memory grow with the jobs it runs? One ``quebec_run`` process, its RSS read
while idle and after each round of no-op jobs it works off.

    python bench/worker_memory.py --database-url postgres://postgres@127.0.0.1:5432/quebec_bench
    python bench/worker_memory.py --rounds 8 --jobs 25000      # SQLite file in a temp dir

The first round pays for what a process loads once (the first job's imports, the connection's
buffers); a leak shows as RSS still rising round after round. A server database must already
exist; it is migrated and emptied.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import add_database_argument, database_url_or_sqlite, empty_quebec_tables, setup_django
from quebec_suite import QuebecRun, enqueue_ready, wait_until_finished


def breakdown(pid):
    """Linux's split of the RSS: the heap (anonymous) apart from mapped files and shared memory,
    such as SQLite's WAL index; empty elsewhere."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return ""
    kinds = dict(line.split(":", 1) for line in lines if line.startswith(("RssAnon", "RssFile", "RssShmem")))
    return (
        "  ("
        + ", ".join(f"{kind[3:].lower()} {int(value.split()[0]) / 1024:.1f}" for kind, value in kinds.items())
        + ")"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument("--rounds", type=int, default=6, help="rounds of jobs (default: 6)")
    parser.add_argument("--jobs", type=int, default=25000, help="no-op jobs per round (default: 25000)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="quebec_memory_"))
    database_url = database_url_or_sqlite(args.database_url, workdir)
    setup_django(database_url)
    empty_quebec_tables()
    worker = QuebecRun(database_url, workdir, "memory")
    try:
        worker.wait_until_registered()
        time.sleep(2)  # let startup settle, as the suite's idle reading does
        print(f"idle                  {worker.rss():6.1f} MiB{breakdown(worker.popen.pid)}", flush=True)
        for round_number in range(1, args.rounds + 1):
            jobs, _ = enqueue_ready(args.jobs)
            wait_until_finished(worker, jobs)
            time.sleep(1)  # the last batch recorded, the threads idle again
            print(
                f"after {round_number * args.jobs:>9,} jobs   {worker.rss():6.1f} MiB{breakdown(worker.popen.pid)}",
                flush=True,
            )
        exit_code = worker.stop()
    finally:
        worker.kill()
        empty_quebec_tables()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
