"""The demo project's settings plus a test app; the database comes from DATABASE_URL."""

from testproject.settings import *  # noqa: F403
from testproject.settings import BASE_DIR, DATABASES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: tests start real quebec_run processes that must see the same data.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR.parent / "tests" / "test_quebec.sqlite3")}

QUEBEC = {}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
