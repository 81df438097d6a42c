"""Password login, lockout after five failures, logout."""

from datetime import timedelta

from factories import PASSWORD, make_site, make_staff

from srs.auth import service
from srs.auth.models import AuditEvent, LoginSession, Staff
from srs.common import utcnow
from srs.extensions import db


def test_login_page_renders(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Sign in to SRS" in response.data


def test_login_then_home_lists_site(client, auth):
    site = make_site(name="Riverside")
    make_staff(site, role="supervisor", username="sam")
    response = auth.login("sam")
    assert response.status_code == 302
    page = client.get("/")
    assert page.status_code == 200
    assert b"Riverside" in page.data


def test_nurse_with_one_site_lands_on_its_floor(client, auth):
    site = make_site(slug="east")
    make_staff(site, role="nurse", username="nina")
    auth.login("nina")
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/sites/east/floor")


def test_wrong_password_says_how_many_attempts_left(client, auth):
    site = make_site()
    make_staff(site, username="nina")
    response = auth.login("nina", "wrong password")
    assert response.status_code == 401
    assert b"4 attempts left" in response.data


def test_unknown_user_gets_the_same_refusal(client, auth):
    response = auth.login("nobody", "whatever")
    assert response.status_code == 401
    assert b"Wrong username or password." in response.data


def test_five_bad_passwords_lock_the_account(client, auth):
    site = make_site()
    make_staff(site, username="nina")
    for _ in range(4):
        assert auth.login("nina", "wrong password").status_code == 401
    fifth = auth.login("nina", "wrong password")
    assert fifth.status_code == 423
    assert b"locked until" in fifth.data
    # Even the right password is refused while locked.
    right = auth.login("nina", PASSWORD)
    assert right.status_code == 423
    assert client.get("/").status_code == 302  # still signed out
    staff = db.session.execute(db.select(Staff).filter_by(username="nina")).scalar_one()
    actions = [e.action for e in db.session.execute(
        db.select(AuditEvent).filter_by(entity_id=str(staff.id))).scalars()]
    assert actions.count("login_failed") == 5
    assert "account_locked" in actions


def test_lockout_ends_after_fifteen_minutes(app):
    site = make_site()
    staff = make_staff(site, username="nina")
    now = utcnow()
    staff.locked_until = now + timedelta(minutes=15)
    db.session.commit()
    later = now + timedelta(minutes=15, seconds=1)
    assert service.authenticate("nina", PASSWORD, now=later, origin=None).id == staff.id


def test_validation_message_on_empty_fields(client, auth):
    response = auth.login("", "")
    assert response.status_code == 401 or response.status_code == 422


def test_missing_fields_name_the_field(client, auth):
    from conftest import csrf_token

    response = client.post("/login", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 422
    assert b"Enter your username." in response.data
    assert b"Enter your password." in response.data


def test_logout_ends_the_login_session(client, auth):
    site = make_site()
    make_staff(site, role="supervisor", username="sam")
    auth.login("sam")
    assert client.get("/").status_code == 200
    response = auth.logout()
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    login = db.session.execute(db.select(LoginSession)).scalar_one()
    assert login.ended_at is not None


def test_next_never_leaves_the_site(client, auth):
    site = make_site()
    make_staff(site, role="supervisor", username="sam")
    response = auth.login("sam", next="https://evil.example/")
    assert response.headers["Location"] == "/"
    response = auth.login("sam", next="//evil.example/")
    assert response.headers["Location"] == "/"


def test_login_attempts_are_rate_limited_per_address(client, auth, app):
    limit = int(app.config["SRS_LOGIN_RATE_LIMIT"].split()[0])
    for n in range(limit):
        assert auth.login(f"nobody{n}", "whatever").status_code == 401
    response = auth.login("nobody", "whatever")
    assert response.status_code == 429
    assert b"Too many attempts from this address. Wait a minute" in response.data
