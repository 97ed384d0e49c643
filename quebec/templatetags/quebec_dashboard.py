"""``{% quebec_overview as quebec %}``: the overview's data for the Quebec app index.

The admin renders its app index itself, with no hook for extra context; like the admin's own
``{% get_admin_log %}``, a tag fetches what the page shows. The queries live in
``quebec.dashboard``.
"""

from django import template
from django.urls import reverse

from quebec import routing
from quebec.dashboard import databases, times, views

register = template.Library()


@register.simple_tag(takes_context=True)
def quebec_overview(context):
    request = context["request"]
    with routing.use(databases.selected(request)):
        return views.overview_context(request)


@register.simple_tag(takes_context=True)
def quebec_url(context, name, *args, **kwargs):
    """``{% url %}`` for the dashboard's pages, carrying the page's ``?database=`` on."""
    url = reverse(name, args=args, kwargs=kwargs)
    return databases.link(url, databases.selected(context["request"]))


@register.simple_tag(takes_context=True)
def quebec_list_url(context, name, **filters):
    """The list ``name`` filtered by ``filters`` (``queue_name=...``), on the page's database."""
    url = reverse(name, query=filters)
    return databases.link(url, databases.selected(context["request"]))


@register.filter
def quebec_time(moment):
    """``{{ job.created_at|quebec_time }}``: how long ago, with the exact time on hover."""
    return times.time_tag(moment)
