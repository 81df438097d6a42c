"""The console and the floor's entry points through the test client."""

import re
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
from srs.overdose.models import Intervention, OverdoseResponse

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
    booth = make_booth(site, label="B1")
    waiting = floor.check_in(site, code="F-ABCD-1984", handle="Sparrow", actor=actor,
                             actor_roles={"nurse"}, now=utcnow())
    return floor.assign_booth(waiting, booth, actor=actor, now=utcnow())


def keys(html: str) -> list[str]:
    return re.findall(r'name="idempotency_key" value="([0-9a-f]+)"', html)


def start(auth, site, **form):
    return auth.post(f"/sites/{site.slug}/overdose/start", {"kind": "opioid", **form},
                     headers=HTMX)


def test_the_booth_tile_has_a_one_tap_start_that_opens_the_console(client, auth, site, visit):
    page = client.get(f"/sites/{site.slug}/floor").get_data(as_text=True)
    assert 'data-testid="overdose-start"' in page
    assert "Someone not checked in" in page and "Washroom" in page
    answer = start(auth, site, visit_id=visit.id)
    response = db.session.execute(db.select(OverdoseResponse)).scalar_one()
    assert answer.headers["HX-Redirect"] == f"/sites/{site.slug}/overdose/{response.id}"
    console = client.get(answer.headers["HX-Redirect"]).get_data(as_text=True)
    assert "Opioid overdose" in console and "F-ABCD-1984" in console
    assert 'data-testid="dose-im"' in console and "Booth B1" in console
    # Without htmx (no script), the same post redirects.
    plain = auth.post(f"/sites/{site.slug}/overdose/start",
                      {"kind": "opioid", "visit_id": visit.id})
    assert plain.status_code == 303 and plain.headers["Location"].endswith(
        f"/overdose/{response.id}")
    board = client.get(f"/sites/{site.slug}/floor/board").get_data(as_text=True)
    assert "Overdose console" in board, "the tile now reopens the running console"


def test_each_button_records_one_entry_and_answers_with_the_console(client, auth, site, visit):
    start(auth, site, visit_id=visit.id)
    response = db.session.execute(db.select(OverdoseResponse)).scalar_one()
    url = f"/sites/{site.slug}/overdose/{response.id}/interventions"
    answer = auth.post(url, {"kind": "oxygen_on", "oxygen_lpm": "10", "idempotency_key": "k1"},
                       headers=HTMX)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and 'id="console"' in html and 'hx-swap-oob="true"' in html
    assert "Oxygen on 10 L/min" in html and 'data-testid="oxygen-off"' in html
    again = auth.post(url, {"kind": "oxygen_on", "oxygen_lpm": "10", "idempotency_key": "k1"},
                      headers=HTMX)
    assert again.headers.get("Idempotent-Replayed") == "true"
    auth.post(url, {"kind": "naloxone", "route": "im"}, headers=HTMX)
    html = auth.post(url, {"kind": "spo2", "spo2": "88"}, headers=HTMX).get_data(as_text=True)
    assert "SpO2 88%" in html and 'data-testid="redose-countdown"' in html
    assert len(set(keys(html))) == len(keys(html)), "every button carries its own key"
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(Intervention.id))) == 3


def test_a_bad_reading_is_refused_with_its_message(client, auth, site, visit):
    start(auth, site, visit_id=visit.id)
    response = db.session.execute(db.select(OverdoseResponse)).scalar_one()
    answer = auth.post(f"/sites/{site.slug}/overdose/{response.id}/interventions",
                       {"kind": "spo2", "spo2": "120"}, headers=HTMX)
    assert answer.status_code == 422 and answer.headers["HX-Retarget"] == "#flash"
    assert "between 50 and 100" in answer.get_data(as_text=True)
    dialog = auth.post(f"/sites/{site.slug}/overdose/{response.id}/dose",
                       {"dose_mg": "20", "route": "iv"}, headers=HTMX)
    assert dialog.status_code == 422
    assert "between 0.04 and 10" in dialog.get_data(as_text=True)
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(Intervention.id))) == 0


def test_closing_from_the_console(client, auth, site, visit):
    start(auth, site, visit_id=visit.id)
    response = db.session.execute(db.select(OverdoseResponse)).scalar_one()
    url = f"/sites/{site.slug}/overdose/{response.id}/close"
    dialog = client.get(url).get_data(as_text=True)
    assert "Recovered on site" in dialog and "Transferred to hospital" in dialog
    missing = auth.post(url, {}, headers=HTMX)
    assert missing.status_code == 422 and "Choose the outcome" in missing.get_data(as_text=True)
    other = auth.post(url, {"outcome": "other"}, headers=HTMX)
    assert other.status_code == 422 and "Say what the outcome was" in other.get_data(
        as_text=True)
    done = auth.post(url, {"outcome": "recovered_on_site"}, headers=HTMX).get_data(
        as_text=True)
    assert "Closed" in done and "Recovered on site" in done
    late = auth.post(f"/sites/{site.slug}/overdose/{response.id}/interventions",
                     {"kind": "cpr"}, headers=HTMX)
    assert late.status_code == 409


def test_an_amendment_from_the_console(client, auth, site, visit):
    start(auth, site, visit_id=visit.id)
    response = db.session.execute(db.select(OverdoseResponse)).scalar_one()
    auth.post(f"/sites/{site.slug}/overdose/{response.id}/interventions",
              {"kind": "spo2", "spo2": "97"}, headers=HTMX)
    entry = db.session.execute(db.select(Intervention)).scalar_one()
    url = f"/sites/{site.slug}/overdose/{response.id}/entries/{entry.id}/amend"
    assert "Why is it corrected?" in client.get(url).get_data(as_text=True)
    refused = auth.post(url, {"spo2": "87"}, headers=HTMX)
    assert refused.status_code == 422 and "Say why" in refused.get_data(as_text=True)
    done = auth.post(url, {"spo2": "87", "amend_reason": "Misread"}, headers=HTMX)
    html = done.get_data(as_text=True)
    assert "SpO2 87%" in html and "Misread" in html and "was SpO2 97%" in html


def test_the_dashboard_shows_active_responses(client, auth, site, visit, nurse):
    service.start_response(site, kind="opioid", visit=visit, actor=Actor.of(nurse),
                           now=utcnow())
    make_staff(site, role="supervisor", username="sam")
    auth.logout()
    auth.login("sam")
    page = client.get("/supervise").get_data(as_text=True)
    assert 'data-testid="overdose-active"' in page and "Booth B1" in page
    assert 'data-testid="overdose-running"' in page, "the tile says a response is running"
    panel = client.get(f"/sites/{site.slug}/overdose/active").get_data(as_text=True)
    assert 'data-testid="overdose-clock"' in panel


def test_check_in_shows_a_recent_overdose(client, auth, site, visit, nurse):
    service.start_response(site, kind="opioid", visit=visit, actor=Actor.of(nurse),
                           now=utcnow())
    floor.discharge(visit, reason="transferred_ems", actor=Actor.of(nurse), now=utcnow())
    panel = client.get(f"/sites/{site.slug}/floor/check-in?code=F-ABCD-1984")
    assert "Overdose in the last 30 days" in panel.get_data(as_text=True)


def test_checking_in_a_client_with_a_recent_overdose_shows_it_first(client, auth, site, visit,
                                                                    nurse):
    service.start_response(site, kind="opioid", visit=visit, actor=Actor.of(nurse),
                           now=utcnow())
    floor.discharge(visit, reason="transferred_ems", actor=Actor.of(nurse), now=utcnow())
    first = auth.post(f"/sites/{site.slug}/floor/check-in", {"code": "F-ABCD-1984"})
    assert 'data-testid="flag-recent-overdose"' in first.get_data(as_text=True)
    second = auth.post(f"/sites/{site.slug}/floor/check-in",
                       {"code": "F-ABCD-1984", "reviewed": "F-ABCD-1984"})
    assert 'data-testid="checkin-done"' in second.get_data(as_text=True)


def test_the_stock_threshold_and_places_are_site_settings(client, site):
    from routes import assert_api_error, bearer

    admin = bearer(make_staff(site, role="admin"))
    url = f"/api/v1/sites/{site.id}/settings"
    assert client.get(url, headers=admin).get_json()["naloxone_low_stock"] == 10
    changed = client.patch(url, headers=admin, json={
        "naloxone_low_stock": 25, "overdose_locations": ["Washroom 1", "Alley"]})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["overdose_locations"] == ["Washroom 1", "Alley"]
    for bad, field in [({"naloxone_low_stock": -1}, "naloxone_low_stock"),
                       ({"overdose_locations": []}, "overdose_locations"),
                       ({"overdose_locations": ["A", "A"]}, "overdose_locations")]:
        assert_api_error(client.patch(url, headers=admin, json=bad), 422, field)


# --- The console's ways out: a mistake taken back, the floor, a close that ends the visit --


def _started(auth, site, visit) -> OverdoseResponse:
    start(auth, site, visit_id=visit.id)
    return db.session.execute(db.select(OverdoseResponse)).scalar_one()


def test_a_mistaken_start_is_taken_back_with_its_alarm_and_no_draft(client, auth, site, visit):
    response_id = _started(auth, site, visit).id
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
    response = _started(auth, site, visit)
    done = auth.post(f"/sites/{site.slug}/overdose/{response.id}/close",
                     {"outcome": "transferred_to_hospital"}, headers=HTMX).get_data(as_text=True)
    db.session.rollback()
    incident = db.session.execute(db.select(Incident)).scalar_one()
    assert 'data-testid="console-drafted"' in done
    assert f'href="/sites/east/incidents/{incident.id}"' in done
    # The console's live re-fetch (and a reload) keeps the link for its reporter, who must
    # still submit the draft; another nurse is not sent to someone else's draft.
    console = f"/sites/{site.slug}/overdose/{response.id}/console"
    again = client.get(console).get_data(as_text=True)
    assert f'href="/sites/east/incidents/{incident.id}"' in again
    make_staff(site, role="nurse", username="omar")
    auth.logout()
    auth.login("omar")
    assert 'data-testid="console-drafted"' not in client.get(console).get_data(as_text=True)
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
