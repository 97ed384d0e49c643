"""Settings for bench_core.py: the demo project plus the app holding NoopJob."""

from testproject.settings import *  # noqa: F403
from testproject.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench.benchapp"]
DEBUG = False  # DEBUG keeps every SQL query in memory, which would slow both sides down
QUEBEC = {}  # defaults; bench_core.py sets what it needs through QUEBEC_* variables
