"""The test settings plus an app whose jobs module cannot be imported, and one whose tasks
module cannot."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.brokenapp", "tests.celeryapp"]
