"""A worker's claim budget and outbox, without threads or a database."""

import time

from quebec.processes import claiming
from quebec.processes.claiming import ClaimBudget, Outbox


def test_nothing_is_claimed_ahead_before_a_job_has_run():
    budget = ClaimBudget(threads=4, max_ahead_per_thread=40)
    assert budget.ahead() == 0
    assert budget.room(in_flight=0) == 4 and budget.room(in_flight=3) == 1 and budget.room(in_flight=4) == 0


def test_short_jobs_are_claimed_ahead_up_to_the_setting():
    budget = ClaimBudget(threads=4, max_ahead_per_thread=40)
    budget.ran(0.0001)
    assert budget.ahead() == 4 * 40  # 500 per thread would fit in CLAIM_AHEAD_WAIT; capped at 40
    budget.ran(0.01)  # the moving average climbs to about 2 ms: 25 per thread fit
    assert budget.ahead() == 4 * int(claiming.CLAIM_AHEAD_WAIT / budget.average_run)
    assert budget.ahead(queues_limited=True) == 0


def test_long_jobs_are_claimed_only_for_idle_threads():
    budget = ClaimBudget(threads=2, max_ahead_per_thread=40)
    budget.ran(1.0)
    assert budget.ahead() == 0
    assert budget.room(in_flight=1) == 1


def test_a_stalled_budget_claims_nothing_ahead_until_a_thread_frees_up():
    budget = ClaimBudget(threads=2, max_ahead_per_thread=40)
    budget.ran(0.0001)
    budget.stalled = True
    assert budget.ahead() == 0
    budget.stalled = False
    assert budget.ahead() == 80


def test_with_jobs_claimed_ahead_the_room_waits_for_a_batch():
    budget = ClaimBudget(threads=4, max_ahead_per_thread=40)
    budget.ran(0.0001)
    total = 4 + 160
    assert budget.room(in_flight=total - 3) == 0  # three free places: less than one per thread
    assert budget.room(in_flight=total - 4) == 4


def test_the_outbox_keeps_order_and_takes_back_failed_batches():
    outbox = Outbox()
    assert outbox.empty()
    outbox.add_run("a")
    outbox.add_run("b")
    taken = outbox.take_runs()
    assert taken == ["a", "b"] and outbox.empty()
    outbox.add_run("c")
    outbox.put_back_runs(taken)
    assert outbox.take_runs() == ["a", "b", "c"]
    outbox.add_releases(["x"])
    outbox.put_back_releases(["w"])
    assert not outbox.empty() and outbox.take_releases() == ["w", "x"] and outbox.empty()


def test_runs_wait_for_the_next_claim_only_briefly():
    outbox = Outbox()
    outbox.take_runs()
    assert outbox.runs_can_wait(polling_interval=1.0)
    outbox.taken_at = time.monotonic() - claiming.FINISH_RECORD_DELAY - 0.01
    assert not outbox.runs_can_wait(polling_interval=1.0)
    outbox.take_runs()
    assert not outbox.runs_can_wait(polling_interval=0.0)  # a poll every 0 s: no waiting
