"""How many statements each transition sends, pinned per database: a change that adds a round
trip to enqueue, claim or the end of a batch of runs fails here."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import quebec
from quebec.lifecycle import running, stats
from quebec.lifecycle.outcome import FINISHED, Outcome, Run
from quebec.models import Job, Process
from tests.testapp.jobs import PairsJob, RecordJob, UniqueArgumentsJob

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = 50

# Statements per operation and database (BEGIN and COMMIT count where the driver sends them).
# A worker's ends hold their rollups in its buffer, written about once a second with one of
# its ends (one upsert, whatever the number of runs; on PostgreSQL inside the one statement):
# the ends measured here are a worker's, with nothing due to be written.
BUDGETS = {
    "postgresql": {
        "enqueue one": 1,
        "enqueue a batch": 1,
        "claim": 1,
        "end and claim": 1,
        "end and claim, keyed": 5,
        "enqueue one, keyed": 8,
        "enqueue a batch, unique": 4,
        "enqueue a duplicate": 5,
        "end and claim, unique": 4,
    },
    # One job outside a transaction is one round trip, its statements sent together (counted
    # once here): START TRANSACTION, the two INSERTs, the id and COMMIT.
    "mysql": {
        "enqueue one": 1,
        "enqueue a batch": 4,
        "claim": 6,
        "end and claim": 9,
        "end and claim, keyed": 10,
        "enqueue one, keyed": 9,
        "enqueue a batch, unique": 5,
        "enqueue a duplicate": 4,
        "end and claim, unique": 7,
    },
    # An idle worker looks at the ready table before it claims (Worker._idle_with_nothing_ready):
    # a claim itself sends no look first.
    "sqlite": {
        "enqueue one": 4,
        "enqueue a batch": 4,
        "claim": 6,
        "end and claim": 8,
        "end and claim, keyed": 9,
        "enqueue one, keyed": 9,
        "enqueue a batch, unique": 6,
        "enqueue a duplicate": 5,
        "end and claim, unique": 6,
    },
}


@pytest.fixture
def process():
    return Process.objects.register("Worker", "budget-worker")


def statements(operation):
    with CaptureQueriesContext(connection) as captured:
        operation()
    return len(captured)


def finished_runs(jobs):
    return [Run(job, Outcome(FINISHED)) for job in jobs]


def test_enqueue():
    counts = {
        "enqueue one": statements(lambda: RecordJob.perform_later("one")),
        "enqueue a batch": statements(lambda: quebec.perform_all_later(RecordJob.build(i) for i in range(BATCH))),
        "enqueue one, keyed": statements(lambda: PairsJob.perform_later("group")),
    }
    assert counts == {name: BUDGETS[connection.vendor][name] for name in counts}


def test_claim_and_end_a_batch(process):
    quebec.perform_all_later(RecordJob.build(i) for i in range(3 * BATCH))
    claimed = []
    counts = {"claim": statements(lambda: claimed.extend(running.claim("default", ["*"], BATCH, process.pk)))}
    assert len(claimed) == BATCH
    counts["end and claim"] = statements(
        lambda: running.end_and_claim(
            "default", finished_runs(claimed), process.pk, True, ["*"], BATCH, buffer=stats.Buffer()
        )
    )
    assert Job.objects.finished().count() == BATCH
    assert counts == {name: BUDGETS[connection.vendor][name] for name in counts}


def test_end_a_batch_of_keyed_jobs(process):
    # Two jobs per key, limit 2: the second of each pair waits, blocked, behind a third.
    quebec.perform_all_later(PairsJob.build(f"group-{i % (BATCH // 2)}") for i in range(3 * (BATCH // 2)))
    claimed = running.claim("default", ["*"], BATCH, process.pk)
    assert len(claimed) == BATCH
    count = statements(
        lambda: running.end_and_claim(
            "default", finished_runs(claimed), process.pk, True, ["*"], 0, buffer=stats.Buffer()
        )
    )
    assert Job.objects.finished().count() == BATCH
    assert count == BUDGETS[connection.vendor]["end and claim, keyed"]


def test_unique_jobs(process):
    # Taking the keys is one statement more (and the transaction, on PostgreSQL); a duplicate
    # reads its holder; giving the keys back is one statement for the whole batch.
    counts = {
        "enqueue a batch, unique": statements(
            lambda: quebec.perform_all_later(UniqueArgumentsJob.build(i) for i in range(BATCH))
        ),
        "enqueue a duplicate": statements(lambda: UniqueArgumentsJob.perform_later(0)),
    }
    claimed = running.claim("default", ["*"], BATCH, process.pk)
    counts["end and claim, unique"] = statements(
        lambda: running.end_and_claim(
            "default", finished_runs(claimed), process.pk, True, ["*"], BATCH, buffer=stats.Buffer()
        )
    )
    assert Job.objects.finished().count() == BATCH
    assert counts == {name: BUDGETS[connection.vendor][name] for name in counts}
