"""What ``ps`` shows for a Quebec process: ``quebec worker queues=* threads=5 busy=3``.

Every fork would otherwise read ``python manage.py quebec_run``. The title is set by the loop
that watches the process (a few times a second) and only when it changed, so a busy worker
pays nothing per job.
"""

from django.db import DEFAULT_DB_ALIAS
from setproctitle import setproctitle


def describe(roles, using):
    """The title of a process playing ``roles`` (each a short description) for database ``using``."""
    title = "quebec " + "; ".join(roles)
    return title if using == DEFAULT_DB_ALIAS else f"{title} db={using}"


class ProcessTitle:
    """The title of this process, written only when it changes."""

    def __init__(self):
        self.current = None

    def show(self, title):
        if title != self.current:
            setproctitle(title)
            self.current = title
