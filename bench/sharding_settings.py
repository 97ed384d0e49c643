"""Settings for sharding.py: the benchmark's settings, a second database and the sharded jobs."""

import os

import environ

from bench.bench_settings import *  # noqa: F403
from bench.bench_settings import DATABASES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench.shardapp"]
DATABASES["shard_b"] = environ.Env.db_url_config(os.environ["QUEBEC_BENCH_SHARD_B_URL"])
if DATABASES["shard_b"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["shard_b"].setdefault("OPTIONS", {})["charset"] = "utf8mb4"
