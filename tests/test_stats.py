"""Rollups (quebec/models/stats.py, quebec/lifecycle/stats.py): the numbers of jobs a real
worker ran, one upsert per group, and pruning by the dispatcher."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from quebec import conf
from quebec.lifecycle import running, stats
from quebec.lifecycle.outcome import FINISHED, Outcome, Run
from quebec.models import ClaimedExecution, JobStat, JobStatTotal, Process, percentile
from quebec.models.stats import BOUNDS, SUMMED, bucket, totals_since_start
from quebec.processes.dispatcher import Dispatcher
from tests.conftest import finished, wait_until
from tests.testapp.jobs import ChaosJob, SleepJob

pytestmark = pytest.mark.django_db(transaction=True)
CHAOS = "tests.testapp.jobs.ChaosJob"
SLEEP = "tests.testapp.jobs.SleepJob"


def test_a_real_worker_s_runs_are_counted_by_how_they_ended(start):
    plans = ["ok"] * 3 + ["flaky-then-ok"] * 2 + ["flaky", "discard", "unexpected", "rescue"]
    handles = [ChaosJob.perform_later(plan) for plan in plans]
    start()
    wait_until(lambda: finished(*handles), message="the jobs to come to rest")
    # The running worker writes what its buffer holds within about a second.
    wait_until(lambda: JobStat.objects.filter(class_name=CHAOS).totals()["run_count"] == 13, message="the rollups")
    totals = JobStat.objects.filter(class_name=CHAOS).totals()
    # ok x3, flaky-then-ok x2 (after a retry each) and rescue finish; flaky is retried twice
    # and then fails, as does unexpected; discard is discarded by its run.
    assert {name: totals[name] for name in ("finished", "failed", "retried", "discarded")} == {
        "finished": 6,
        "failed": 2,
        "retried": 4,
        "discarded": 1,
    }
    assert totals["run_count"] == totals["wait_count"] == 13 == sum(totals["run_buckets"])
    assert {row["queue_name"] for row in JobStat.objects.filter(class_name=CHAOS).per_queue()} == {"default"}


def test_run_and_wait_times_are_those_the_jobs_took(start):
    handles = [SleepJob.perform_later(0.3) for _ in range(3)]
    time.sleep(0.5)  # the jobs wait at least this long before a worker exists
    started = timezone.now()
    start()
    wait_until(lambda: finished(*handles), message="the sleeping jobs")
    ran_for = (timezone.now() - started).total_seconds()
    wait_until(lambda: JobStat.objects.filter(class_name=SLEEP).totals()["run_count"] == 3, message="the rollups")
    [row] = JobStat.objects.filter(class_name=SLEEP).per_class()
    assert row["finished"] == row["run_count"] == 3
    assert 0.9 <= row["run_sum"] < 3 * ran_for
    assert row["run_buckets"][bucket(0.3)] + row["run_buckets"][bucket(0.3) + 1] == 3
    assert 0.25 <= row["run_p50"] <= row["run_p95"] <= BOUNDS[bucket(0.3) + 1]
    assert 3 * 0.5 <= row["wait_sum"] < 3 * (0.5 + ran_for + 1)
    assert row["wait_p50"] >= 0.25


def test_a_batch_of_runs_is_one_upsert_per_group(process):
    jobs = [ChaosJob.perform_later("ok") for _ in range(5)] + [SleepJob.perform_later(0) for _ in range(2)]
    claimed = running.claim("default", ["*"], 10, process.pk)
    assert len(claimed) == len(jobs)
    now = timezone.now()
    runs = [Run(job, Outcome(FINISHED), elapsed=0.002, ended_at=now, waited=1.0) for job in claimed]
    with CaptureQueriesContext(connection) as queries:
        assert len(running.end(runs, process.pk, True, "default")) == 7
    upserts = [query for query in queries if "quebec_job_stats" in query["sql"]]
    assert len(upserts) == 1  # one statement for both groups
    by_class = {row["class_name"]: row for row in JobStat.objects.per_class()}
    assert (by_class[CHAOS]["finished"], by_class[SLEEP]["finished"]) == (5, 2)
    assert by_class[CHAOS]["run_buckets"][bucket(0.002)] == 5
    assert by_class[CHAOS]["wait_buckets"][bucket(1.0)] == 5
    assert by_class[CHAOS]["run_sum"] == pytest.approx(0.01)
    # A second batch in the same minute adds to the same rows.
    more = [ChaosJob.perform_later("ok") for _ in range(2)]
    claimed = running.claim("default", ["*"], 10, process.pk)
    running.end(
        [Run(job, Outcome(FINISHED), elapsed=0.002, ended_at=now, waited=1.0) for job in claimed],
        process.pk,
        True,
        "default",
    )
    assert len(more) == 2 and JobStat.objects.filter(class_name=CHAOS).get().finished == 7


@pytest.mark.parametrize("with_claim", [False, True], ids=["end", "end-and-claim"])
def test_runs_whose_claims_are_gone_are_not_counted(process, with_claim):
    ours, taken = ChaosJob.perform_later("ok"), ChaosJob.perform_later("ok")
    claimed = running.claim("default", ["*"], 10, process.pk)
    other = Process.objects.register("Worker", "other")
    ClaimedExecution.objects.filter(job_id=taken.id).update(process_id=other.pk)
    runs = [Run(job, Outcome(FINISHED), elapsed=0.01, waited=0.01) for job in claimed]
    # With a claim, PostgreSQL ends and claims in one statement, which adds rollups only when
    # every claim was ours; the lifecycle then adds those of the runs it recorded.
    recorded = running.end_and_claim("default", runs, process.pk, True, ["*"], 10 if with_claim else 0)[0]
    assert [run.job.pk for run in recorded] == [ours.id]
    assert JobStat.objects.totals()["finished"] == 1


def test_ending_and_claiming_together_adds_the_rollups(process):
    for _ in range(3):
        ChaosJob.perform_later("ok")
    claimed = running.claim("default", ["*"], 10, process.pk)
    runs = [Run(job, Outcome(FINISHED), elapsed=0.01, waited=0.01) for job in claimed]
    recorded, _ = running.end_and_claim("default", runs, process.pk, True, ["*"], 10)
    assert len(recorded) == 3 and JobStat.objects.totals()["finished"] == 3


def test_a_worker_s_buffer_holds_the_rollups_until_its_next_end_or_claim_writes_them(process):
    for _ in range(3):
        ChaosJob.perform_later("ok")
    claimed = running.claim("default", ["*"], 2, process.pk)
    buffer = stats.Buffer(seconds=3600)
    runs = [Run(job, Outcome(FINISHED), elapsed=0.01, waited=0.01) for job in claimed]
    with CaptureQueriesContext(connection) as queries:
        recorded, [last] = running.end_and_claim("default", runs, process.pk, True, ["*"], 10, buffer=buffer)
    assert len(recorded) == 2 and not JobStat.objects.exists()  # held, not written
    if connection.vendor == "postgresql":
        assert len(queries) == 1  # the end and the claim: one statement
    buffer.seconds = 0  # due: the next end writes what is held, with its own runs held after
    with CaptureQueriesContext(connection) as queries:
        running.end_and_claim(
            "default", [Run(last, Outcome(FINISHED), waited=0.0)], process.pk, True, ["*"], 0, buffer=buffer
        )
    assert JobStat.objects.totals()["finished"] == 2
    if connection.vendor == "postgresql":
        assert len(queries) == 1  # the upsert rides in the statement
    buffer.write("default")
    assert JobStat.objects.totals()["finished"] == 3


def test_rollups_a_failed_write_took_are_held_again():
    buffer = stats.Buffer(seconds=0)
    now = timezone.now()
    buffer.put_back([(now, "default", CHAOS, *([1] * len(SUMMED)))])
    rows = buffer.take()
    assert rows and not buffer.take()
    buffer.put_back(rows)
    buffer.put_back(rows)
    [(_, _, _, *values)] = buffer.take(everything=True)
    assert values == [2] * len(SUMMED)


def test_a_worker_that_stops_writes_the_rollups_it_held(start):
    handles = [ChaosJob.perform_later("ok") for _ in range(4)]
    worker = start()
    wait_until(lambda: finished(*handles), message="the jobs")
    worker.rollups.seconds = 3600  # nothing more is written while it runs
    more = [ChaosJob.perform_later("ok") for _ in range(3)]
    wait_until(lambda: finished(*more), message="the jobs enqueued later")
    worker.stop()
    worker.join(10)
    assert JobStat.objects.filter(class_name=CHAOS).totals()["finished"] == 7


def test_no_rollups_when_stats_are_off(process, settings):
    settings.QUEBEC = {"stats": False}
    ChaosJob.perform_later("ok")
    [job] = running.claim("default", ["*"], 10, process.pk)
    running.end([Run(job, Outcome(FINISHED), waited=0.0)], process.pk, True, "default")
    assert not JobStat.objects.exists()


def test_the_dispatcher_prunes_rollups_past_stats_retention_and_keeps_them_in_the_totals(start):
    now = timezone.now().replace(second=0, microsecond=0)
    for age in (timedelta(hours=3), timedelta(hours=2), timedelta(seconds=0)):
        JobStat.objects.create(minute=now - age, queue_name="default", class_name=CHAOS, finished=1, run_b03=1)
    start(Dispatcher, stats_retention=3600)
    wait_until(lambda: JobStat.objects.count() == 1, message="the old rollups to be pruned")
    assert JobStat.objects.get().minute == now
    # The counters since the start still hold what was pruned.
    [total] = totals_since_start()
    assert (total["finished"], total["run_buckets"][3]) == (3, 3)


def test_folding_adds_each_minute_to_the_totals_once():
    now = timezone.now().replace(second=0, microsecond=0)
    for age in (60, 30, 10, 2, 0):
        JobStat.objects.create(minute=now - timedelta(minutes=age), queue_name="q", class_name=CHAOS, finished=1)
    JobStat.objects.create(minute=now - timedelta(minutes=30), queue_name="q", class_name=SLEEP, failed=2)
    assert stats.fold("default", now) == now - stats.FOLD_LAG
    assert stats.fold("default", now) == now - stats.FOLD_LAG  # nothing new: nothing added
    folded = {row.class_name: row for row in JobStatTotal.objects.exclude(class_name="")}
    assert (folded[CHAOS].finished, folded[SLEEP].failed) == (3, 2)
    assert {row["class_name"]: row["finished"] + row["failed"] for row in totals_since_start()} == {CHAOS: 5, SLEEP: 2}
    # A later fold takes the minutes that have ended since, and only those.
    stats.fold("default", now + timedelta(minutes=10))
    assert JobStatTotal.objects.get(class_name=CHAOS).finished == 5
    assert {row["class_name"]: row["finished"] for row in totals_since_start()}[CHAOS] == 5


def test_percentiles_interpolate_inside_a_bucket():
    buckets = [0] * (len(BOUNDS) + 1)
    assert percentile(buckets, 0.5) is None
    buckets[bucket(0.75)] = 10  # (0.5, 1.0]
    assert percentile(buckets, 0.5) == pytest.approx(0.75)
    assert percentile(buckets, 1.0) == pytest.approx(1.0)
    buckets[-1] = 90  # longer than the last bound: the last bound is all the histogram knows
    assert percentile(buckets, 0.95) == BOUNDS[-1]


def test_the_read_api_sums_rows_per_class_queue_and_minute():
    now = timezone.now().replace(second=0, microsecond=0)
    rows = [
        (now - timedelta(minutes=2), "a", CHAOS, 1),
        (now - timedelta(minutes=1), "a", CHAOS, 2),
        (now - timedelta(minutes=1), "b", SLEEP, 4),
        (now - timedelta(days=2), "a", CHAOS, 100),
    ]
    for minute, queue, class_name, count in rows:
        JobStat.objects.create(minute=minute, queue_name=queue, class_name=class_name, finished=count)
    recent = JobStat.objects.since(now - timedelta(hours=1))
    assert {row["class_name"]: row["finished"] for row in recent.per_class()} == {CHAOS: 3, SLEEP: 4}
    assert {row["queue_name"]: row["finished"] for row in recent.per_queue()} == {"a": 3, "b": 4}
    assert [row["finished"] for row in recent.per_minute()] == [1, 6]
    assert recent.totals()["finished"] == 7
    assert JobStat.objects.between(now - timedelta(days=3), now - timedelta(days=1)).totals()["finished"] == 100
    assert JobStat.objects.since(now + timedelta(minutes=1)).totals()["finished"] == 0


@pytest.fixture
def process():
    return Process.objects.register("Worker", "stats-worker")


def test_the_settings_default_validate_and_come_from_the_environment(monkeypatch, settings_config):
    assert (conf.get().stats, conf.get().stats_retention) == (True, 14 * 86400)
    monkeypatch.setenv("QUEBEC_STATS_RETENTION", "2h")
    monkeypatch.setenv("QUEBEC_STATS", "false")
    conf._cached.cache_clear()
    assert (conf.get().stats, conf.get().stats_retention) == (False, 7200)
    monkeypatch.delenv("QUEBEC_STATS_RETENTION")
    monkeypatch.delenv("QUEBEC_STATS")
    for bad in ({"stats_retention": 0}, {"stats_retention": "-1h"}, {"stats_retention": "soon"}, {"stats": "maybe"}):
        with pytest.raises(conf.ConfigError, match=next(iter(bad))):
            settings_config(**bad)
            conf._cached.cache_clear()
            conf.get()
