"""A locked tablet: another member of the site's floor staff switches in by name and PIN, and
"I'm on it" from the lock screen goes through the same step, so it carries a person."""

import re
from datetime import timedelta

import pytest
from conftest import AuthActions
from factories import PIN, make_booth, make_site, make_staff

from srs import live
from srs.alerts import service as alerts
from srs.alerts.models import Alert
from srs.auth.models import AuditEvent, LoginSession
from srs.auth.service import Actor
from srs.booths import service as floor_service
from srs.common import utcnow
from srs.extensions import db

OMARS_PIN = "975312"
WRONG_PIN = "135790"
FLOOR = "/sites/east/floor"


@pytest.fixture
def east(app, client, auth):
    """Site "east": Nina signed in on its tablet and locked there; Omar (nurse) and Sam
    (supervisor) also on its floor; an admin, a nurse without a PIN and a nurse of another
    site, none of whom may switch in."""
    site = make_site(name="East Side", slug="east", booth_check_interval_seconds=60)
    make_booth(site, label="B1")
    people = {
        "nina": make_staff(site, role="nurse", username="nina"),
        "omar": make_staff(site, role="nurse", username="omar", pin=OMARS_PIN),
        "sam": make_staff(site, role="supervisor", username="sam"),
        "ada": make_staff(site, role="admin", username="ada"),
        "pat": make_staff(site, role="nurse", username="pat", pin=None),
        "wes": make_staff(make_site(slug="west"), role="nurse", username="wes"),
    }
    for username, name in (("nina", "Nina Park"), ("omar", "Omar Diaz"), ("sam", "Sam Lee"),
                           ("ada", "Ada Admin"), ("pat", "Pat Nopin"), ("wes", "Wes West")):
        people[username].display_name = name
    db.session.commit()
    auth.login("nina")
    assert auth.post("/lock", {"next": FLOOR}).status_code == 302
    return {"site": site, **people}


def open_session() -> LoginSession:
    db.session.expire_all()
    return db.session.execute(
        db.select(LoginSession).where(LoginSession.ended_at.is_(None))).scalar_one()


def an_alarm(east) -> Alert:
    site, actor = east["site"], Actor.of(east["nina"])
    visit = floor_service.check_in(site, code="F-ABCD-1984", handle="Sparrow", actor=actor,
                                   actor_roles={"nurse"}, now=utcnow() - timedelta(minutes=3))
    floor_service.assign_booth(visit, site.booths[0], actor=actor,
                               now=utcnow() - timedelta(seconds=90))
    alerts.scan(now=utcnow())
    (alert,) = alerts.open_alerts(site)
    return alert


def names_on(html: str) -> list[str]:
    return re.findall(r'data-testid="lock-person">([^<]+)<', html)


# --- Switching person --------------------------------------------------------------------------

def test_the_lock_screen_lists_the_sites_floor_staff_by_name(client, east):
    page = client.get(f"/lock?next={FLOOR}").get_data(as_text=True)
    assert "Someone else? Tap your name" in page
    # Floor roles with a PIN, at this site; the locked person unlocks with the keypad above.
    assert names_on(page) == ["Omar Diaz", "Sam Lee"]
    assert 'href="/lock?next=/sites/east/floor&amp;person=' in page


def test_tapping_a_name_asks_that_person_for_their_pin(client, east):
    omar = east["omar"]
    page = client.get(f"/lock?next={FLOOR}&person={omar.id}").get_data(as_text=True)
    assert "Omar Diaz</strong>,\n     enter your PIN" in page
    assert "Nina Park will be signed out." in page
    assert 'action="/lock/switch"' in page and f'name="staff_id" value="{omar.id}"' in page
    # Someone not on this site's floor staff is not offered: the plain lock screen.
    for stranger in ("ada", "pat", "wes"):
        other = client.get(f"/lock?next={FLOOR}&person={east[stranger].id}")
        assert 'data-testid="locked-user"' in other.get_data(as_text=True), stranger


def test_a_pin_switches_person_ends_the_previous_session_and_cuts_its_sockets(
        client, auth, east, monkeypatch):
    cut = []
    monkeypatch.setattr(live, "end_login_sockets", lambda key, why: cut.append((key, why)))
    ninas = open_session()

    answer = auth.post("/lock/switch", {"staff_id": east["omar"].id, "pin": OMARS_PIN,
                                        "next": FLOOR})

    assert answer.headers["Location"] == FLOOR
    db.session.refresh(ninas)
    assert ninas.ended_at is not None
    omars = open_session()
    assert omars.staff_id == east["omar"].id and omars.locked_at is None
    assert cut == [(ninas.key, "replaced")]
    floor = client.get(FLOOR)
    assert floor.status_code == 200
    assert 'data-testid="current-user">Omar Diaz<' in floor.get_data(as_text=True)
    login = db.session.execute(db.select(AuditEvent).filter_by(
        action="login", staff_id=east["omar"].id)).scalar_one()
    assert login.detail == {"by": "pin", "site_id": east["site"].id}


def test_tapping_your_own_name_just_unlocks(client, auth, east):
    ninas = open_session()
    answer = auth.post("/lock/switch", {"staff_id": east["nina"].id, "pin": PIN,
                                        "next": FLOOR})
    assert answer.headers["Location"] == FLOOR
    assert open_session().id == ninas.id and open_session().locked_at is None


def test_someone_not_on_the_sites_floor_cannot_switch_in(client, auth, east):
    for stranger in ("ada", "pat", "wes"):
        answer = auth.post("/lock/switch", {"staff_id": east[stranger].id, "pin": PIN,
                                            "next": FLOOR})
        assert answer.status_code == 404, stranger
        assert "not on this site&#39;s floor staff" in answer.get_data(as_text=True)
    assert open_session().staff_id == east["nina"].id
    assert open_session().failed_pins == 0  # not a PIN guess


def test_wrong_pins_count_against_the_screen_whoever_typed_them(client, auth, east):
    for person, left in (("omar", 4), ("sam", 3), ("omar", 2), ("nina", 1)):
        answer = auth.post("/lock/switch", {"staff_id": east[person].id, "pin": WRONG_PIN,
                                            "next": FLOOR})
        assert answer.status_code == 401
        page = answer.get_data(as_text=True)
        assert f"Wrong PIN. {left} attempt" in page
        assert f'name="staff_id" value="{east[person].id}"' in page  # still their PIN step
    fifth = auth.post("/unlock", {"pin": WRONG_PIN, "next": FLOOR})
    assert fifth.status_code == 423
    assert "Too many wrong PINs" in fifth.get_data(as_text=True)
    # Only a full login gets back in, for anyone.
    after = auth.post("/lock/switch", {"staff_id": east["omar"].id, "pin": OMARS_PIN})
    assert after.headers["Location"] == "/login"
    assert db.session.scalar(db.select(db.func.count(LoginSession.id)).where(
        LoginSession.ended_at.is_(None))) == 0


def test_unlocking_switching_and_taking_an_alarm_share_one_rate_limit(app_with):
    app = app_with(SRS_PIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    auth = AuthActions(client)
    site = make_site(slug="east", booth_check_interval_seconds=60)
    make_booth(site, label="B1")
    nina = make_staff(site, role="nurse", username="nina")
    omar = make_staff(site, role="nurse", username="omar", pin=OMARS_PIN)
    auth.login("nina")
    auth.post("/lock", {"next": FLOOR})
    alert = an_alarm({"site": site, "nina": nina})
    assert auth.post("/unlock", {"pin": WRONG_PIN}).status_code == 401
    assert auth.post("/lock/switch", {"staff_id": omar.id, "pin": WRONG_PIN,
                                      "next": FLOOR}).status_code == 401
    assert auth.post(f"/sites/east/lock/alerts/{alert.id}/acknowledge",
                     {"staff_id": omar.id, "pin": WRONG_PIN}).status_code == 401
    limited = auth.post("/lock/switch", {"staff_id": omar.id, "pin": OMARS_PIN,
                                         "next": FLOOR})
    assert limited.status_code == 429
    assert open_session().staff_id == nina.id


def test_a_lock_screen_with_no_floor_site_offers_no_switch(client, auth, app):
    here, there = make_site(slug="north"), make_site(slug="south")
    make_staff(roles=[(here, "supervisor"), (there, "supervisor")], username="sue")
    auth.login("sue")
    auth.post("/lock", {"next": "/supervise"})
    page = client.get("/lock?next=/supervise").get_data(as_text=True)
    assert "Someone else?" not in page and "lock-alarms" not in page
    assert 'data-testid="locked-user"' in page


# --- Taking an alarm from the lock screen ---------------------------------------------------

def test_the_lock_screen_shows_the_sites_open_alarms_with_im_on_it(client, east):
    alert = an_alarm(east)
    page = client.get(f"/lock?next={FLOOR}").get_data(as_text=True)
    assert 'hx-get="/sites/east/lock/alerts?next=/sites/east/floor"' in page

    alarms = client.get(f"/sites/east/lock/alerts?next={FLOOR}")
    assert alarms.status_code == 200
    html = alarms.get_data(as_text=True)
    assert 'data-alarms="floor"' in html  # srs.js sounds it, every level, as on the floor
    assert "Booth check due" in html and "F-ABCD-1984" in html and "Sparrow" in html
    assert f'href="/lock?next=/sites/east/floor&amp;alert={alert.id}"' in html
    assert 'hx-trigger="every 2s"' in html  # no socket on a locked screen: it asks
    # Its sound can be paused for the grace, as on every screen; never acknowledged there.
    assert 'data-testid="silence"' in html and 'data-grace="' in html


def test_im_on_it_asks_who_is_taking_it_everyone_on_the_floor_included(client, east):
    alert = an_alarm(east)
    page = client.get(f"/lock?next={FLOOR}&alert={alert.id}").get_data(as_text=True)
    assert "Who is taking this alarm?" in page
    assert names_on(page) == ["Nina Park", "Omar Diaz", "Sam Lee"]
    step = client.get(f"/lock?next={FLOOR}&alert={alert.id}&person={east['omar'].id}")
    html = step.get_data(as_text=True)
    assert f'action="/sites/east/lock/alerts/{alert.id}/acknowledge"' in html
    assert "enter your PIN to take the alarm" in html
    assert client.get(f"/sites/east/lock/alerts?next={FLOOR}&alert={alert.id}").get_data(
        as_text=True).count("is-picked") == 1


def test_a_second_nurse_takes_the_alarm_with_their_pin_and_owns_it(client, auth, east):
    alert = an_alarm(east)
    answer = auth.post(f"/sites/east/lock/alerts/{alert.id}/acknowledge",
                       {"staff_id": east["omar"].id, "pin": OMARS_PIN, "next": FLOOR})
    assert answer.headers["Location"] == FLOOR
    db.session.refresh(alert)
    assert alert.acknowledged_by == east["omar"].id
    assert open_session().staff_id == east["omar"].id
    event = db.session.execute(db.select(AuditEvent).filter_by(
        action="alert_acknowledged")).scalar_one()
    assert event.staff_id == east["omar"].id
    for path in ("/sites/east/floor/alerts", "/sites/east/alerts"):
        assert "Owned by Omar Diaz" in client.get(path).get_data(as_text=True), path


def test_the_locked_person_takes_the_alarm_with_their_own_pin(client, auth, east):
    alert = an_alarm(east)
    ninas = open_session()
    auth.post(f"/sites/east/lock/alerts/{alert.id}/acknowledge",
              {"staff_id": east["nina"].id, "pin": PIN, "next": FLOOR})
    db.session.refresh(alert)
    assert alert.acknowledged_by == east["nina"].id
    assert open_session().id == ninas.id and open_session().locked_at is None


def test_a_wrong_pin_takes_no_alarm(client, auth, east):
    alert = an_alarm(east)
    answer = auth.post(f"/sites/east/lock/alerts/{alert.id}/acknowledge",
                       {"staff_id": east["omar"].id, "pin": WRONG_PIN, "next": FLOOR})
    assert answer.status_code == 401
    assert "Wrong PIN. 4 attempts left" in answer.get_data(as_text=True)
    db.session.refresh(alert)
    assert alert.acknowledged_at is None
    assert open_session().staff_id == east["nina"].id


def test_an_alarm_someone_took_first_still_lets_the_person_in(client, auth, east):
    alert = an_alarm(east)
    alerts.acknowledge(alert, actor=Actor.of(east["sam"]), now=utcnow())
    answer = auth.post(f"/sites/east/lock/alerts/{alert.id}/acknowledge",
                       {"staff_id": east["omar"].id, "pin": OMARS_PIN, "next": FLOOR})
    assert answer.headers["Location"] == FLOOR
    db.session.refresh(alert)
    assert alert.acknowledged_by == east["sam"].id
    assert "Owned by Sam Lee" in client.get("/sites/east/floor/alerts").get_data(as_text=True)


def test_an_open_screen_takes_alarms_with_its_own_button_not_this_one(client, auth, east):
    alert = an_alarm(east)
    auth.post("/unlock", {"pin": PIN})
    answer = auth.post(f"/sites/east/lock/alerts/{alert.id}/acknowledge",
                       {"staff_id": east["omar"].id, "pin": OMARS_PIN, "next": FLOOR})
    assert answer.headers["Location"] == FLOOR
    db.session.refresh(alert)
    assert alert.acknowledged_at is None
    assert open_session().staff_id == east["nina"].id
