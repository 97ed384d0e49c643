from django.db import models


class JobRun(models.Model):
    """One row per run of a test job, written by the job itself: the ground truth for tests."""

    job_id = models.BigIntegerField(null=True)
    label = models.CharField(max_length=100, blank=True)
    value = models.JSONField(null=True)
    pid = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)


class Account(models.Model):
    name = models.CharField(max_length=100)


class BatchCallbackRun(models.Model):
    """One row per run of a batch's callback, written by the callback: what the tests count."""

    batch_id = models.BigIntegerField()
    kind = models.CharField(max_length=20)
    status = models.CharField(max_length=20)
    completed = models.IntegerField()
    failed = models.IntegerField()
    pid = models.IntegerField()
