"""The demo project's settings plus a test app; the database comes from DATABASE_URL."""

from pathlib import Path

from testproject.settings import *  # noqa: F403
from testproject.settings import BASE_DIR, DATABASES, INSTALLED_APPS

# tests.otherapp has an EmailJob, as the demo app does: two apps may each define one.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp", "tests.otherapp"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: tests start real quebec_run processes that must see the same data.
    # Named after the database, so that runs with different DATABASE_URLs do not collide.
    _name = Path(DATABASES["default"]["NAME"])
    _name = _name if _name.is_absolute() else BASE_DIR.parent / "tests" / _name
    DATABASES["default"]["TEST"] = {"NAME": str(_name.with_name(f"test_{_name.stem}.sqlite3"))}

QUEBEC = {}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Serve static files from the finders as they are, without a collectstatic step.
WHITENOISE_AUTOREFRESH = True

# Django's Tasks framework, backed by Quebec (tests/testapp/tasks.py).
TASKS = {
    "default": {"BACKEND": "quebec.backends.QuebecBackend", "QUEUES": ["default", "urgent", "slow"]},
}
