"""Queue selectors, the one definition: ``"*"`` (every queue), an exact name, or ``"prefix*"``.

Workers claim by them (as SQL), the dashboard and the ORM filter by them, the configuration
validates them and the django.tasks checks match queue names against them.
"""

from django.db.models import Q

ALL = "*"


def check(selector):
    """Raise ``ValueError`` unless ``selector`` is a selector."""
    if not isinstance(selector, str) or not selector or "*" in selector[:-1]:
        raise ValueError(f"has an invalid queue selector {selector!r}")


def prefix(selector):
    """The prefix of a ``"prefix*"`` selector, else None."""
    return selector[:-1] if selector.endswith("*") and selector != ALL else None


def matches(selector, queue_name):
    if selector == ALL:
        return True
    start = prefix(selector)
    return queue_name.startswith(start) if start is not None else queue_name == selector


def q(selector, field="queue_name"):
    """An ORM filter for the rows whose ``field`` ``selector`` takes."""
    if selector == ALL:
        return Q()
    start = prefix(selector)
    return Q(**{f"{field}__startswith": start}) if start is not None else Q(**{field: selector})


def sql(selector, column, like_escape=""):
    """A WHERE condition on ``column`` and its params, or (None, []) for every queue. A LIKE
    pattern's wildcards are escaped with a backslash (``like_escape`` names it where the
    database has no default escape character)."""
    if selector == ALL:
        return None, []
    start = prefix(selector)
    if start is None:
        return f"{column} = %s", [selector]
    escaped = start.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{column} LIKE %s{like_escape}", [f"{escaped}%"]
