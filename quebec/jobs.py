"""Jobs Quebec itself defines; found by autodiscovery like any installed app's jobs."""

from quebec.base_class import BaseClass
from quebec.recurring import find_command


class RecurringCommandJob(BaseClass):
    """Runs a recurring task's ``command``: a callable registered with ``@quebec.command`` or
    named in the static recurring configuration; any other name fails the job, naming it."""

    def perform(self, command, args, kwargs):
        return find_command(command)(*args, **kwargs)
