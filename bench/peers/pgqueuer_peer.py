"""The workload for ``pgqueuer`` (asyncio, PostgreSQL only), run inside its own virtualenv.

    python pgqueuer_peer.py enqueue --database-url URL --single N --jobs N
    python pgqueuer_peer.py worker --database-url URL

``enqueue`` installs the schema, empties the queue and its log, times ``Queries.enqueue`` one
job at a time (each its own transaction) and with lists of 1,000, and leaves the second batch
queued. ``worker`` runs a no-op entrypoint as ``pgq run`` does (``pgqueuer.run``), with its defaults
(batch size 10, LISTEN/NOTIFY), which works jobs off as asyncio tasks in one process.
"""

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time

import asyncpg
import pgqueuer
from pgqueuer import AsyncpgDriver, PgQueuer, Queries

CHUNK = 1000
ENTRYPOINT = "noop"


def report(key, value, text):
    print(text, flush=True)
    print("RESULT " + json.dumps({key: value}), flush=True)


@contextlib.asynccontextmanager
async def create_pgqueuer():
    """The factory ``pgq run`` takes: a PgQueuer with one no-op entrypoint."""
    connection = await asyncpg.connect(os.environ["PGDSN"])
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint(ENTRYPOINT)
    async def noop(job):
        pass

    try:
        yield pgq
    finally:
        await connection.close()


async def enqueue(args):
    connection = await asyncpg.connect(args.database_url)
    queries = Queries(AsyncpgDriver(connection))
    if not await queries.schema_is_installed():
        await queries.install()
    await queries.clear_queue()
    await queries.clear_queue_log()
    started = time.perf_counter()
    for _ in range(args.single):
        await queries.enqueue(ENTRYPOINT, None)
    rate = args.single / (time.perf_counter() - started)
    report("single", rate, f"single enqueue {rate:8.0f} jobs/s ({args.single} enqueue calls)")
    await queries.clear_queue()
    await queries.clear_queue_log()
    started = time.perf_counter()
    for first in range(0, args.jobs, CHUNK):
        size = min(CHUNK, args.jobs - first)
        await queries.enqueue([ENTRYPOINT] * size, [None] * size, [0] * size)
    rate = args.jobs / (time.perf_counter() - started)
    report("bulk", rate, f"bulk enqueue   {rate:8.0f} jobs/s (enqueue with lists of {CHUNK})")
    await connection.close()


def worker(args):
    os.environ["PGDSN"] = args.database_url
    asyncio.run(pgqueuer.run(create_pgqueuer))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["enqueue", "worker"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--single", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=5000)
    args = parser.parse_args()
    if args.command == "enqueue":
        asyncio.run(enqueue(args))
    else:
        worker(args)


if __name__ == "__main__":
    sys.exit(main())
