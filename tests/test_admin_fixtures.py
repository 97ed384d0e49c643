"""Fixtures and helpers shared by the dashboard's tests (this module holds no tests)."""

import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from tests.lifecycle_helpers import fail
from tests.testapp.jobs import FailingJob, RecordJob

HOSTILE = "<script>alert('x')</script>"


def failed_job(*args, message="boom", queue="default"):
    return fail(FailingJob.set(queue=queue).perform_later(*args or ("x",)), message)


def scheduled_job(*args, queue="default"):
    return RecordJob.set(wait=3600, queue=queue).perform_later(*args)


@pytest.fixture
def staff_client(db):
    """A logged-in staff user holding only the named permissions: ``staff_client("view_job", ...)``."""

    def make(*codenames):
        user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:8]}", password="pw", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="quebec", codename__in=codenames))
        client = Client()
        client.force_login(user)
        return client

    return make


VIEW_ALL = tuple(
    f"view_{name}"
    for name in ("job", "readyexecution", "scheduledexecution", "claimedexecution", "blockedexecution",
                 "failedexecution", "pause", "process", "recurringtask")
)


@pytest.fixture(autouse=True)
def _whitenoise_without_collectstatic(settings):
    """The test settings have DEBUG off and no collected static files, which WhiteNoise warns
    about (an error here); it serves them from the apps' directories, as in development."""
    settings.WHITENOISE_AUTOREFRESH = True
