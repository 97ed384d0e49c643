"""What the database cannot store is refused in Python at enqueue, naming the value, in every
mode: the caller hears of it, and with ``enqueue_after_commit`` its transaction does not commit."""

from datetime import timedelta

import pytest
from django.db import connection, transaction

import quebec
from quebec.enqueue import PRIORITY_RANGE
from quebec.lifecycle.concurrency import rate_limit_delay
from quebec.models import Job, RateLimitStart
from tests.testapp.jobs import EchoArgumentsJob, PairsJob, RecordJob
from tests.testapp.models import Account

pytestmark = pytest.mark.django_db(transaction=True)
on_postgresql = pytest.mark.skipif("connection.vendor != 'postgresql'")
not_on_postgresql = pytest.mark.skipif("connection.vendor == 'postgresql'")
LONG_KEY = "k" * 300


def test_an_over_long_concurrency_key_fails_the_call_and_its_transaction_after_commit(settings):
    # The job would be written after the commit and refused there: the caller's data kept, the job lost.
    settings.QUEBEC = {"enqueue_after_commit": True}
    with pytest.raises(
        ValueError,
        match=r"PairsJob: concurrency key 'PairsJob/kkk.* is 309 characters; "
        r"the database stores at most 255",
    ):
        with transaction.atomic():
            Account.objects.create(name="paid")
            PairsJob.perform_later(LONG_KEY)
    assert not Account.objects.exists()
    assert not Job.objects.exists()


def test_an_over_long_queue_name_is_refused_before_anything_is_written():
    with pytest.raises(ValueError, match="queue name must be a non-empty string of at most 255"):
        RecordJob.set(queue="q" * 256).perform_later()
    assert not Job.objects.exists()


@on_postgresql
def test_a_nul_character_in_an_argument_is_refused_on_postgresql_naming_where_it_is(settings):
    settings.QUEBEC = {"enqueue_after_commit": True}
    with pytest.raises(
        ValueError,
        match=r"EchoArgumentsJob: argument kwargs\['rows'\]\[1\]\['name'\] contains a NUL "
        r"character, which PostgreSQL cannot store",
    ):
        with transaction.atomic():
            Account.objects.create(name="paid")
            EchoArgumentsJob.perform_later(rows=[{"name": "fine"}, {"name": "bad\x00byte"}])
    assert not Account.objects.exists()
    with pytest.raises(ValueError, match=r"argument args\[0\] \(the key 'a\\x00'\) contains a NUL"):
        EchoArgumentsJob.perform_later({"a\x00": 1})
    with pytest.raises(ValueError, match="concurrency key 'PairsJob/a\\\\x00b' contains a NUL"):
        PairsJob.perform_later("a\x00b")
    with pytest.raises(ValueError, match="queue name 'x\\\\x00' contains a NUL"):
        RecordJob.set(queue="x\x00").perform_later()
    assert not Job.objects.exists()


def test_a_backslash_that_only_looks_like_an_escaped_nul_is_stored():
    handle = EchoArgumentsJob.perform_later("a literal \\u0000 is six characters")
    assert Job.objects.get(pk=handle.id).arguments["args"] == ["a literal \\u0000 is six characters"]


@not_on_postgresql
def test_databases_that_store_nul_characters_keep_them():
    handle = EchoArgumentsJob.perform_later("bad\x00byte", key="x\x00")
    assert Job.objects.get(pk=handle.id).arguments == {"args": ["bad\x00byte"], "kwargs": {"key": "x\x00"}}


def test_arguments_over_max_arguments_bytes_are_refused_with_their_size(settings):
    with pytest.raises(
        ValueError,
        match=r"EchoArgumentsJob: arguments are 2,097,\d{3} bytes as JSON, "
        r"over max_arguments_bytes \(1,048,576\)",
    ):
        EchoArgumentsJob.perform_later("x" * (2 * 1024 * 1024))
    settings.QUEBEC = {"max_arguments_bytes": 100}
    document = '{"args": ["%s"], "kwargs": {}}'
    fits = "é" * ((100 - len(document % "")) // 2)  # two bytes each in UTF-8
    EchoArgumentsJob.perform_later(fits)
    with pytest.raises(ValueError, match="arguments are 101 bytes as JSON"):
        EchoArgumentsJob.perform_later(fits + "x")
    assert Job.objects.count() == 1


def test_one_unstorable_job_in_a_bulk_enqueue_writes_none_and_runs_no_callback():
    called = []

    class WatchedJob(quebec.BaseClass):
        def before_enqueue(self):
            called.append(self.arguments)

        def perform(self):
            pass

    with pytest.raises(ValueError, match="concurrency key"):
        quebec.perform_all_later([WatchedJob.build(), PairsJob.build(LONG_KEY), RecordJob.build()])
    assert not Job.objects.exists()
    assert called == []


@pytest.mark.parametrize("priority", PRIORITY_RANGE)
def test_the_extreme_priorities_are_stored_one_at_a_time_and_in_bulk(priority):
    single = RecordJob.set(priority=priority).perform_later()
    bulk = quebec.perform_all_later([RecordJob.set(priority=priority).build() for _ in range(2)])
    assert [Job.objects.get(pk=handle.id).priority for handle in (single, *bulk)] == [priority] * 3


def test_a_priority_out_of_range_is_refused():
    with pytest.raises(
        ValueError, match=r"priority must be an integer between -2147483648 and 2147483647, got 2147483648"
    ):
        RecordJob.set(priority=2**31).perform_later()


class ManyBucketsJob(quebec.BaseClass):
    rate_limit_max = 1
    rate_limit_duration = timedelta(seconds=10)

    def rate_limit_key(self, name):
        return name

    def perform(self, name):
        pass


def test_an_over_long_rate_limit_bucket_is_refused_naming_it():
    # The bucket is the job's own choice, made as it starts: it fails that job, saying why.
    with pytest.raises(ValueError, match=r"ManyBucketsJob: rate limit bucket 'ManyBucketsJob/kkk.* is 315 characters"):
        rate_limit_delay(ManyBucketsJob(), [LONG_KEY], {}, connection.alias)
    assert not RateLimitStart.objects.exists()
