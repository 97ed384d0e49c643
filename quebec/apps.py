from django.apps import AppConfig
from django.conf import settings
from django.utils.module_loading import import_string


class QuebecConfig(AppConfig):
    name = "quebec"
    verbose_name = "Quebec"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from quebec import checks, db, signals  # noqa: F401  (checks, connection tuning, signals)
        from quebec.registry import default

        # Like admin.py: each installed app's jobs module is imported once Django is ready, and
        # its tasks module too when Quebec runs django.tasks, so that workers know every task.
        default.autodiscover(tasks=_runs_django_tasks())


def _runs_django_tasks():
    """Whether a TASKS backend is Quebec's (or a subclass of it)."""
    from quebec.backends import QuebecBackend

    for options in getattr(settings, "TASKS", {}).values():
        try:
            backend = import_string(options["BACKEND"])
        except (ImportError, KeyError, TypeError):
            continue  # Django's own checks report a TASKS entry it cannot load
        if isinstance(backend, type) and issubclass(backend, QuebecBackend):
            return True
    return False
