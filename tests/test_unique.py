"""Unique jobs as their users see them: quebec/unique.py and its enqueue (quebec/enqueue.py)."""

from datetime import timedelta

import pytest
from django.db import connection, transaction

import quebec
from quebec import signals
from quebec.lifecycle import queueing
from quebec.models import Job, ScheduledExecution, UniqueKey
from tests.testapp.jobs import (
    RecordJob,
    UniqueArgumentsJob,
    UniqueRaisingJob,
    UniqueSyncJob,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _callbacks():
    UniqueSyncJob.enqueued.clear()


def held_keys():
    return set(UniqueKey.objects.values_list("key", flat=True))


def test_a_duplicate_writes_nothing_and_returns_the_holders_handle():
    first = UniqueSyncJob.perform_later(7)
    again = UniqueSyncJob.perform_later(7, note="other keywords, same key")
    other = UniqueSyncJob.perform_later(8)
    assert (first.duplicate, again.duplicate, other.duplicate) == (False, True, False)
    assert again.id == first.id != other.id
    assert again.status == "ready" and again.active_job_id == first.active_job_id
    assert Job.objects.filter(class_name__endswith="UniqueSyncJob").count() == 2
    assert Job.objects.get(pk=first.id).unique_key == "UniqueSyncJob/7"
    assert held_keys() == {"UniqueSyncJob/7", "UniqueSyncJob/8"}


def test_the_default_key_is_the_class_and_its_arguments_whatever_the_keyword_order():
    first = UniqueArgumentsJob.perform_later(1, b=2, c={"y": 1, "x": 2})
    same = UniqueArgumentsJob.perform_later(1, c={"x": 2, "y": 1}, b=2)
    different = UniqueArgumentsJob.perform_later(2, b=2, c={"y": 1, "x": 2})
    assert same.duplicate and same.id == first.id
    assert not different.duplicate
    assert (
        Job.objects.get(pk=first.id).unique_key == 'UniqueArgumentsJob/{"args":[1],"kwargs":{"b":2,"c":{"x":2,"y":1}}}'
    )
    long = UniqueArgumentsJob.perform_later("x" * 1000)
    assert UniqueArgumentsJob.perform_later("x" * 1000).id == long.id
    stored = Job.objects.get(pk=long.id).unique_key
    assert stored.startswith("UniqueArgumentsJob/sha256:") and len(stored) == len("UniqueArgumentsJob/sha256:") + 64


def test_bulk_writes_each_key_once_and_names_the_duplicates():
    UniqueSyncJob.perform_later(1)
    handles = quebec.perform_all_later(
        [UniqueSyncJob.build(account) for account in (1, 2, 2, 3, 1, 3)] + [RecordJob.build("plain")]
    )
    assert [handle.duplicate for handle in handles] == [True, False, True, False, True, True, False]
    ids = [handle.id for handle in handles]
    assert ids[0] == ids[4] and ids[1] == ids[2] and ids[3] == ids[5]
    assert len(set(ids)) == 4
    assert Job.objects.count() == 4


def test_raise_refuses_a_duplicate_and_writes_nothing_of_the_call():
    holder = UniqueRaisingJob.perform_later(1)
    with pytest.raises(quebec.DuplicateJob) as raised:
        quebec.perform_all_later([RecordJob.build("kept?"), UniqueRaisingJob.build(2), UniqueRaisingJob.build(1)])
    assert raised.value.key == "UniqueRaisingJob/1" and raised.value.job_id == holder.id
    assert f"job #{holder.id}" in str(raised.value)
    with pytest.raises(quebec.DuplicateJob, match="an earlier job of the same call"):
        quebec.perform_all_later([UniqueRaisingJob.build(3), UniqueRaisingJob.build(3)])
    assert Job.objects.count() == 1 and held_keys() == {"UniqueRaisingJob/1"}


def test_raise_inside_the_enqueues_transaction_rolls_it_back():
    # The key is taken between the look before the callbacks and the enqueue's transaction.
    pending = UniqueRaisingJob.build(1)
    other = UniqueRaisingJob.build(2)
    holder = quebec.perform_all_later([UniqueRaisingJob.build(1)])[0]
    with pytest.raises(quebec.DuplicateJob) as raised:
        queueing.enqueue([other.to_model(), pending.to_model()], "default")
    assert raised.value.job_id == holder.id
    assert held_keys() == {"UniqueRaisingJob/1"} and Job.objects.count() == 1


def test_callbacks_and_the_enqueued_signal_skip_duplicates(django_capture_on_commit_callbacks):
    sent = []

    def receive(sender, job, **kwargs):
        sent.append(job.pk)

    signals.job_enqueued.connect(receive)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            first = UniqueSyncJob.perform_later(1)
            UniqueSyncJob.perform_later(1)
            handles = quebec.perform_all_later([UniqueSyncJob.build(2), UniqueSyncJob.build(2), UniqueSyncJob.build(1)])
    finally:
        signals.job_enqueued.disconnect(receive)
    assert UniqueSyncJob.enqueued == [
        ("before", ([1], {})),
        ("after", first.id),
        ("before", ([2], {})),
        ("after", handles[0].id),
    ]
    assert sent == [first.id, handles[0].id]


def test_a_duplicate_that_loses_the_race_runs_before_enqueue_but_not_after_enqueue():
    pending = UniqueSyncJob.build(5)
    # Another enqueue takes the key once this one has looked, before its transaction.
    original = pending.job.before_enqueue

    def before_enqueue():
        original()
        quebec.perform_all_later([UniqueSyncJob.build(5)])

    pending.job.before_enqueue = before_enqueue
    [handle] = quebec.perform_all_later([pending])
    holder = Job.objects.get(unique_key="UniqueSyncJob/5")
    assert handle.duplicate and handle.id == holder.pk
    assert [entry[0] for entry in UniqueSyncJob.enqueued] == ["before", "before", "after"]


def test_a_scheduled_job_holds_its_key_while_it_waits_and_once_due():
    later = UniqueSyncJob.set(wait=timedelta(hours=1)).perform_later(1)
    assert later.status == "scheduled"
    assert UniqueSyncJob.perform_later(1).id == later.id
    assert UniqueSyncJob.set(wait=60).perform_later(1).duplicate
    ScheduledExecution.objects.update(scheduled_at=later.scheduled_at - timedelta(hours=2))
    assert queueing.dispatch_due("default", 10) == 1
    assert later.status == "ready"
    assert UniqueSyncJob.perform_later(1).id == later.id
    assert held_keys() == {"UniqueSyncJob/1"}


def test_a_key_of_none_means_not_unique():
    class MaybeUniqueJob(quebec.BaseClass):
        unique_until = "finished"

        def unique_key(self, account):
            return account or None

        def perform(self, account):
            pass

    assert not MaybeUniqueJob.perform_later(None).duplicate
    assert not MaybeUniqueJob.perform_later(None).duplicate
    assert MaybeUniqueJob.perform_later("a").id == MaybeUniqueJob.perform_later("a").id


def test_enqueue_after_commit_takes_the_key_when_the_transaction_commits(django_capture_on_commit_callbacks):
    class AfterCommitJob(UniqueSyncJob):
        enqueue_after_commit = True

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        first = AfterCommitJob.perform_later(1)
        second = AfterCommitJob.perform_later(1)
        assert first.id is None and second.id is None  # nothing is written before the commit
    assert not first.duplicate and first.id is not None
    assert second.duplicate and second.id == first.id
    assert AfterCommitJob.perform_later(1).duplicate  # seen before its callbacks, now


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_inside_a_rolled_back_transaction_leaves_the_key_free():
    with pytest.raises(RuntimeError), transaction.atomic():
        UniqueSyncJob.perform_later(1)
        raise RuntimeError("the view failed")
    assert held_keys() == set()
    assert not UniqueSyncJob.perform_later(1).duplicate


def test_the_key_is_checked_like_every_stored_key():
    with pytest.raises(ValueError, match="unique key 'UniqueSyncJob/xxx.*is 1014 characters"):
        UniqueSyncJob.perform_later("x" * 1000)
    if connection.vendor == "postgresql":
        with pytest.raises(ValueError, match="unique key .* contains a NUL character"):
            UniqueSyncJob.perform_later("a\x00b")
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"unique_key": lambda self: "k"}, "defines unique_key or unique_for but no unique_until"),
        ({"unique_for": 60}, "defines unique_key or unique_for but no unique_until"),
        ({"unique_until": "done"}, "unique_until must be 'finished' or 'started'"),
        ({"unique_until": "finished", "unique_for": 0}, "unique_for must be positive"),
        ({"unique_until": "finished", "unique_on_conflict": "skip"}, "quebec.UniqueConflict.Skip or .Raise"),
    ],
)
def test_settings_that_cannot_work_are_refused_when_the_class_is_defined(attributes, message):
    with pytest.raises(TypeError, match=message):
        type("BadUniqueJob", (quebec.BaseClass,), {"perform": lambda self: None, **attributes})
