"""SQLite: one writer at a time, so an idle worker must not take the write lock: quebec/db/sqlite.py."""

import pytest
from django.db import connection  # noqa: F401 (the skipif)

from quebec.db import operations
from quebec.models import Pause
from tests.testapp.jobs import PairsJob, RecordJob

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite's statements"),
]


def test_a_claim_is_worth_it_only_when_a_selected_queue_has_a_ready_job():
    ops = operations("default")
    assert not ops.worth_claiming(["*"])
    RecordJob.set(queue="reports").perform_later("x")
    assert ops.worth_claiming(["*"]) and ops.worth_claiming(["rep*"]) and not ops.worth_claiming(["mail"])
    Pause.pause("reports")
    assert not ops.worth_claiming(["*"])


def test_the_next_blocked_jobs_of_many_keys_in_one_statement():
    for key in ("a", "a", "a", "b", "b"):
        PairsJob.perform_later(key)  # two slots a key: a's third and nothing of b's blocked
    PairsJob.perform_later("b")
    locked = operations("default").lock_blocked([("PairsJob/a", 5), ("PairsJob/b", 1), ("PairsJob/c", 1)])
    assert [key for *_, key in locked] == ["PairsJob/a", "PairsJob/b"]
