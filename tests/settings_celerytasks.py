"""The test settings plus an app whose tasks module is written for another queue."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.celeryapp"]
