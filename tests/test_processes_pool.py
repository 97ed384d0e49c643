"""The worker's thread pool: quebec/processes/pool.py, with real threads and no database."""

import threading
import time

from quebec.processes.pool import Pool


def pool_of(size, run, **options):
    idle = threading.Semaphore(0)
    return Pool(size, run, on_idle=idle.release, name="test-pool", **options), idle


def test_items_beyond_the_threads_wait_and_count_as_in_flight():
    release, ran = threading.Event(), []
    pool, _ = pool_of(2, lambda item: (release.wait(5), ran.append(item)))
    for item in range(5):
        pool.post(item)
    assert pool.in_flight() == 5
    release.set()
    assert pool.drain(5) and pool.in_flight() == 0
    assert sorted(ran) == [0, 1, 2, 3, 4]
    pool.stop()


def test_cancel_waiting_takes_back_only_what_no_thread_started():
    started, release = threading.Event(), threading.Event()
    pool, _ = pool_of(1, lambda item: (started.set(), release.wait(5)))
    done = []
    pool.post("running")
    assert started.wait(5)
    pool.post("waiting-1", on_done=lambda: done.append("waiting-1"))
    pool.post("waiting-2")
    assert pool.cancel_waiting() == ["waiting-1", "waiting-2"]
    assert done == ["waiting-1"] and pool.in_flight() == 1
    release.set()
    assert pool.drain(5)
    pool.stop()


def test_an_item_that_waited_too_long_is_not_run_but_handed_back():
    release, ran, expired = threading.Event(), [], []
    pool, _ = pool_of(1, lambda item: (release.wait(5), ran.append(item)), max_wait=0.05, on_expired=expired.append)
    pool.post("first")
    pool.post("stale")
    time.sleep(0.1)
    release.set()
    assert pool.drain(5)
    assert ran == ["first"] and expired == ["stale"]
    pool.stop()


def test_an_error_in_a_thread_does_not_kill_it():
    ran = []

    def run(item):
        if item == "bad":
            raise RuntimeError("boom")
        ran.append(item)

    pool, _ = pool_of(1, run)
    pool.post("bad")
    pool.post("good")
    assert pool.drain(5) and ran == ["good"]
    pool.stop()
