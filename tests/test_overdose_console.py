"""The console's ways out: a mistaken tap taken back, the floor one tap away, and a close
that ends the visit when the client left with EMS and says where its incident draft is."""

from datetime import timedelta

import pytest
from factories import make_booth, make_site, make_staff

from srs.alerts.models import Alert
from srs.auth.models import AuditEvent
from srs.auth.service import Actor
from srs.booths import checks
from srs.booths import service as floor
from srs.booths.models import Booth, Visit
from srs.common import utcnow
from srs.errors import Conflict
from srs.extensions import db
from srs.incidents.models import Incident
from srs.overdose import service
from srs.overdose.models import OverdoseResponse

HTMX = {"HX-Request": "true"}


@pytest.fixture
def site(app):
    return make_site(slug="east", name="East")


@pytest.fixture
def nurse(site, auth):
    staff = make_staff(site, role="nurse", username="nina")
    assert auth.login("nina").status_code == 302
    return staff


@pytest.fixture
def visit(site, nurse):
    actor = Actor.of(nurse)
    waiting = floor.check_in(site, code="F-ABCD-1984", handle="Sparrow", actor=actor,
                             actor_roles={"nurse"}, now=utcnow())
    return floor.assign_booth(waiting, make_booth(site, label="B1"), actor=actor, now=utcnow())


def _start(auth, site, visit) -> OverdoseResponse:
    auth.post(f"/sites/{site.slug}/overdose/start", {"kind": "opioid", "visit_id": visit.id},
              headers=HTMX)
    return db.session.execute(db.select(OverdoseResponse)).scalar_one()


def test_a_mistaken_start_is_taken_back_with_its_alarm_and_no_draft(client, auth, site, visit):
    response_id = _start(auth, site, visit).id
    console = client.get(f"/sites/{site.slug}/overdose/{response_id}").get_data(as_text=True)
    assert 'data-testid="console-mistake"' in console and 'data-testid="console-floor"' in console
    answer = auth.post(f"/sites/{site.slug}/overdose/{response_id}/cancel", headers=HTMX)
    assert answer.status_code == 200 and answer.headers["HX-Redirect"] == "/sites/east/floor"
    db.session.rollback()
    assert db.session.execute(db.select(OverdoseResponse)).first() is None
    alarm = db.session.execute(db.select(Alert).filter_by(kind="overdose")).scalar_one()
    assert alarm.resolution == "started_by_mistake"
    assert db.session.execute(db.select(Incident)).first() is None
    event = db.session.execute(db.select(AuditEvent).filter_by(
        action="overdose_cancelled")).scalar_one()
    assert event.entity_id == str(response_id) and event.detail["source"] == "booth"
    assert db.session.get(Visit, visit.id).state == "in_booth"  # the visit goes on


def test_a_mistake_can_be_taken_back_only_at_once_and_before_any_entry(site, nurse, visit):
    actor, now = Actor.of(nurse), utcnow()
    late, _ = service.start_response(site, kind="opioid", visit=visit, actor=actor,
                                     now=now - timedelta(seconds=31))
    assert not service.may_cancel(late, now=now)
    with pytest.raises(Conflict, match="Too late"):
        service.cancel_response(late, actor=actor, now=now)
    service.close_response(late, outcome="recovered_on_site", note=None, actor=actor, now=now)
    recorded, _ = service.start_response(site, kind="opioid", visit=visit, actor=actor, now=now)
    service.record_intervention(recorded, {"kind": "stimulation"}, actor=actor, now=now)
    assert not service.may_cancel(recorded, now=now + timedelta(seconds=5))


def test_a_console_an_unresponsive_check_opened_cannot_be_called_a_mistake(site, nurse, visit):
    actor, now = Actor.of(nurse), utcnow()
    check = checks.record_check(visit, {"status": "unresponsive"}, actor=actor, now=now)
    assert not service.may_cancel(check.opened_response, now=now)


def test_transferred_to_hospital_ends_the_visit_and_the_close_links_its_draft(
        client, auth, site, visit):
    response = _start(auth, site, visit)
    done = auth.post(f"/sites/{site.slug}/overdose/{response.id}/close",
                     {"outcome": "transferred_to_hospital"}, headers=HTMX).get_data(as_text=True)
    db.session.rollback()
    incident = db.session.execute(db.select(Incident)).scalar_one()
    assert 'data-testid="console-drafted"' in done
    assert f'href="/sites/east/incidents/{incident.id}"' in done
    ended = db.session.get(Visit, visit.id)
    assert (ended.state, ended.departure_reason) == ("departed", "transferred_ems")
    booth = db.session.execute(db.select(Booth).filter_by(label="B1")).scalar_one()
    assert booth.needs_cleaning_since is not None


def test_recovered_on_site_leaves_the_client_on_the_floor(site, nurse, visit):
    actor = Actor.of(nurse)
    response, _ = service.start_response(site, kind="opioid", visit=visit, actor=actor,
                                         now=utcnow())
    service.close_response(response, outcome="recovered_on_site", note=None, actor=actor,
                           now=utcnow())
    assert db.session.get(Visit, visit.id).state == "in_booth"


def test_left_against_advice_from_after_care_ends_the_visit_with_that_reason(site, nurse, visit):
    actor = Actor.of(nurse)
    floor.start_observation(visit, actor=actor, now=utcnow())
    response, _ = service.start_response(site, kind="opioid", visit=visit, actor=actor,
                                         now=utcnow())
    service.close_response(response, outcome="left_against_advice", note=None, actor=actor,
                           now=utcnow())
    ended = db.session.get(Visit, visit.id)
    assert (ended.state, ended.departure_reason) == ("departed", "left_against_advice")
