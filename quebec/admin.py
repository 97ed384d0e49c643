"""Read-only views of Quebec's tables in the Django admin.

Every change to a job goes through a model method; nothing here edits a row directly.
"""

from django.contrib import admin

from quebec import models


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("id", "class_name", "queue_name", "priority", "executions", "created_at", "finished_at")
    list_filter = ("queue_name", "class_name")
    search_fields = ("=id", "active_job_id", "class_name")
    show_full_result_count = False


@admin.register(models.ReadyExecution)
class ReadyExecutionAdmin(ReadOnlyAdmin):
    list_display = ("job", "queue_name", "priority", "created_at")
    list_filter = ("queue_name",)


@admin.register(models.ScheduledExecution)
class ScheduledExecutionAdmin(ReadOnlyAdmin):
    list_display = ("job", "queue_name", "priority", "scheduled_at")
    list_filter = ("queue_name",)


@admin.register(models.ClaimedExecution)
class ClaimedExecutionAdmin(ReadOnlyAdmin):
    list_display = ("job", "process", "created_at")


@admin.register(models.FailedExecution)
class FailedExecutionAdmin(ReadOnlyAdmin):
    list_display = ("job", "exception_class", "message", "attempt", "created_at")
    search_fields = ("exception_class", "message")


@admin.register(models.Process)
class ProcessAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "hostname", "pid", "last_heartbeat_at")


@admin.register(models.Pause)
class PauseAdmin(ReadOnlyAdmin):
    list_display = ("queue_name", "created_at")
