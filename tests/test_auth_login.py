"""Password login, lockout after five failures, logout."""

import html
import re
from datetime import timedelta

import pytest
from conftest import csrf_token
from factories import PASSWORD, make_site, make_staff

from srs.auth import service
from srs.auth.models import AuditEvent, LoginSession, Staff
from srs.common import utcnow
from srs.extensions import db


def element_text(response, attribute: str) -> str:
    """The text of the one element carrying ``attribute`` (e.g. ``id="username-error"``)."""
    page = response.get_data(as_text=True)
    found = re.findall(rf'<(\w+)\b[^>]*\s{re.escape(attribute)}[^>]*>(.*?)</\1>', page, re.S)
    assert len(found) == 1, f"expected one element with {attribute}, found {len(found)}"
    return " ".join(html.unescape(found[0][1]).split())


def login_message(response) -> str:
    return element_text(response, 'data-testid="login-message"')


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
    signed_in = auth.login("nina")
    response = client.get(signed_in.headers["Location"])
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/sites/east/floor")
    # The header's SRS mark still leads her to every page she may use.
    home = client.get("/")
    assert home.status_code == 200 and "/sites/east/floor" in home.get_data(as_text=True)


def test_wrong_password_gets_the_plain_refusal(client, auth):
    """No count of attempts left: it would tell a guesser that the username exists."""
    site = make_site()
    make_staff(site, username="nina")
    response = auth.login("nina", "wrong password")
    assert response.status_code == 401
    assert login_message(response) == "Wrong username or password."
    assert b"attempt" not in response.data
    assert client.get("/").status_code == 302  # still signed out


def test_unknown_user_gets_the_same_refusal(client, auth):
    site = make_site()
    make_staff(site, username="nina")
    known = auth.login("nina", "wrong password")
    unknown = auth.login("nobody", "wrong password")
    assert unknown.status_code == known.status_code == 401
    assert login_message(unknown) == login_message(known) == "Wrong username or password."


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


def _fields_left_out(client, auth):
    return client.post("/login", data={"csrf_token": csrf_token(client)})


def _fields_left_empty(client, auth):
    return auth.login("", "")  # what a browser sends for the form submitted blank


@pytest.mark.parametrize("submit", [_fields_left_out, _fields_left_empty],
                         ids=["left out", "left empty"])
def test_blank_fields_name_the_field(client, auth, submit):
    response = submit(client, auth)
    assert response.status_code == 422
    assert element_text(response, 'id="username-error"') == "Enter your username."
    assert element_text(response, 'id="password-error"') == "Enter your password."
    assert client.get("/").status_code == 302  # still signed out


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
    assert response.headers["Location"] == "/start"
    response = auth.login("sam", next="//evil.example/")
    assert response.headers["Location"] == "/start"


def test_login_attempts_are_rate_limited_per_address(client, auth, app):
    limit = int(app.config["SRS_LOGIN_RATE_LIMIT"].split()[0])
    for n in range(limit):
        assert auth.login(f"nobody{n}", "whatever").status_code == 401
    response = auth.login("nobody", "whatever")
    assert response.status_code == 429
    assert b"Too many attempts from this address. Wait a minute" in response.data
