"""Where Quebec's log records go when nobody has said, and in what format.

``configure`` is what ``quebec_run`` does: ``quebec.*`` records to stdout, as text lines or, with
``log_format = "json"`` (``QUEBEC_LOG_FORMAT=json``), as one JSON object per line, unless the
project's LOGGING already routes them. ``JsonFormatter`` can also be named in LOGGING.
``setup_logging`` is the original Quebec's helper for plain scripts: every logger to stdout.
Inside a Django project, its LOGGING setting is the place.
"""

import json
import logging
import sys
from datetime import UTC, datetime

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# What every record has; anything else on a record came from ``extra`` (a job's id, class, queue
# and attempt, from ``self.logger``).
RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, the record's ``extra``
    fields, and the traceback as text when there is one."""

    def format(self, record):
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((key, value) for key, value in record.__dict__.items() if key not in RECORD_ATTRIBUTES)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def formatter(log_format="text"):
    """The formatter of ``log_format``: "text" or "json"."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(FORMAT)


def configure(verbosity=1, log_format="text"):
    """Send ``quebec.*`` records to stdout, unless the project's LOGGING already routes them."""
    quebec_logger = logging.getLogger("quebec")
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    if quebec_logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter(log_format))
    quebec_logger.addHandler(handler)
    quebec_logger.setLevel(level)


def setup_logging(level=logging.INFO):
    """Send every logger's records at ``level`` and above to stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
