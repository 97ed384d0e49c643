from django.apps import AppConfig


class QuebecConfig(AppConfig):
    name = "quebec"
    verbose_name = "Quebec"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from quebec import checks, db, signals  # noqa: F401  (checks, connection tuning, signals)
        from quebec.registry import default

        # Like admin.py: each installed app's jobs module is imported once Django is ready.
        default.autodiscover()
