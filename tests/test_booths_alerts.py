"""Checks, due times and the alert scan, with a fixed clock: every kind, level and clearing."""

from datetime import UTC, datetime, timedelta

import pytest
from factories import make_booth, make_site, make_staff

from srs import live
from srs.alerts import service as alerts
from srs.alerts.models import Alert, AlertEscalation
from srs.auth.service import Actor
from srs.booths import checks, service
from srs.booths.models import ObservationCheck
from srs.errors import Conflict
from srs.extensions import db
from srs.overdose import service as overdose

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
GRACE = 60
BOOTH_CHECK = 180
BOOTH_LIMIT = 900
OBS_CHECK = 300
MIN_OBS = 900


@pytest.fixture
def floor(app):
    site = make_site(slug="east", escalation_grace_seconds=GRACE,
                     booth_check_interval_seconds=BOOTH_CHECK,
                     booth_time_limit_seconds=BOOTH_LIMIT,
                     observation_check_interval_seconds=OBS_CHECK,
                     min_observation_seconds=MIN_OBS)
    nina = make_staff(site, role="nurse", username="nina")
    omar = make_staff(site, role="nurse", username="omar")
    return {
        "site": site,
        "nina": Actor.of(nina, "10.0.0.5"),
        "omar": Actor.of(omar, "10.0.0.6"),
        "b1": make_booth(site, label="B1", kind="injection", position=0),
    }


def in_booth(floor, code="F-ABCD-1984", at=NOW):
    visit = service.check_in(floor["site"], code=code, handle=None, actor=floor["nina"],
                             actor_roles={"nurse"}, now=at - timedelta(minutes=5))
    return service.assign_booth(visit, floor["b1"], actor=floor["nina"], now=at)


def observing(floor, at=NOW):
    visit = in_booth(floor, at=at - timedelta(minutes=10))
    return service.start_observation(visit, actor=floor["nina"], now=at)


def open_alerts(floor) -> list[tuple[str, int, str]]:
    return [(a.kind, a.level, a.priority) for a in alerts.open_alerts(floor["site"])]


def after(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def check(floor, visit, status="ok", at=NOW, **vitals):
    return checks.record_check(visit, {"status": status, "spo2": None, "respiratory_rate": None,
                                       **vitals}, actor=floor["nina"], now=at)


# --- Due times -----------------------------------------------------------------------------

def test_entering_a_booth_sets_the_time_limit_and_the_first_check_from_the_settings(floor):
    visit = in_booth(floor)
    assert visit.booth_due_at == after(BOOTH_LIMIT)
    assert visit.next_check_due_at == after(BOOTH_CHECK)


def test_after_care_moves_the_check_to_the_observation_interval_and_drops_the_limit(floor):
    visit = observing(floor)
    assert visit.booth_due_at is None
    assert visit.next_check_due_at == after(OBS_CHECK)
    assert visit.observation_ends_at == after(MIN_OBS)


def test_discharge_clears_every_due_time(floor):
    visit = observing(floor)
    service.discharge(visit, reason=None, actor=floor["nina"], now=after(MIN_OBS))
    assert visit.next_check_due_at is None and visit.booth_due_at is None
    assert not alerts.scan(now=after(10 * MIN_OBS))


# --- Raising -------------------------------------------------------------------------------

def test_nothing_is_raised_a_second_before_a_check_is_due(floor):
    in_booth(floor)
    assert not alerts.scan(now=after(BOOTH_CHECK - 1))
    assert open_alerts(floor) == []


def test_a_booth_check_comes_due_as_a_medium_alarm_at_level_one(floor):
    visit = in_booth(floor)
    result = alerts.scan(now=after(BOOTH_CHECK))
    assert len(result.raised) == 1
    alert = db.session.get(Alert, result.raised[0])
    assert (alert.kind, alert.level, alert.priority) == ("booth_check_due", 1, "medium")
    assert (alert.visit_id, alert.booth_id, alert.due_at, alert.raised_at) == (
        visit.id, floor["b1"].id, after(BOOTH_CHECK), after(BOOTH_CHECK))


def test_running_the_scan_twice_raises_once(floor):
    in_booth(floor)
    first = alerts.scan(now=after(BOOTH_CHECK))
    second = alerts.scan(now=after(BOOTH_CHECK))
    third = alerts.scan(now=after(BOOTH_CHECK + 1))
    assert len(first.raised) == 1 and not second and not third
    assert db.session.query(Alert).count() == 1
    assert db.session.query(AlertEscalation).count() == 1


def test_alarms_falling_due_together_are_raised_once_each_and_sound_with_their_booth(
        floor, monkeypatch):
    sounded = []
    monkeypatch.setattr(live, "alarm", lambda payload, **where: sounded.append(payload))
    in_booth(floor)
    waiting = service.check_in(floor["site"], code="F-WXYZ-1984", handle=None,
                               actor=floor["nina"], actor_roles={"nurse"},
                               now=NOW - timedelta(minutes=5))
    service.assign_booth(waiting, make_booth(floor["site"], label="B2", kind="injection",
                                             position=1), actor=floor["nina"], now=NOW)
    assert len(alerts.scan(now=after(BOOTH_CHECK)).raised) == 2
    assert not alerts.scan(now=after(BOOTH_CHECK))
    assert sorted((p["booth"], p["label"], p["level"]) for p in sounded) == [
        ("B1", "Booth check due", 1), ("B2", "Booth check due", 1)]
    assert db.session.scalar(db.select(db.func.count(AlertEscalation.id))) == 2


def test_the_booth_time_limit_raises_its_own_alert(floor):
    visit = in_booth(floor)
    # Checks kept on time: only the time limit is left to fire.
    for at in range(BOOTH_CHECK - 10, BOOTH_LIMIT, BOOTH_CHECK - 10):
        check(floor, visit, at=after(at))
    alerts.scan(now=after(BOOTH_LIMIT))
    assert open_alerts(floor) == [("booth_time_limit", 1, "medium")]


def test_after_care_raises_a_check_due_and_then_observation_complete(floor):
    visit = observing(floor)
    alerts.scan(now=after(OBS_CHECK))
    assert open_alerts(floor) == [("observation_check_due", 1, "medium")]
    check(floor, visit, at=after(OBS_CHECK + 5))
    check(floor, visit, at=after(2 * OBS_CHECK + 10))
    alerts.scan(now=after(MIN_OBS))
    assert open_alerts(floor) == [("observation_complete", 1, "low")]


def test_observation_complete_is_information_and_never_escalates(floor):
    observing(floor, at=NOW)
    alerts.scan(now=after(MIN_OBS))
    alerts.scan(now=after(MIN_OBS + 10 * GRACE))
    complete = [a for a in alerts.open_alerts(floor["site"]) if a.kind == "observation_complete"]
    assert [(a.level, a.priority) for a in complete] == [(1, "low")]


# --- Escalating ----------------------------------------------------------------------------

def test_an_unowned_check_escalates_a_level_per_grace_and_becomes_high(floor):
    in_booth(floor)
    due = BOOTH_CHECK
    alerts.scan(now=after(due))
    assert not alerts.scan(now=after(due + GRACE - 1))
    assert len(alerts.scan(now=after(due + GRACE)).escalated) == 1
    assert open_alerts(floor) == [("booth_check_due", 2, "high")]
    alerts.scan(now=after(due + 2 * GRACE))
    assert open_alerts(floor) == [("booth_check_due", 3, "high")]
    assert not alerts.scan(now=after(due + 2 * GRACE + 1))
    alert = alerts.open_alerts(floor["site"])[0]
    history = db.session.execute(db.select(AlertEscalation.level, AlertEscalation.raised_at)
                                 .filter_by(alert_id=alert.id).order_by("level")).all()
    assert history == [(1, after(due)), (2, after(due + GRACE)), (3, after(due + 2 * GRACE))]
    assert alert.escalate_at is None


def test_a_scan_after_downtime_catches_up_to_the_level_the_age_calls_for(floor):
    in_booth(floor)
    late = after(BOOTH_CHECK + 2 * GRACE + 30)
    result = alerts.scan(now=late)
    assert result.raised == result.escalated
    assert open_alerts(floor) == [("booth_check_due", 3, "high")]
    alert = alerts.open_alerts(floor["site"])[0]
    assert alert.due_at == after(BOOTH_CHECK) and alert.raised_at == late
    levels = db.session.execute(db.select(AlertEscalation.level)
                                .filter_by(alert_id=alert.id)).scalars().all()
    assert sorted(levels) == [1, 2, 3]


# --- Checks and clearing -------------------------------------------------------------------

def test_a_check_resolves_the_check_due_alert_and_moves_the_next_check(floor):
    visit = in_booth(floor)
    alerts.scan(now=after(BOOTH_CHECK + 20))
    record = check(floor, visit, at=after(BOOTH_CHECK + 30), spo2=97, respiratory_rate=14)
    assert (record.phase, record.status, record.spo2, record.respiratory_rate) == (
        "in_booth", "ok", 97, 14)
    assert visit.next_check_due_at == after(2 * BOOTH_CHECK + 30)
    assert open_alerts(floor) == []
    resolved = db.session.execute(db.select(Alert)).scalar_one()
    assert (resolved.resolution, resolved.resolved_at) == ("check_recorded",
                                                           after(BOOTH_CHECK + 30))
    # The next due time raises a new alert of its own.
    alerts.scan(now=after(2 * BOOTH_CHECK + 30))
    assert open_alerts(floor) == [("booth_check_due", 1, "medium")]


def test_unresponsive_opens_an_overdose_response_with_a_high_alarm_at_once(floor):
    visit = in_booth(floor)
    record = check(floor, visit, "unresponsive", at=after(30), spo2=82)
    response = record.opened_response
    assert (response.visit_id, response.source, response.kind) == (visit.id, "check", "opioid")
    assert open_alerts(floor) == [("overdose", 1, "high")]
    raised = {a.kind: a.resolution for a in db.session.execute(db.select(Alert)).scalars()}
    assert raised == {"unresponsive": "response_started", "overdose": None}
    # The nurse who found the client unresponsive is on it: the alarm is hers, and re-sounds
    # rather than telling others that nobody is on it.
    overdose_alert = alerts.open_alerts(floor["site"])[0]
    assert overdose_alert.acknowledged_by == floor["nina"].staff_id
    alerts.scan(now=after(30 + GRACE))
    assert open_alerts(floor) == [("overdose", 1, "high")]
    # A later check does not end the emergency: closing the response does.
    check(floor, visit, "drowsy", at=after(30 + GRACE + 10))
    assert open_alerts(floor) == [("overdose", 1, "high")]
    overdose.close_response(response, outcome="recovered_on_site", note=None,
                            actor=floor["nina"], now=after(30 + GRACE + 60))
    assert open_alerts(floor) == []


def test_a_passed_re_dose_time_prompts_until_the_next_dose(floor):
    visit = in_booth(floor)
    response = check(floor, visit, "unresponsive", at=after(30)).opened_response
    redose = floor["site"].naloxone_redose_seconds
    overdose.record_intervention(response, {"kind": "naloxone", "route": "im", "dose_mg": 0.4},
                                 actor=floor["nina"], now=after(40))
    assert response.redose_due_at == after(40 + redose)
    assert not [a for a in alerts.scan(now=after(40 + redose - 1)).raised]
    alerts.scan(now=after(40 + redose))
    assert ("redose_due", 1, "medium") in open_alerts(floor)
    assert len(alerts.scan(now=after(40 + redose)).raised) == 0
    overdose.record_intervention(response, {"kind": "naloxone", "route": "im", "dose_mg": 0.4},
                                 actor=floor["nina"], now=after(45 + redose))
    assert "redose_due" not in [a[0] for a in open_alerts(floor)]
    alerts.scan(now=after(45 + 2 * redose))
    assert ("redose_due", 1, "medium") in open_alerts(floor)


def test_leaving_the_booth_resolves_the_booth_alarms_only(floor):
    visit = in_booth(floor)
    check(floor, visit, "unresponsive", at=after(30))
    alerts.scan(now=after(BOOTH_LIMIT))
    assert {a[0] for a in open_alerts(floor)} == {"overdose", "booth_check_due",
                                                  "booth_time_limit"}
    service.start_observation(visit, actor=floor["nina"], now=after(BOOTH_LIMIT + 5))
    assert [a[0] for a in open_alerts(floor)] == ["overdose"]


def test_discharge_resolves_everything_left(floor):
    visit = observing(floor)
    alerts.scan(now=after(MIN_OBS))
    assert open_alerts(floor)
    service.discharge(visit, reason=None, actor=floor["nina"], now=after(MIN_OBS + 1))
    assert open_alerts(floor) == []
    assert set(db.session.execute(db.select(Alert.resolution)).scalars()) == {"discharged"}


@pytest.mark.parametrize("state", ["waiting", "departed"])
def test_a_check_on_a_visit_neither_in_a_booth_nor_in_after_care_is_refused(floor, state):
    visit = service.check_in(floor["site"], code="F-ABCD-1984", handle=None,
                             actor=floor["nina"], actor_roles={"nurse"}, now=NOW)
    if state == "departed":
        service.leave_queue(visit, reason="left", actor=floor["nina"], now=after(1))
    with pytest.raises(Conflict) as refused:
        check(floor, visit, at=after(2))
    assert refused.value.detail["current_state"] == state
    assert db.session.query(ObservationCheck).count() == 0


# --- Acknowledging -------------------------------------------------------------------------

def test_the_first_to_acknowledge_owns_the_alert_and_escalation_stops(floor):
    in_booth(floor)
    alerts.scan(now=after(BOOTH_CHECK))
    alert = alerts.open_alerts(floor["site"])[0]
    alerts.acknowledge(alert, actor=floor["nina"], now=after(BOOTH_CHECK + 10))
    assert alert.owner.username == "nina" and alert.acknowledged_at == after(BOOTH_CHECK + 10)
    with pytest.raises(Conflict) as second:
        alerts.acknowledge(alert, actor=floor["omar"], now=after(BOOTH_CHECK + 11))
    assert second.value.detail["owner"] == alert.owner.display_name
    assert alert.owner.display_name in second.value.message
    assert not alerts.scan(now=after(BOOTH_CHECK + 5 * GRACE))
    assert open_alerts(floor) == [("booth_check_due", 1, "medium")]


def test_an_acknowledged_high_alarm_re_sounds_after_grace_until_resolved(floor):
    visit = in_booth(floor)
    # Found unresponsive at 20 s: the alarm is the checking nurse's at once; another nurse
    # cannot take it.
    response = check(floor, visit, "unresponsive", at=after(20)).opened_response
    alert = alerts.open_alerts(floor["site"])[0]
    assert alert.acknowledged_at == after(20)
    with pytest.raises(alerts.AlertConflict):
        alerts.acknowledge(alert, actor=floor["omar"], now=after(21))
    assert not alerts.scan(now=after(20 + GRACE - 1)).resounded
    assert alerts.scan(now=after(20 + GRACE)).resounded == [alert.id]
    assert not alerts.scan(now=after(20 + GRACE)).resounded
    assert alerts.scan(now=after(20 + 2 * GRACE)).resounded == [alert.id]
    db.session.refresh(alert)
    assert alert.resounds == 2 and alert.level == 1
    overdose.close_response(response, outcome="recovered_on_site", note=None,
                            actor=floor["nina"], now=after(20 + 2 * GRACE + 5))
    assert not alerts.scan(now=after(20 + 5 * GRACE)).resounded
    db.session.refresh(alert)
    assert (alert.resolution, alert.resounds) == ("response_closed", 2)


def test_a_medium_alarm_acknowledged_does_not_re_sound(floor):
    in_booth(floor)
    alerts.scan(now=after(BOOTH_CHECK))
    alert = alerts.open_alerts(floor["site"])[0]
    alerts.acknowledge(alert, actor=floor["nina"], now=after(BOOTH_CHECK + 1))
    assert alert.resound_at is None
    assert not alerts.scan(now=after(BOOTH_CHECK + 10 * GRACE))


def test_acknowledging_a_resolved_alert_says_why_it_is_gone(floor):
    visit = in_booth(floor)
    alerts.scan(now=after(BOOTH_CHECK))
    alert = alerts.open_alerts(floor["site"])[0]
    check(floor, visit, at=after(BOOTH_CHECK + 5))
    with pytest.raises(Conflict) as refused:
        alerts.acknowledge(alert, actor=floor["omar"], now=after(BOOTH_CHECK + 6))
    assert "a check was recorded" in refused.value.message
    assert refused.value.detail["current_state"] == "resolved"


def test_open_alerts_put_the_unowned_and_most_urgent_first(floor):
    visit = in_booth(floor)
    other = service.check_in(floor["site"], code="M-WXYZ-1970", handle=None,
                             actor=floor["nina"], actor_roles={"nurse"}, now=NOW)
    b2 = make_booth(floor["site"], label="B2", position=1)
    service.assign_booth(other, b2, actor=floor["nina"], now=NOW)
    alerts.scan(now=after(BOOTH_CHECK))
    owned = next(a for a in alerts.open_alerts(floor["site"]) if a.visit_id == other.id)
    alerts.acknowledge(owned, actor=floor["nina"], now=after(BOOTH_CHECK + 1))
    alerts.scan(now=after(BOOTH_CHECK + GRACE))  # the unowned one is high now
    kinds = [(a.kind, a.level, a.acknowledged_at is not None)
             for a in alerts.open_alerts(floor["site"])]
    assert kinds == [("booth_check_due", 2, False), ("booth_check_due", 1, True)]
    check(floor, visit, "unresponsive", at=after(BOOTH_CHECK + GRACE + 2))
    kinds = [(a.kind, a.level, a.acknowledged_at is not None)
             for a in alerts.open_alerts(floor["site"])]
    # The overdose its Unresponsive check opened is the checking nurse's: most urgent first.
    assert kinds == [("overdose", 1, True), ("booth_check_due", 1, True)]
