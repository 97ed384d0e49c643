"""A second app whose job class has the same name as the demo app's ``EmailJob``: both are
registered, each under its dotted path, and each runs."""

import quebec
from tests.testapp.jobs import record


class EmailJob(quebec.BaseClass):
    def perform(self, to):
        record(self, "otherapp.EmailJob", to)
