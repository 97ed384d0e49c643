"""Jobs of the second database: bound explicitly, in a jobs module that autodiscovery imports."""

import quebec
from tests.testapp.jobs import record

second = quebec.Quebec(using="second")


@second.register_job
class SecondRecordJob(quebec.BaseClass):
    def perform(self, label):
        record(self, label)


@second.register_job
class SecondFailingJob(quebec.BaseClass):
    def perform(self):
        raise RuntimeError("fails on the second database")


class UnboundJob(quebec.BaseClass):
    """No explicit binding: autodiscovery binds it to the default instance."""

    def perform(self):
        pass
