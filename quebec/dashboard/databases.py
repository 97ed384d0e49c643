"""The database the dashboard shows and acts on: ``?database=ALIAS``, kept on every link.

Without the parameter, the default database (the default ``Quebec`` instance's). Every page,
action and refresh runs inside ``quebec.routing.use(alias)``, so the admin's lists, the counts
and the transitions all read and write that alias; every link and form the dashboard renders
carries the parameter on, and so do its redirects. It is a query parameter, not a session value,
so that an action always acts on the database of the page it was sent from, whatever another tab
chose since.
"""

import functools
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import BadRequest
from django.template.response import SimpleTemplateResponse
from django.urls import reverse as django_reverse

from quebec import registry, routing

PARAM = "database"


def selected(request):
    """The alias ``request`` asks for; ``BadRequest`` (HTTP 400) for one not in ``DATABASES``."""
    alias = request.GET.get(PARAM) or registry.default.using
    if alias not in settings.DATABASES:
        raise BadRequest(f"?{PARAM}={alias!r}: no such alias in settings.DATABASES")
    return alias


def choices():
    """The aliases to choose between: those Quebec's instances use, when there are several."""
    aliases = [alias for alias in registry.aliases() if alias in settings.DATABASES]
    return aliases if len(aliases) > 1 else []


def routed(view):
    """Run ``view`` on the database the request chose, rendering its page there too, and keep
    the choice on the redirect it answers with."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        alias = selected(request)
        with routing.use(alias):
            response = view(request, *args, **kwargs)
            if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
                response.render()  # the template may still query: render it on this alias
        if response.status_code in (301, 302, 303, 307, 308) and not urlsplit(response["Location"]).netloc:
            response["Location"] = link(response["Location"], alias)
        return response

    return wrapper


def link(url, alias=None):
    """``url`` carrying the chosen database (by default the alias in use), unless it is the default."""
    alias = alias or routing.current()
    if not alias or alias == registry.default.using:
        return url
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != PARAM]
    return urlunsplit(parts._replace(query=urlencode([*query, (PARAM, alias)])))


def reverse(name, args=None, kwargs=None):
    """Django's ``reverse``, carrying the database in use."""
    return link(django_reverse(name, args=args, kwargs=kwargs))
