"""Closing an overdose response leaves a draft incident report that holds its whole timeline."""

from datetime import UTC, datetime, timedelta

import pytest
from factories import make_booth, make_site, make_staff

from srs.alerts import service as alerts
from srs.auth.service import Actor
from srs.booths import service as floor
from srs.extensions import db
from srs.incidents import service as incident_service
from srs.incidents.models import Incident
from srs.overdose import service
from srs.overdose.models import OverdoseResponse

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 in Toronto


def _response_in_booth_b4():
    """Nina's overdose response for F-ABCD-1984 in booth B4, started at 10:00:05."""
    site = make_site(slug="east")
    booth = make_booth(site, label="B4")
    nurse = Actor.of(make_staff(site, role="nurse", username="nina"))
    visit = floor.check_in(site, code="F-ABCD-1984", handle=None, actor=nurse,
                           actor_roles={"nurse"}, now=NOW)
    floor.assign_booth(visit, booth, actor=nurse, now=NOW)
    response, _ = service.start_response(site, kind="opioid", visit=visit, actor=nurse,
                                         now=NOW + timedelta(seconds=5))
    return site, booth, nurse, response


def test_the_draft_incident_is_the_responses_timeline(app):
    _site, booth, nurse, response = _response_in_booth_b4()
    service.record_intervention(response, {"kind": "naloxone", "route": "im", "dose_mg": 0.4},
                                actor=nurse, now=NOW + timedelta(seconds=60))
    service.record_intervention(response, {"kind": "spo2", "spo2": 88}, actor=nurse,
                                now=NOW + timedelta(seconds=90))
    service.close_response(response, outcome="recovered_on_site", note=None, actor=nurse,
                           now=NOW + timedelta(minutes=6))
    incident = db.session.execute(db.select(Incident)).scalar_one()
    assert (incident.type, incident.stage, incident.response_id) == ("overdose", "draft",
                                                                     response.id)
    assert incident.booth_id == booth.id and incident.occurred_at == response.started_at
    assert [c.code for c in incident.clients] == ["F-ABCD-1984"]
    lines = incident.narrative.splitlines()[1:]
    assert lines[0].startswith("10:00:05 ") and "F-ABCD-1984" in lines[0]
    assert lines[1].startswith("10:01:00 ") and "0.4" in lines[1]
    assert lines[2].startswith("10:01:30 ") and "88" in lines[2]
    assert lines[-1].startswith("10:06:00 ") and "Recovered on site" in lines[-1]
    assert "nina" not in incident.narrative.lower()


def test_a_crash_between_the_close_and_its_draft_leaves_neither(app, monkeypatch):
    """Closing a response and drafting its incident are one unit of work: a failure while
    drafting leaves the response open with its alarm, and closing again drafts it."""
    site, _booth, nurse, response = _response_in_booth_b4()
    response_id = response.id

    def crash(*_args, **_kwargs):
        raise RuntimeError("the server stopped while drafting")

    monkeypatch.setattr(incident_service, "draft_incident", crash)
    with pytest.raises(RuntimeError):
        service.close_response(response, outcome="recovered_on_site", note=None, actor=nurse,
                               now=NOW + timedelta(minutes=6))
    db.session.rollback()  # what the failed request's teardown does

    response = db.session.get(OverdoseResponse, response_id)
    assert response.is_open and response.outcome is None
    assert db.session.scalar(db.select(db.func.count(Incident.id))) == 0
    assert [a.kind for a in alerts.open_alerts(site)] == ["overdose"]

    monkeypatch.undo()
    service.close_response(response, outcome="recovered_on_site", note=None, actor=nurse,
                           now=NOW + timedelta(minutes=7))
    assert db.session.execute(db.select(Incident)).scalar_one().response_id == response_id
    assert not response.is_open and alerts.open_alerts(site) == []
