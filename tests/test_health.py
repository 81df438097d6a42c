"""``GET /health``: the parts and their state, for load balancers; no login, nothing else."""

from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from srs import health
from srs.common import utcnow
from srs.jobs import HEARTBEAT_STALE_SECONDS, heartbeat


def test_all_parts_working_answers_200_to_anyone(client):
    heartbeat(now=utcnow() - timedelta(seconds=3))

    answer = client.get("/health")

    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "ok"
    assert body["components"]["database"] == {"status": "ok"}
    scheduler = body["components"]["scheduler"]
    assert scheduler["status"] == "ok"
    assert 3 <= scheduler["heartbeat_age_seconds"] < 3 + 5
    assert "redis" not in body["components"]  # none configured: one process
    # Parts only: no host, no process, no version; nothing to cache, no session begun.
    assert set(body) == {"status", "components"}
    assert set(scheduler) == {"status", "heartbeat_age_seconds", "stale_after_seconds"}
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in answer.headers


@pytest.mark.parametrize("beat_seconds_ago", [HEARTBEAT_STALE_SECONDS + 45, None],
                         ids=["stale", "never"])
def test_no_scheduler_beating_answers_503(client, beat_seconds_ago):
    if beat_seconds_ago is not None:
        heartbeat(now=utcnow() - timedelta(seconds=beat_seconds_ago))

    answer = client.get("/health")

    assert answer.status_code == 503
    body = answer.get_json()
    assert body["status"] == "degraded"
    assert body["components"]["database"] == {"status": "ok"}
    scheduler = body["components"]["scheduler"]
    assert scheduler["status"] == "down"
    if beat_seconds_ago is None:
        assert scheduler["heartbeat_age_seconds"] is None
    else:
        assert scheduler["heartbeat_age_seconds"] >= beat_seconds_ago


def test_a_database_that_does_not_answer_answers_503(client, monkeypatch):
    def unreachable(*, now):
        raise OperationalError("SELECT", {}, ConnectionRefusedError("no database"))

    monkeypatch.setattr(health, "scheduler_status", unreachable)

    answer = client.get("/health")

    assert answer.status_code == 503
    assert answer.get_json() == {"status": "degraded", "components": {
        "database": {"status": "down"},
        "scheduler": {"status": "unknown", "heartbeat_age_seconds": None}}}
