"""Admin list helpers that keep a page's cost bounded on tables of millions of jobs."""

import uuid

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import Q
from django.utils.functional import cached_property
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from quebec import conf
from quebec.dashboard import databases, stats
from quebec.models import EXECUTION_STATES, BatchStatus, JobStatus
from quebec.registry import default

MAX_ID = 2**63 - 1


class CappedPaginator(Paginator):
    """Counts at most ``cap`` rows: paging a million jobs never runs a full ``COUNT(*)``."""

    cap = 10_000

    @cached_property
    def count(self):
        return stats.capped_count(self.object_list, self.cap)

    @property
    def capped(self):
        return self.count > self.cap


class CappedChangeList(ChangeList):
    """A change list that says "10,000+" rather than counting every row."""

    def get_filters_params(self, params=None):
        # ?database= chooses the database (quebec.dashboard.databases), not a filter; it stays
        # in self.params, so the list's own links keep it.
        lookup_params = super().get_filters_params(params)
        lookup_params.pop(databases.PARAM, None)
        return lookup_params

    def get_results(self, request):
        super().get_results(request)
        self.capped = getattr(self.paginator, "capped", False)
        self.result_count_display = stats.format_count(
            self.result_count, getattr(self.paginator, "cap", stats.COUNT_CAP)
        )
        self.result_count_text = self.model_admin.count_text % {
            "count": self.result_count,
            "shown": self.result_count_display,
        }
        self.page_range = list(self.paginator.get_elided_page_range(self.page_num)) if self.multi_page else []
        if self.capped:
            self.can_show_all = False


def search_jobs(queryset, term, *, uuid_field, text_fields):
    """Filter by job id (digits, or ``#42``), active job id (a UUID), or text in ``text_fields``.

    One kind of match per search keeps each one on an index: an id or UUID never turns into a
    scan of every job's arguments. Quote the term (``"42"``) to search the text for digits.
    """
    term = term.strip()
    if len(term) > 1 and term[0] == term[-1] == '"':
        return _containing(queryset, term[1:-1], text_fields)
    if term.lstrip("#").isdigit():
        number = int(term.lstrip("#"))
        return queryset.filter(pk=number) if number <= MAX_ID else queryset.none()
    try:
        return queryset.filter(**{uuid_field: uuid.UUID(term)})
    except ValueError:
        return _containing(queryset, term, text_fields)


def search_batches(queryset, term):
    """Filter batches by id (digits, or ``#42``) or text in the description; quote the term
    (``"42"``) to search the description for digits."""
    term = term.strip()
    if len(term) > 1 and term[0] == term[-1] == '"':
        return queryset.filter(description__icontains=term[1:-1])
    if term.lstrip("#").isdigit():
        number = int(term.lstrip("#"))
        return queryset.filter(pk=number) if number <= MAX_ID else queryset.none()
    return queryset.filter(description__icontains=term)


def _containing(queryset, text, fields):
    condition = Q()
    for field in fields:
        condition |= Q(**{f"{field}__icontains": text})
    return queryset.filter(condition)


class RecentValuesFilter(admin.SimpleListFilter):
    """Choices from the newest rows and the configuration, never a DISTINCT over a huge table."""

    recent = 1000
    field = None  # key of the model admin's ``job_fields``

    def __init__(self, request, params, model, model_admin):
        self.lookup = model_admin.job_fields[self.field]
        self.model = model
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        newest = self.model._default_manager.order_by("-pk").values_list(self.lookup, flat=True)[: self.recent]
        values = {*newest, *self.known_values()}
        if self.value():
            values.add(self.value())
        return [(value, value) for value in sorted(values)]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.lookup: self.value()}) if self.value() else queryset

    def known_values(self):
        return []


class ClassNameFilter(RecentValuesFilter):
    title = _("job class")
    parameter_name = "class_name"
    field = "class_name"

    def known_values(self):
        return list(default.jobs)


class QueueFilter(RecentValuesFilter):
    title = _("queue")
    parameter_name = "queue_name"
    field = "queue_name"

    def known_values(self):
        return [queue for worker in conf.get().workers for queue in worker.queues if "*" not in queue]


class UniqueKeyFilter(admin.SimpleListFilter):
    """Jobs enqueued with one unique key (``?unique_key=...``, linked from a job's page); shown
    only while it filters, since keys are too many to list."""

    title = _("unique key")
    parameter_name = "unique_key"

    def lookups(self, request, model_admin):
        return [(self.value(), self.value())] if self.value() else []

    def queryset(self, request, queryset):
        return queryset.filter(unique_key=self.value()) if self.value() else queryset


STATUS_LABELS = dict(JobStatus.choices)
BATCH_STATUS_LABELS = {status: capfirst(label) for status, label in BatchStatus.choices}


class StatusFilter(admin.SimpleListFilter):
    """Jobs by state: finished and discarded from the jobs table, the others from their own table."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return list(STATUS_LABELS.items())

    def queryset(self, request, queryset):
        status = self.value()
        if status == JobStatus.FINISHED:
            return queryset.filter(finished_at__isnull=False, discarded_at__isnull=True)
        if status == JobStatus.DISCARDED:
            return queryset.filter(discarded_at__isnull=False)
        if status in EXECUTION_STATES:
            return queryset.filter(pk__in=EXECUTION_STATES[status].objects.values("job_id"))
        return queryset


class BatchFilter(admin.SimpleListFilter):
    """A batch's members (``?batch=42``, linked from the batch's page); shown only while it
    filters, since batches are too many to list."""

    title = _("batch")
    parameter_name = "batch"

    def lookups(self, request, model_admin):
        return [(self.value(), f"#{self.value()}")] if self.value() else []

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(batch=int(value)) if value.isdigit() and int(value) <= MAX_ID else queryset.none()


class BatchStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return list(BATCH_STATUS_LABELS.items())

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() in BATCH_STATUS_LABELS else queryset
