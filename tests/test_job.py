from datetime import datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone

import quebec
from quebec.models import Job, ReadyExecution, ScheduledExecution
from tests.testapp.jobs import AsyncRecordJob, AttributesJob, EchoArgumentsJob, RecordJob
from tests.testapp.models import JobRun

pytestmark = pytest.mark.django_db


def test_perform_later_writes_a_job_and_a_ready_execution():
    handle = RecordJob.perform_later("hello", value={"n": 1})
    job = Job.objects.get(pk=handle.id)
    assert (job.class_name, job.queue_name, job.priority) == ("tests.testapp.jobs.RecordJob", "default", 0)
    assert job.arguments == {"args": ["hello"], "kwargs": {"value": {"n": 1}}}
    ready = ReadyExecution.objects.get(job=job)
    assert (ready.queue_name, ready.priority) == ("default", 0)
    assert handle.status == "ready"
    assert handle.active_job_id == job.active_job_id
    assert handle.queue_name == "default" and handle.priority == 0 and handle.scheduled_at is None


def test_set_wait_schedules_the_job():
    before = timezone.now()
    handle = RecordJob.set(wait=60).perform_later()
    assert handle.status == "scheduled"
    scheduled = ScheduledExecution.objects.get(job_id=handle.id)
    assert before + timedelta(seconds=60) <= scheduled.scheduled_at <= timezone.now() + timedelta(seconds=60)
    assert RecordJob.set(wait=timedelta(hours=1)).perform_later().status == "scheduled"


def test_wait_until_accepts_aware_and_naive_datetimes():
    aware = timezone.now() + timedelta(days=1)
    assert RecordJob.set(wait_until=aware).perform_later().scheduled_at == aware
    naive = datetime.now() + timedelta(days=1)
    assert RecordJob.set(wait_until=naive).perform_later().scheduled_at == timezone.make_aware(naive)


def test_a_time_in_the_past_is_ready_at_once():
    handle = RecordJob.set(wait_until=timezone.now() - timedelta(minutes=5)).perform_later()
    assert handle.status == "ready"


def test_set_overrides_queue_and_priority_and_class_attributes_apply():
    handle = RecordJob.set(queue="critical", priority=-3).perform_later()
    assert (handle.queue_name, handle.priority) == ("critical", -3)
    assert ReadyExecution.objects.get(job_id=handle.id).priority == -3
    handle = AttributesJob.perform_later()
    assert (handle.queue_name, handle.priority) == ("attributes", 7)


def test_queue_as_may_be_a_callable_of_the_arguments():
    class RoutedJob(quebec.BaseClass):
        queue_as = staticmethod(lambda region, **kwargs: f"region-{region}")

        def perform(self, region):
            pass

    assert RoutedJob.perform_later("eu").queue_name == "region-eu"


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"priority": 2**40}, ValueError, "priority must be an integer between"),
        ({"priority": "high"}, ValueError, "priority must be an integer"),
        ({"queue": ""}, ValueError, "queue name must be a non-empty string"),
        ({"wait": "soon"}, TypeError, "wait must be seconds or a timedelta"),
        ({"wait_until": "tomorrow"}, TypeError, "wait_until must be a datetime"),
    ],
)
def test_bad_options_are_refused_and_nothing_is_written(options, error, message):
    with pytest.raises(error, match=message):
        RecordJob.set(**options).perform_later()
    assert not Job.objects.exists()


def test_unserialisable_argument_writes_nothing():
    with pytest.raises(TypeError, match=r"argument kwargs\['callback'\] is a function"):
        RecordJob.perform_later(callback=lambda: None)
    assert not Job.objects.exists()


def test_perform_all_later_enqueues_a_mixed_batch():
    handles = quebec.perform_all_later(
        [RecordJob.build("a"), RecordJob.set(wait=300).build("b"), AttributesJob.build(), RecordJob.build("c")]
    )
    assert [handle.status for handle in handles] == ["ready", "scheduled", "ready", "ready"]
    assert sorted(Job.objects.values_list("pk", flat=True)) == sorted(handle.id for handle in handles)
    assert ReadyExecution.objects.count() == 3 and ScheduledExecution.objects.count() == 1


def test_perform_all_later_refuses_the_whole_batch_on_a_bad_argument():
    with pytest.raises(TypeError):
        quebec.perform_all_later([RecordJob.build("ok"), RecordJob.build(object())])
    assert not Job.objects.exists()


def test_perform_all_later_takes_only_built_jobs():
    with pytest.raises(TypeError, match="JobClass.build"):
        quebec.perform_all_later([RecordJob])


def test_rolled_back_transaction_leaves_no_job():
    with pytest.raises(RuntimeError), transaction.atomic():
        RecordJob.perform_later("doomed")
        raise RuntimeError("business logic failed")
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_enqueue_after_commit_waits_for_the_commit(settings):
    settings.QUEBEC = {"enqueue_after_commit": True}
    with transaction.atomic():
        handle = RecordJob.perform_later("later")
        assert not Job.objects.exists()
        assert handle.id is None and handle.status is None
    assert Job.objects.get().pk == handle.id
    assert handle.status == "ready"
    with pytest.raises(RuntimeError), transaction.atomic():
        RecordJob.perform_later("never")
        raise RuntimeError
    assert Job.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_enqueue_after_commit_as_a_class_attribute():
    class AfterCommitJob(quebec.BaseClass):
        enqueue_after_commit = True

        def perform(self):
            pass

    with transaction.atomic():
        AfterCommitJob.perform_later()
        RecordJob.perform_later()
        assert list(Job.objects.values_list("class_name", flat=True)) == ["tests.testapp.jobs.RecordJob"]
    assert Job.objects.count() == 2


def test_force_override_queue_rewrites_every_enqueue(monkeypatch):
    monkeypatch.setenv("QUEBEC_FORCE_OVERRIDE_QUEUE", "branch x")
    handles = [
        RecordJob.perform_later(),
        RecordJob.set(queue="critical").perform_later(),
        *quebec.perform_all_later([AttributesJob.build()]),
    ]
    assert {handle.queue_name for handle in handles} == {"branch-x"}


def test_explicit_instance_routing_is_not_an_argument():
    target = quebec.Quebec(using="default")
    handle = RecordJob.perform_later(target, "routed")
    assert Job.objects.get(pk=handle.id).arguments["args"] == ["routed"]
    handle = RecordJob.set(queue="critical").perform_later(target, "routed")
    assert handle.queue_name == "critical"


def test_perform_now_runs_inline_without_a_queue_row():
    class AddJob(quebec.BaseClass):
        def perform(self, a, b):
            self.logger.info("adding")
            return a + b

    assert AddJob.perform_now(2, 3) == 5
    assert AsyncRecordJob.perform_now("inline") is None
    assert JobRun.objects.get().label == "inline"
    assert not Job.objects.exists()


def test_perform_now_refuses_what_perform_later_would():
    with pytest.raises(TypeError, match="argument args"):
        EchoArgumentsJob.perform_now(object())


@pytest.mark.django_db(transaction=True)
def test_perform_all_later_defers_only_the_jobs_that_enqueue_after_commit():
    class AfterCommitJob(quebec.BaseClass):
        enqueue_after_commit = True

        def perform(self):
            pass

    with transaction.atomic():
        deferred, immediate = quebec.perform_all_later([AfterCommitJob.build(), RecordJob.build()])
        assert deferred.id is None and immediate.id is not None
        assert Job.objects.count() == 1
    assert deferred.id is not None and deferred.status == "ready"
