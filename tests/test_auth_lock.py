"""Shared tablets: the idle lock, PIN unlock, PIN lockout, switching person."""

from datetime import timedelta

import pytest
from factories import PIN, make_site, make_staff

from srs.auth import service
from srs.auth.models import AuditEvent, LoginSession
from srs.common import utcnow
from srs.extensions import db


def _login_session(username: str) -> LoginSession:
    db.session.expire_all()
    return db.session.execute(
        db.select(LoginSession).join(LoginSession.staff).where(
            LoginSession.ended_at.is_(None)).filter_by(username=username)
    ).scalar_one()


def _age(login: LoginSession, seconds: int) -> None:
    login.last_active_at = utcnow() - timedelta(seconds=seconds)
    db.session.commit()


@pytest.fixture
def nina_at_east(auth):
    """Nurse nina, signed in at site "east", which locks a screen after 120 s idle."""
    site = make_site(slug="east", lock_after_seconds=120)
    nina = make_staff(site, role="nurse", username="nina")
    assert auth.login("nina").status_code == 302
    return nina


def test_idle_past_the_site_limit_locks_on_the_next_request(client, nina_at_east):
    assert client.get("/sites/east/floor").status_code == 200
    _age(_login_session("nina"), 121)
    response = client.get("/sites/east/floor")
    assert response.status_code == 302
    assert "/lock?next=/sites/east/floor" in response.headers["Location"]
    assert _login_session("nina").locked_at is not None
    lock_page = client.get("/lock")
    assert b"Screen locked" in lock_page.data
    # Nothing behind the lock opens until the PIN is given.
    assert client.get("/sites/east/board").status_code == 302


def test_activity_within_the_limit_keeps_the_screen_open(client, auth, nina_at_east):
    _age(_login_session("nina"), 100)
    assert auth.post("/activity").status_code == 204
    assert utcnow() - _login_session("nina").last_active_at < timedelta(seconds=5)
    assert client.get("/sites/east/floor").status_code == 200


def test_background_refreshes_do_not_keep_the_screen_unlocked(client, nina_at_east):
    _age(_login_session("nina"), 100)
    headers = {"HX-Request": "true", "X-SRS-Background": "1"}
    assert client.get("/sites/east/board", headers=headers).status_code == 200
    assert utcnow() - _login_session("nina").last_active_at > timedelta(seconds=90)
    _age(_login_session("nina"), 121)
    response = client.get("/sites/east/board", headers={
        **headers, "HX-Current-URL": "http://localhost/sites/east/floor"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/lock?next=/sites/east/floor"


def test_the_strictest_site_sets_the_limit(app):
    strict, relaxed = make_site(lock_after_seconds=60), make_site(lock_after_seconds=900)
    staff = make_staff(roles=[(strict, "nurse"), (relaxed, "supervisor")])
    assert service.lock_after_seconds(staff) == 60


def test_lock_button_then_pin_unlocks_where_you_were(client, auth):
    site = make_site(slug="east")
    make_staff(site, role="nurse", username="nina")
    auth.login("nina")
    response = auth.post("/lock", {"next": "/sites/east/floor"})
    assert response.headers["Location"] == "/lock?next=/sites/east/floor"
    assert client.get("/sites/east/floor").status_code == 302
    unlocked = auth.post("/unlock", {"pin": PIN, "next": "/sites/east/floor"})
    assert unlocked.status_code == 302
    assert unlocked.headers["Location"] == "/sites/east/floor"
    assert client.get("/sites/east/floor").status_code == 200
    actions = [e.action for e in db.session.execute(db.select(AuditEvent)).scalars()]
    assert "lock" in actions and "unlock" in actions


def test_wrong_pin_says_how_many_tries_are_left(client, auth):
    site = make_site()
    make_staff(site, role="nurse", username="nina")
    auth.login("nina")
    auth.post("/lock")
    response = auth.post("/unlock", {"pin": "999999"})
    assert response.status_code == 401
    assert b"Wrong PIN. 4 attempts left" in response.data


def test_malformed_pin_is_refused_with_a_message(client, auth):
    site = make_site()
    make_staff(site, role="nurse", username="nina")
    auth.login("nina")
    auth.post("/lock")
    response = auth.post("/unlock", {"pin": "12ab"})
    assert response.status_code == 422
    assert b"Your PIN is 6 digits." in response.data
    assert _login_session("nina").failed_pins == 0


def test_five_wrong_pins_end_the_session(client, auth):
    site = make_site(slug="east")
    make_staff(site, role="nurse", username="nina")
    auth.login("nina")
    auth.post("/lock")
    for _ in range(4):
        assert auth.post("/unlock", {"pin": "999999"}).status_code == 401
    fifth = auth.post("/unlock", {"pin": "999999"})
    assert fifth.status_code == 423
    assert b"Too many wrong PINs" in fifth.data
    # The right PIN no longer helps: only a full login does.
    assert auth.post("/unlock", {"pin": PIN}).headers["Location"] == "/login"
    assert client.get("/sites/east/floor").status_code == 302
    login = db.session.execute(db.select(LoginSession)).scalar_one()
    assert login.ended_at is not None


def test_someone_else_signing_in_ends_the_locked_session(client, auth):
    site = make_site(slug="east")
    make_staff(site, role="nurse", username="nina")
    make_staff(site, role="nurse", username="omar")
    auth.login("nina")
    auth.post("/lock")
    auth.login("omar")
    page = client.get("/sites/east/floor")
    assert page.status_code == 200
    assert b"omar" in page.data
    db.session.expire_all()
    sessions = {s.staff.username: s for s in db.session.execute(db.select(LoginSession)).scalars()}
    assert sessions["nina"].ended_at is not None
    assert sessions["omar"].ended_at is None


def test_unlock_page_without_a_lock_goes_back(client, auth):
    site = make_site()
    make_staff(site, role="supervisor", username="sam")
    auth.login("sam")
    assert client.get("/lock?next=/supervise").headers["Location"] == "/supervise"


def test_pin_rules(app):
    from srs.errors import Invalid

    for bad in ("12345", "1234567", "abcdef", "111111", "123456"):
        with pytest.raises(Invalid):
            service.check_pin(bad)
    assert service.check_pin("246813") == "246813"
