"""Memory recycling's watch: quebec/processes/memory.py, on this very process."""

from quebec.processes.memory import MemoryWatch


def test_a_process_over_the_limit_is_confirmed_only_after_enough_samples_in_a_row():
    watch = MemoryWatch(limit_mb=1, confirmations=3, interval=0)
    assert [watch.over_limit() for _ in range(3)] == [False, False, True]
    assert watch.rss_mb > 1


def test_a_sample_under_the_limit_starts_the_count_again():
    watch = MemoryWatch(limit_mb=1, confirmations=2, interval=0)
    assert not watch.over_limit()
    watch.limit_mb = 10**6  # now far above this process's RSS
    assert not watch.over_limit() and watch.strikes == 0


def test_without_a_limit_it_only_reports():
    watch = MemoryWatch(limit_mb=None, confirmations=1, interval=0)
    assert not watch.over_limit()
    assert watch.metadata()["rss_mb"] > 0
