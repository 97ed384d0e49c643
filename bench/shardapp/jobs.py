"""Two no-op jobs, bound to two databases: the queue ``shard-a`` lives on the default database,
``shard-b`` on ``shard_b`` (``bench/sharding_settings.py``)."""

import quebec

shard_b = quebec.Quebec(using="shard_b")


class ShardAJob(quebec.BaseClass):
    """Does nothing, on the default database (autodiscovery binds it there)."""

    queue_as = "shard-a"

    def perform(self):
        pass


@shard_b.register_job
class ShardBJob(quebec.BaseClass):
    """Does nothing, on the second database."""

    queue_as = "shard-b"

    def perform(self):
        pass
