"""An app's tasks module written for another queue, whose library is not installed: Quebec
imports installed apps' tasks modules, reports this one, and runs all the same."""

import celery_is_not_installed  # noqa: F401
