"""The states a job can be in, as every part of Quebec names them."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    """Where a job stands: in one of the execution tables, or ended."""

    READY = "ready", _("Ready")
    SCHEDULED = "scheduled", _("Scheduled")
    CLAIMED = "claimed", _("In progress")
    BLOCKED = "blocked", _("Blocked")
    FAILED = "failed", _("Failed")
    FINISHED = "finished", _("Finished")
    DISCARDED = "discarded", _("Discarded")
