"""Moments as the dashboard shows them: how long ago, to the second, with the exact time on hover.

Such texts change every second while the rows do not: ``steady`` leaves them out of what the
list's refresh compares (its digest), so a list is not "changed" because time passed.
"""

import re

from django.contrib import admin
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _

from quebec.dashboard.stats import format_duration


def relative(moment, now=None):
    """``"12 s ago"``, ``"3 min 5 s ago"``, or ``"in 2 h 10 min"`` for a moment to come."""
    difference = (now or timezone.now()) - moment
    if difference.total_seconds() < 0:
        return _("in %(duration)s") % {"duration": format_duration(-difference)}
    return _("%(duration)s ago") % {"duration": format_duration(difference)}


def exact(moment):
    """The moment in the current time zone, to the second, with the zone's name."""
    return formats.date_format(timezone.localtime(moment), "Y-m-d H:i:s T")


def time_tag(moment, now=None):
    """A ``<time>`` reading how long ago, its exact moment in ``datetime`` and ``title``; "-" for None."""
    if moment is None:
        return "-"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', moment.isoformat(), exact(moment), relative(moment, now)
    )


# A relative time (``time_tag``) or a duration up to now (``ticking``), with its text.
_TICKING = re.compile(r'(<time [^>]*>|<span class="quebec-ticking"[^>]*>)[^<]*(</time>|</span>)')


def ticking(text, since):
    """A duration that grows with time (``text``, counted from the moment ``since``)."""
    return format_html('<span class="quebec-ticking" title="{}">{}</span>', exact(since), text)


def steady(html):
    """``html`` without the texts that change with time alone."""
    return _TICKING.sub(r"\1\2", html)


def column(field, description):
    """An admin list column showing ``field`` as a ``time_tag``, sortable by that field."""

    @admin.display(description=description, ordering=field)
    def show(model_admin, obj):
        return time_tag(getattr(obj, field))

    show.__name__ = f"{field}_time"
    return show
