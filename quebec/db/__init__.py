"""Per-database statements, chosen once per connection alias.

``operations(using)`` gives the object that sends every statement of a job transition for that
database: PostgreSQL, MySQL/MariaDB or SQLite, each offering the same small set of methods
(``quebec.db.base.Operations``), the way Django's ``DatabaseOperations`` does.
"""

import functools
import importlib

from django.db import connections

from quebec.db.connection import READY_CHANNEL, close_broken_connections, write_transaction

# Loaded by name on first use, as Django loads its database backends: the vendor modules import
# the models, which import ``quebec.db.connection``.
VENDORS = {"postgresql": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}


@functools.cache
def _operations(using, vendor):
    module = importlib.import_module(f"quebec.db.{VENDORS.get(vendor, 'base')}")
    return module.Operations(using)


def operations(using):
    """The statements for database alias ``using``."""
    return _operations(using, connections[using].vendor)


__all__ = ["READY_CHANNEL", "close_broken_connections", "operations", "write_transaction"]
