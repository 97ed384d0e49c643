"""``{% quebec_overview as quebec %}``: the overview's data for the Quebec app index.

The admin renders its app index itself, with no hook for extra context; like the admin's own
``{% get_admin_log %}``, a tag fetches what the page shows. The queries live in
``quebec.dashboard``.
"""

from django import template

from quebec.dashboard import views

register = template.Library()


@register.simple_tag(takes_context=True)
def quebec_overview(context):
    return views.overview_context(context["request"])
