"""``quebec.logger.setup_logging``: log to stdout from a plain script, as the original Quebec's
scripts do. Inside a Django project, its LOGGING setting is the place instead."""

import logging
import sys

from quebec.log import FORMAT


def setup_logging(level=logging.INFO):
    """Send every logger's records at ``level`` and above to stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
