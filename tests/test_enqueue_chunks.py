"""``perform_all_later`` of more jobs than a chunk: read from a generator a chunk at a time, in
one transaction per database, with unique keys and callbacks as for a single chunk, and a
working memory that does not grow with the number of jobs."""

import gc
import tracemalloc

import pytest

import quebec
from quebec.enqueue import ENQUEUE_CHUNK
from quebec.models import Job, ReadyExecution
from tests.testapp.jobs import RecordJob, UniqueSyncJob

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_generator_of_several_chunks_is_written_in_order():
    count = 2 * ENQUEUE_CHUNK + 7
    handles = quebec.perform_all_later(RecordJob.build(index) for index in range(count))
    assert len(handles) == count
    ids = [handle.id for handle in handles]
    assert ids == sorted(ids) and len(set(ids)) == count
    assert Job.objects.count() == ReadyExecution.objects.count() == count
    last = Job.objects.get(pk=handles[-1].id)
    assert last.arguments["args"] == [count - 1]
    assert (handles[-1].class_name, handles[-1].queue_name, handles[-1].status) == (
        "tests.testapp.jobs.RecordJob",
        "default",
        "ready",
    )


def test_a_key_taken_in_an_early_chunk_makes_a_later_build_a_duplicate():
    UniqueSyncJob.enqueued.clear()

    def builds():
        yield UniqueSyncJob.build("account-1")
        for index in range(ENQUEUE_CHUNK + 10):
            yield RecordJob.build(index)
        yield UniqueSyncJob.build("account-1")  # in the second chunk
        yield UniqueSyncJob.build("account-2")

    handles = quebec.perform_all_later(builds())
    first, again, other = handles[0], handles[-2], handles[-1]
    assert not first.duplicate and again.duplicate and not other.duplicate
    assert again.id == first.id
    assert Job.objects.filter(class_name__endswith="UniqueSyncJob").count() == 2
    # before_enqueue ran for the two written; after_enqueue once each, after every chunk was written.
    befores = [event for event in UniqueSyncJob.enqueued if event[0] == "before"]
    afters = [event for event in UniqueSyncJob.enqueued if event[0] == "after"]
    assert len(befores) == 2 and sorted(afters) == sorted([("after", first.id), ("after", other.id)])
    assert UniqueSyncJob.enqueued.index(afters[0]) > UniqueSyncJob.enqueued.index(befores[-1])


def test_a_wrong_job_in_a_later_chunk_rolls_the_whole_call_back():
    def builds():
        for index in range(ENQUEUE_CHUNK + 5):
            yield RecordJob.build(index)
        yield RecordJob.build(object())  # refused: not storable

    with pytest.raises(TypeError):
        quebec.perform_all_later(builds())
    assert not Job.objects.exists()

    def not_built():
        for index in range(2 * ENQUEUE_CHUNK):
            yield RecordJob.build(index)
        yield RecordJob

    with pytest.raises(TypeError, match="JobClass.build"):
        quebec.perform_all_later(not_built())
    assert not Job.objects.exists()


def test_the_working_memory_does_not_grow_with_the_jobs():
    """What the call holds at its peak, beyond the handles it returns: about a chunk of built
    jobs, whether it enqueues five chunks or twenty."""

    def peak_beyond_handles(count):
        gc.collect()
        tracemalloc.start()
        try:
            handles = quebec.perform_all_later(RecordJob.build(index) for index in range(count))
            held, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(handles) == count
        return peak - held

    small = peak_beyond_handles(5 * ENQUEUE_CHUNK)
    large = peak_beyond_handles(20 * ENQUEUE_CHUNK)
    # Four times the jobs: the same working set, give or take the allocator (a call holding
    # every built job would need four times as much).
    assert large < 1.5 * small, (small, large)
