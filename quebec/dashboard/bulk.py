"""Bulk actions on jobs (selected, or every job matching the filters), behind a confirmation page."""

import dataclasses

from django.contrib import messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from quebec.dashboard import stats, views


@dataclasses.dataclass(frozen=True)
class BulkAction:
    title: str
    question: str
    button: str
    done: str  # a lazy plural, formatted with ``count``


RETRY = BulkAction(
    _("Retry failed jobs"),
    _("Put these failed jobs back in line?"),
    _("Yes, retry them"),
    ngettext_lazy("%(count)d job is back in line.", "%(count)d jobs are back in line.", "count"),
)
DISCARD = BulkAction(
    _("Discard failed jobs"),
    _("Discard these failed jobs? They will not run again."),
    _("Yes, discard them"),
    ngettext_lazy("%(count)d job was discarded.", "%(count)d jobs were discarded.", "count"),
)
RUN_NOW = BulkAction(
    _("Run scheduled jobs now"),
    _("Make these scheduled jobs due now?"),
    _("Yes, run them now"),
    ngettext_lazy("%(count)d job is due now.", "%(count)d jobs are due now.", "count"),
)
UNBLOCK = BulkAction(
    _("Unblock jobs"),
    _("Make these blocked jobs ready now, over their concurrency limit?"),
    _("Yes, unblock them"),
    ngettext_lazy("%(count)d job is ready.", "%(count)d jobs are ready.", "count"),
)
CANCEL_BLOCKED = BulkAction(
    _("Cancel blocked jobs"),
    _("Cancel these blocked jobs? They will not run."),
    _("Yes, cancel them"),
    ngettext_lazy("%(count)d job was cancelled.", "%(count)d jobs were cancelled.", "count"),
)
CANCEL = BulkAction(
    _("Cancel scheduled jobs"),
    _("Cancel these scheduled jobs? They will not run."),
    _("Yes, cancel them"),
    ngettext_lazy("%(count)d job was cancelled.", "%(count)d jobs were cancelled.", "count"),
)


def confirm(model_admin, request, queryset, transition, action):
    """Show what ``transition`` would act on; once confirmed, run it and report how many it did."""
    # A fresh queryset over the same rows: no joins or ordering for the transition to lock.
    rows = queryset.model.objects.filter(pk__in=queryset.order_by().values("pk"))
    if request.POST.get("confirm") != "yes":
        return TemplateResponse(request, "quebec/confirm_action.html", _context(model_admin, request, rows, action))
    count = transition(rows)
    model_admin.message_user(request, action.done % {"count": count}, messages.SUCCESS)
    return None


def _context(model_admin, request, rows, action):
    return {
        **model_admin.admin_site.each_context(request),
        **views.page_context(request, model_admin.tab),
        "title": action.title,
        "action": action,
        "opts": model_admin.opts,
        "count": stats.format_count(stats.capped_count(rows)),
        "examples": rows.select_related("job").order_by("pk")[:10],
        "action_name": request.POST.get("action", ""),
        "select_across": request.POST.get("select_across", "0"),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
    }
