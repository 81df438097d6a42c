"""Who owns an alarm: the person acting on it, so that escalation matches what people do."""

from datetime import UTC, datetime, timedelta

from factories import make_booth, make_site, make_staff

from srs.alerts import service as alerts
from srs.alerts.models import Alert
from srs.auth.models import AuditEvent
from srs.auth.service import Actor
from srs.booths import service as floor
from srs.extensions import db
from srs.overdose import service as overdose

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _response_in_booth(grace=60):
    site = make_site(slug="own", escalation_grace_seconds=grace)
    nina = Actor.of(make_staff(site, role="nurse", username="nina"))
    omar = Actor.of(make_staff(site, role="nurse", username="omar"))
    booth = make_booth(site, label="B1")
    waiting = floor.check_in(site, code="F-OWNS-1984", handle=None, actor=nina,
                             actor_roles={"nurse"}, now=NOW - timedelta(minutes=10))
    visit = floor.assign_booth(waiting, booth, actor=nina, now=NOW - timedelta(minutes=5))
    response, _ = overdose.start_response(site, kind="opioid", visit=visit, actor=nina, now=NOW)
    return site, nina, omar, response


def _overdose_alert(response) -> Alert:
    db.session.expire_all()
    return db.session.execute(db.select(Alert).filter_by(
        subject_type="response", subject_id=response.id, kind="overdose")).scalar_one()


def test_the_first_entry_on_the_console_owns_the_overdose_alarm_and_stops_escalation(app):
    site, nina, _omar, response = _response_in_booth()
    assert _overdose_alert(response).acknowledged_by is None
    overdose.record_intervention(response, {"kind": "stimulation"}, actor=nina,
                                 now=NOW + timedelta(seconds=20))
    alert = _overdose_alert(response)
    assert alert.acknowledged_by == nina.staff_id
    assert alert.acknowledged_at == NOW + timedelta(seconds=20)
    # Three graces later nobody has been told "nobody on it": it stays at level 1.
    alerts.scan(now=NOW + timedelta(seconds=200))
    assert _overdose_alert(response).level == 1
    assert db.session.execute(db.select(db.func.count()).select_from(AuditEvent).filter_by(
        action="alert_acknowledged", entity_id=str(alert.id))).scalar_one() == 1


def test_an_alarm_someone_already_owns_stays_theirs_when_another_nurse_records(app):
    site, nina, omar, response = _response_in_booth()
    alerts.acknowledge(_overdose_alert(response), actor=omar, now=NOW + timedelta(seconds=5))
    overdose.record_intervention(response, {"kind": "stimulation"}, actor=nina,
                                 now=NOW + timedelta(seconds=20))
    assert _overdose_alert(response).acknowledged_by == omar.staff_id


def test_without_an_entry_an_overdose_alarm_escalates_as_before(app):
    site, _nina, _omar, response = _response_in_booth()
    alerts.scan(now=NOW + timedelta(seconds=130))
    assert _overdose_alert(response).level == 3


def test_a_response_started_from_an_alarm_is_owned_by_the_nurse_who_answered_it(app):
    """A booth check alarm sounds; the nurse who goes finds an overdose and taps Overdose:
    the overdose alarm is hers at once, and never tells the on-call that nobody is on it."""
    site = make_site(slug="answer", escalation_grace_seconds=60,
                     booth_check_interval_seconds=60)
    nina = Actor.of(make_staff(site, role="nurse", username="nina"))
    booth = make_booth(site, label="B1")
    waiting = floor.check_in(site, code="F-ANSW-1984", handle=None, actor=nina,
                             actor_roles={"nurse"}, now=NOW - timedelta(minutes=3))
    visit = floor.assign_booth(waiting, booth, actor=nina, now=NOW - timedelta(minutes=2))
    alerts.scan(now=NOW - timedelta(seconds=30))  # the booth check came due: its alarm sounds
    response, _ = overdose.start_response(site, kind="opioid", visit=visit, actor=nina, now=NOW)
    alert = _overdose_alert(response)
    assert alert.acknowledged_by == nina.staff_id
    alerts.scan(now=NOW + timedelta(seconds=200))
    assert _overdose_alert(response).level == 1, "owned: it re-sounds, it never escalates"
