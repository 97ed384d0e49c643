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
