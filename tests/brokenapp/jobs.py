"""A jobs module that fails to import (installed only by tests.settings_brokenjobs): manage.py
commands must still run, check must report it, and quebec_run must refuse to start."""

from tests.testapp.models import NoSuchModel  # noqa: F401
