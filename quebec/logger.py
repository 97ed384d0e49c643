"""Where Quebec's log records go when nobody has said.

``configure`` is what ``quebec_run`` does: ``quebec.*`` records to stdout, unless the project's
LOGGING already routes them. ``setup_logging`` is the original Quebec's helper for plain
scripts: every logger to stdout. Inside a Django project, its LOGGING setting is the place.
"""

import logging
import sys

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure(verbosity=1):
    """Send ``quebec.*`` records to stdout, unless the project's LOGGING already routes them."""
    quebec_logger = logging.getLogger("quebec")
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    if quebec_logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT))
    quebec_logger.addHandler(handler)
    quebec_logger.setLevel(level)


def setup_logging(level=logging.INFO):
    """Send every logger's records at ``level`` and above to stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
