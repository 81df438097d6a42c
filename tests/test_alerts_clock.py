"""The alarm clock: an alarm is raised when its time comes, not at the next tick."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from factories import make_booth, make_site, make_staff

from srs.alerts import service as alerts
from srs.alerts.clock import AlertClock, next_due
from srs.alerts.models import Alert
from srs.auth.service import Actor
from srs.booths import service as floor
from srs.booths.models import Visit
from srs.common import utcnow
from srs.extensions import db
from srs.overdose import service as overdose

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _in_booth(now, *, check=180, limit=900, grace=60, code="F-TIME-1984"):
    site = make_site(slug="clock", escalation_grace_seconds=grace, naloxone_redose_seconds=30,
                     booth_check_interval_seconds=check, booth_time_limit_seconds=limit)
    nina = Actor.of(make_staff(site, role="nurse", username="nina"))
    booth = make_booth(site, label="B1")
    waiting = floor.check_in(site, code=code, handle=None, actor=nina,
                             actor_roles={"nurse"}, now=now - timedelta(minutes=1))
    return site, nina, floor.assign_booth(waiting, booth, actor=nina, now=now)


def test_the_next_due_time_is_the_earliest_check_limit_escalation_or_re_dose(app):
    assert next_due(now=NOW) is None
    site, nina, visit = _in_booth(NOW, check=180, limit=900)
    assert next_due(now=NOW) == NOW + timedelta(seconds=180), "the booth check"
    # Past the check: its alarm escalates a grace later, before the time limit.
    alerts.scan(now=NOW + timedelta(seconds=181))
    assert next_due(now=NOW + timedelta(seconds=181)) == NOW + timedelta(seconds=240)
    response, _ = overdose.start_response(site, kind="opioid", visit=visit, actor=nina,
                                          now=NOW + timedelta(seconds=190))
    overdose.record_intervention(response, {"kind": "naloxone", "route": "in", "dose_mg": 4},
                                 actor=nina, now=NOW + timedelta(seconds=200))
    assert response.redose_due_at == NOW + timedelta(seconds=230)
    assert next_due(now=NOW + timedelta(seconds=201)) == NOW + timedelta(seconds=230), \
        "the re-dose prompt, before any escalation or re-sound"
    # Past it: the booth check's alarm, still unowned, escalates; then the overdose alarm,
    # the nurse's from its start (she answered the check's alarm), re-sounds a grace later.
    assert next_due(now=NOW + timedelta(seconds=231)) == NOW + timedelta(seconds=240)
    assert next_due(now=NOW + timedelta(seconds=241)) == NOW + timedelta(seconds=250)


def test_each_scan_says_the_next_due_time_the_clock_sleeps_until(app):
    """The clock takes the scan's word for when to wake: what a read after the scan gives,
    whether it found nothing, raised an alarm (its escalation counts) or escalated one."""
    _in_booth(NOW, check=180, limit=900)
    assert alerts.scan(now=NOW).next_due == NOW + timedelta(seconds=180), "the booth check"
    raised = alerts.scan(now=NOW + timedelta(seconds=181))
    assert raised.raised and raised.next_due == NOW + timedelta(seconds=240), "its escalation"
    escalated = alerts.scan(now=NOW + timedelta(seconds=241))
    assert escalated.escalated and escalated.next_due == NOW + timedelta(seconds=300)
    assert alerts.scan(now=NOW + timedelta(seconds=301)).next_due == \
        NOW + timedelta(seconds=900), "level 3 is the last: the time limit is next"
    assert alerts.scan(now=NOW + timedelta(seconds=301)).next_due == \
        next_due(now=NOW + timedelta(seconds=301))


def _wait_for(predicate, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _raised(visit_id: int) -> tuple | None:
    """(due, raised) of the visit's booth check alarm; the session closed again, so that no
    read of the test's holds the database while the clock writes."""
    try:
        return db.session.execute(db.select(Alert.due_at, Alert.raised_at).where(
            Alert.visit_id == visit_id, Alert.kind == "booth_check_due")).one_or_none()
    finally:
        db.session.remove()


@pytest.mark.commits  # the clock runs on its own thread and connections
def test_a_check_falling_due_between_ticks_raises_its_alarm_on_time(app):
    """With a tick of a minute, only waking at the due time raises the alarm within seconds."""
    _site, _nina, visit = _in_booth(utcnow(), code="F-SOON-1984")
    visit_id = visit.id
    due = utcnow() + timedelta(seconds=0.6)
    visit.next_check_due_at = due
    db.session.commit()
    db.session.remove()
    clock = AlertClock(app, alerts.scan, tick=60).start()
    try:
        assert _wait_for(lambda: _raised(visit_id) is not None, 10), "the alarm was raised"
        due_at, raised_at = _raised(visit_id)
        assert due_at == due
        assert raised_at - due < timedelta(seconds=3), "raised at its time, not the tick's"
    finally:
        clock.stop()


@pytest.mark.commits  # the clock runs on its own thread and connections
def test_a_change_setting_a_due_time_wakes_a_sleeping_clock(app):
    """The clock sleeps a minute with nothing due; a committed change to a due time wakes it,
    and the alarm comes at that time."""
    _site, _nina, visit = _in_booth(utcnow(), check=1800, limit=7200, code="F-WAKE-1984")
    visit_id = visit.id
    db.session.commit()
    db.session.remove()
    clock = AlertClock(app, alerts.scan, tick=60).start()
    try:
        assert _wait_for(lambda: clock.scans >= 1, 10), "the first scan ran"
        time.sleep(0.3)  # asleep now, until the check half an hour away or the minute's tick
        visit = db.session.get(Visit, visit_id)
        due = utcnow() + timedelta(seconds=0.5)
        visit.next_check_due_at = due
        db.session.commit()
        db.session.remove()
        assert _wait_for(lambda: _raised(visit_id) is not None, 10), "the alarm was raised"
        assert _raised(visit_id)[1] - due < timedelta(seconds=3)
        assert clock.scans == 2, "one scan at start, one at the due time; no tick in between"
    finally:
        clock.stop()


@pytest.mark.commits
def test_a_rolled_back_change_does_not_wake_the_clock(app):
    _site, _nina, visit = _in_booth(utcnow(), check=1800, limit=7200, code="F-ROLL-1984")
    visit_id = visit.id
    db.session.commit()
    db.session.remove()
    clock = AlertClock(app, alerts.scan, tick=60).start()
    try:
        assert _wait_for(lambda: clock.scans >= 1, 10)
        time.sleep(0.3)
        db.session.get(Visit, visit_id).next_check_due_at = utcnow() + timedelta(seconds=0.2)
        db.session.flush()
        db.session.rollback()
        db.session.remove()
        time.sleep(1.0)
        assert clock.scans == 1, "nothing committed, nothing due: the clock slept on"
    finally:
        clock.stop()
