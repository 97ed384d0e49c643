"""Running processes: workers, dispatchers, schedulers and supervisors, kept alive by heartbeats."""

import os
import socket

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from quebec.routing import QuebecManager


class ProcessQuerySet(models.QuerySet):
    def register(self, kind, name, metadata=None, supervisor=None):
        now = timezone.now()
        return self.create(
            kind=kind,
            name=name,
            pid=os.getpid(),
            hostname=socket.gethostname(),
            supervisor=supervisor,
            metadata=metadata or {},
            last_heartbeat_at=now,
            created_at=now,
        )


class Process(models.Model):
    """A running worker, dispatcher, scheduler or supervisor, kept alive by heartbeats."""

    kind = models.CharField(max_length=32, verbose_name=_("kind"))
    name = models.CharField(max_length=255, unique=True, verbose_name=_("name"))
    pid = models.IntegerField(verbose_name=_("pid"))
    hostname = models.CharField(max_length=255, blank=True, verbose_name=_("hostname"))
    supervisor = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children", verbose_name=_("supervisor")
    )
    metadata = models.JSONField(default=dict, blank=True, verbose_name=_("metadata"))
    last_heartbeat_at = models.DateTimeField(verbose_name=_("last heartbeat at"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    objects = QuebecManager.from_queryset(ProcessQuerySet)()

    class Meta:
        db_table = "quebec_processes"
        verbose_name = _("process")
        verbose_name_plural = _("processes")
        indexes = [models.Index(fields=["last_heartbeat_at"], name="quebec_processes_heartbeat")]

    def __str__(self):
        return f"{self.kind} {self.name}"

    def heartbeat(self, **metadata):
        """Record that the process is alive; False if its row is gone (it was pruned)."""
        now = timezone.now()
        if metadata:
            self.metadata = {**self.metadata, **metadata}
        updated = (
            Process.objects.using(self._state.db)
            .filter(pk=self.pk)
            .update(last_heartbeat_at=now, metadata=self.metadata)
        )
        self.last_heartbeat_at = now
        return updated == 1
