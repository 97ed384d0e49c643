"""The least Django needs to load Quebec's models: mypy's Django plugin (django-stubs) reads
them with these settings, to type the managers and fields the public API's modules use."""

INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "quebec"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
