"""Jobs Quebec itself defines; found by autodiscovery like any installed app's jobs."""

from django.utils.module_loading import import_string

from quebec.base_class import BaseClass


class RecurringCommandJob(BaseClass):
    """Runs a recurring task's ``command``: a dotted path to a callable."""

    def perform(self, command, args, kwargs):
        return import_string(command)(*args, **kwargs)
