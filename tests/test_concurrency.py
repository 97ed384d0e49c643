"""Concurrency keys, per-queue limits, rate limits and exclusive jobs, across real processes."""

import os
import signal
from collections import Counter, defaultdict
from datetime import timedelta

import pytest

import quebec
from quebec.models import BlockedExecution, Job, Process, ScheduledExecution, Semaphore
from tests.conftest import wait_until
from tests.testapp.jobs import (
    DropOnConflictJob,
    GroupedSoloJob,
    LoneJob,
    PairsJob,
    RateLimitedDropJob,
    RateLimitedJob,
    SoloJob,
    SpanJob,
    TriosJob,
)
from tests.testapp.models import JobRun

FAST = {"QUEBEC_WORKER_POLLING_INTERVAL": "0.02", "QUEBEC_DISPATCHER_POLLING_INTERVAL": "0.1"}


def spans(**filters):
    return [run.value for run in JobRun.objects.filter(label="span", **filters)]


def max_overlap(intervals):
    """The largest number of intervals running at one instant."""
    events = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda event: (event[0], event[1]),
    )
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def overlap_by(key_name):
    grouped = defaultdict(list)
    for span in spans():
        grouped[span[key_name]].append((span["start"], span["end"]))
    return {key: max_overlap(intervals) for key, intervals in grouped.items()}


def at_rest():
    return not Job.objects.with_status().filter(status__in=["ready", "claimed", "scheduled", "blocked"]).exists()


def workers(quebec_run, count, threads=4, env=None):
    started = [quebec_run(env={**FAST, "QUEBEC_WORKER_THREADS": str(threads), **(env or {})}) for _ in range(count)]
    wait_until(lambda: Process.objects.filter(kind="Worker").count() == count, timeout=60)
    return started


# Definitions and enqueueing


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"concurrency_limit": 2}, "sets concurrency_limit but no concurrency_key"),
        ({"concurrency_limit": 0, "concurrency_key": lambda self: "k"}, "concurrency_limit must be a positive"),
        ({"rate_limit_max": 5}, "needs both rate_limit_max and rate_limit_duration"),
        ({"rate_limit_max": 5, "rate_limit_duration": timedelta(milliseconds=500)}, "at least one second"),
        ({"rate_limit_max": 5, "rate_limit_duration": 2}, "must be a datetime.timedelta"),
        ({"concurrency_on_conflict": "block"}, "quebec.ConcurrencyConflict"),
    ],
)
def test_impossible_limits_are_refused_at_class_definition(attributes, message):
    with pytest.raises(TypeError, match=message):
        type("BadJob", (quebec.BaseClass,), {"perform": lambda self: None, **attributes})


@pytest.mark.django_db
def test_the_key_is_stored_and_a_full_key_blocks_or_discards():
    first, second = SoloJob.perform_later("k"), SoloJob.perform_later("k")
    assert Job.objects.get(pk=first.id).concurrency_key == "SoloJob/k"
    assert (first.status, second.status) == ("ready", "blocked")
    assert BlockedExecution.objects.get().concurrency_key == "SoloJob/k"
    assert GroupedSoloJob.perform_later("k").status == "ready"  # another key: "shared/k"
    assert Semaphore.objects.get(key="shared/k").value == 0
    kept, dropped = DropOnConflictJob.perform_later("d"), DropOnConflictJob.perform_later("d")
    assert (kept.status, dropped.status) == ("ready", "discarded")
    assert SpanJob.perform_later("free").status == "ready"


# Across processes


@pytest.mark.subprocess
@pytest.mark.django_db(transaction=True)
def test_keys_never_run_more_than_their_limit(quebec_run):
    workers(quebec_run, 3)
    quebec.perform_all_later([PairsJob.build("pairs") for _ in range(30)] + [SoloJob.build("solo") for _ in range(30)])
    wait_until(at_rest, timeout=120, interval=0.2)
    overlaps = overlap_by("key")
    assert overlaps["pairs"] <= 2 and overlaps["solo"] == 1, overlaps
    assert Counter(JobRun.objects.values_list("job_id", flat=True)).most_common(1)[0][1] == 1
    assert JobRun.objects.count() == 60


@pytest.mark.subprocess
@pytest.mark.django_db(transaction=True)
def test_a_queue_limit_holds_across_processes_without_starving_other_queues(quebec_run):
    workers(quebec_run, 3, env={"QUEBEC_QUEUE_CONCURRENCY": '{"reports": 2}'})
    quebec.perform_all_later(
        [SpanJob.set(queue="reports").build("r", 0.1) for _ in range(20)]
        + [SpanJob.set(queue="default").build("d", 0.1) for _ in range(20)]
    )
    wait_until(at_rest, timeout=120, interval=0.2)
    overlaps = overlap_by("queue")
    assert overlaps["reports"] <= 2, overlaps
    assert overlaps["default"] > 2, "the default queue should have used the free threads"
    assert JobRun.objects.count() == 40


@pytest.mark.subprocess
@pytest.mark.django_db(transaction=True)
def test_a_killed_holder_frees_its_key_after_the_ttl(quebec_run):
    env = {"QUEBEC_DISPATCHER_CONCURRENCY_MAINTENANCE_INTERVAL": "0.5"}
    [victim] = workers(quebec_run, 1, env=env)
    holder = SoloJob.perform_later("held", 60)
    waiting = SoloJob.perform_later("held", 0)
    wait_until(lambda: holder.status == "claimed")
    assert waiting.status == "blocked"
    os.killpg(victim.popen.pid, signal.SIGKILL)
    victim.wait()
    quebec_run(env={**FAST, **env})
    wait_until(lambda: waiting.status == "finished", timeout=30, message="the blocked job to run after the TTL")


@pytest.mark.subprocess
@pytest.mark.django_db(transaction=True)
def test_rate_limit_holds_a_sliding_window_across_processes(quebec_run):
    workers(quebec_run, 3)
    handles = quebec.perform_all_later(RateLimitedJob.build("rate", 0) for _ in range(40))
    wait_until(at_rest, timeout=120, interval=0.2)
    starts = sorted(span["start"] for span in spans())
    assert len(starts) == 40 and all(handle.status == "finished" for handle in handles)
    # Starts are measured inside perform, after the limiter admitted them: on a loaded machine a
    # thread may start late, hence the allowance. A broken limiter crowds far more than this.
    crowded = [starts[i : i + 6] for i in range(len(starts) - 5) if starts[i + 5] - starts[i] < 2 - 0.25]
    assert not crowded, f"more than 5 starts within 2 seconds: {crowded[:1]}"
    assert ScheduledExecution.objects.count() == 0


@pytest.mark.subprocess
@pytest.mark.django_db(transaction=True)
def test_rate_limit_discard_drops_the_excess_visibly(quebec_run):
    handles = quebec.perform_all_later(RateLimitedDropJob.build("burst", 0) for _ in range(12))
    workers(quebec_run, 1)
    wait_until(at_rest, timeout=60, interval=0.2)
    statuses = Counter(handle.status for handle in handles)
    assert statuses == {"finished": 5, "discarded": 7}


@pytest.mark.subprocess
@pytest.mark.django_db(transaction=True)
def test_an_exclusive_job_runs_alone_in_its_process(quebec_run):
    quebec.perform_all_later(
        [SpanJob.build("before", 0.2) for _ in range(8)]
        + [LoneJob.build("lone", 0.3)]
        + [SpanJob.build("after", 0.2) for _ in range(8)]
    )
    workers(quebec_run, 1, threads=4)
    wait_until(at_rest, timeout=60, interval=0.2)
    [lone] = [span for span in spans() if span["key"] == "lone"]
    others = [span for span in spans() if span["key"] != "lone"]
    assert len(others) == 16
    overlapping = [span for span in others if span["start"] < lone["end"] and span["end"] > lone["start"]]
    assert not overlapping, f"jobs ran beside the exclusive one: {overlapping}"


@pytest.mark.subprocess
@pytest.mark.django_db(transaction=True)
def test_no_deadlock_with_many_keys_and_mixed_limits(quebec_run):
    classes = [SoloJob, PairsJob, TriosJob]
    jobs = [classes[index % 3].build(f"key-{index % 20}", 0) for index in range(3000)]
    handles = quebec.perform_all_later(jobs)
    workers(quebec_run, 4, threads=4)
    wait_until(at_rest, timeout=300, interval=0.5, message="3,000 jobs to drain")
    assert Counter(handle.status for handle in handles) == {"finished": 3000}
    assert JobRun.objects.count() == 3000
    assert not BlockedExecution.objects.exists()


@pytest.mark.django_db
def test_an_unblocked_job_runs_over_the_limit_and_the_accounting_recovers():
    from quebec.lifecycle import queueing, running
    from quebec.models import Process
    from tests.lifecycle_helpers import finish

    holder, waiting, third = (SoloJob.perform_later("u") for _ in range(3))
    assert queueing.unblock(BlockedExecution.objects.filter(job_id=waiting.id)) == 1
    assert (holder.status, waiting.status, third.status) == ("ready", "ready", "blocked")
    process = Process.objects.register("Worker", "w")
    for job in running.claim("default", ["*"], 10, process.pk):
        job.executions += 1
        finish(job, process)
    # Both slots given back: the semaphore is at its limit again and the third job got in.
    assert third.status == "ready"
    assert Semaphore.objects.get(key="SoloJob/u").value == 0
