"""Where Quebec's log records go when the project has not said."""

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
