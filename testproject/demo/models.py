from django.db import models


class Report(models.Model):
    """Something a job produces, so the demo shows jobs changing data."""

    title = models.CharField(max_length=200)
    rows = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.title
