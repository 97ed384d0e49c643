"""Which database alias Quebec's models use when a query names none.

Quebec's own code names its alias on every statement (``Job.objects.using(quebec.using)``). The
ORM calls that name none (the admin's lists, a model method, user code reading ``Job.objects``)
go to the alias of the innermost ``use(alias)`` block, and to Django's router (the default
database, unless ``DATABASE_ROUTERS`` says otherwise) outside one. Quebec's managers apply it
(``QuebecManager``), so nothing needs adding to ``DATABASE_ROUTERS``; an explicit ``.using()`` or
``db_manager()`` always wins.
"""

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import models

_alias: contextvars.ContextVar[str | None] = contextvars.ContextVar("quebec_database_alias", default=None)


def current() -> str | None:
    """The alias of the innermost ``use`` block, or None outside one."""
    return _alias.get()


@contextlib.contextmanager
def use(alias: str) -> Iterator[str]:
    """Send Quebec's queries that name no alias to ``alias`` inside the block (this thread only)."""
    check_alias(alias, "quebec.routing.use()")
    token = _alias.set(alias)
    try:
        yield alias
    finally:
        _alias.reset(token)


def check_alias(alias: str, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` unless ``alias`` is a key of ``settings.DATABASES``."""
    if alias not in settings.DATABASES:
        known = ", ".join(repr(name) for name in settings.DATABASES)
        raise ValueError(f"{where}: no database alias {alias!r} in settings.DATABASES (it has {known})")


class QuebecManager(models.Manager[Any]):
    """A manager whose querysets use the alias of ``use()`` when none was chosen."""

    def get_queryset(self) -> "models.QuerySet[Any]":
        queryset = super().get_queryset()
        alias = _alias.get()
        if alias is None or self._db is not None:
            return queryset
        return queryset.using(alias)
