"""Sessions end and lock on the server's clock, not only when a screen asks."""

import logging
import time
from datetime import timedelta

import itsdangerous
import pytest
from conftest import csrf_token
from factories import PASSWORD, make_client, make_site, make_staff
from sqlalchemy import exc

from srs.auth import service
from srs.auth.models import AuditEvent, LoginSession
from srs.clients.models import Client
from srs.common import utcnow
from srs.errors import log_failure
from srs.extensions import db
from srs.live import message_channel


@pytest.fixture
def nina(client, auth):
    site = make_site(slug="east", lock_after_seconds=120)
    make_staff(site, role="nurse", username="nina")
    auth.login("nina")
    return db.session.execute(db.select(LoginSession)).scalar_one()


def test_the_scheduler_locks_idle_sessions_without_a_request(app, nina):
    now = utcnow()
    assert service.lock_idle_sessions(now=now + timedelta(seconds=119)) == 0
    assert service.lock_idle_sessions(now=now + timedelta(seconds=121)) == 1
    db.session.refresh(nina)
    assert nina.locked_at is not None
    assert service.lock_idle_sessions(now=now + timedelta(seconds=300)) == 0


def test_a_session_older_than_a_shift_needs_the_password_again(client, auth, nina):
    nina.started_at = utcnow() - service.MAX_SESSION_AGE - timedelta(minutes=1)
    db.session.commit()
    response = client.get("/sites/east/floor")
    assert response.headers["Location"].startswith("/login")
    db.session.refresh(nina)
    assert nina.ended_at is not None


def test_unlock_on_an_open_screen_just_goes_back(client, auth, nina):
    response = auth.post("/unlock", {"pin": "999999", "next": "/sites/east/floor"})
    assert response.headers["Location"] == "/sites/east/floor"
    db.session.refresh(nina)
    assert nina.failed_pins == 0 and nina.ended_at is None


class _ThreeHoursAgo(itsdangerous.TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 3 * 3600


def test_the_page_token_outlives_an_hour_on_an_open_floor_page(app, client, nina):
    client.get("/sites/east/floor")
    with client.session_transaction() as browser_session:
        raw = browser_session["csrf_token"]
    # The token a floor page rendered three hours ago, signed as Flask-WTF signs it.
    old_token = itsdangerous.URLSafeTimedSerializer(
        app.secret_key, salt="wtf-csrf-token", signer=_ThreeHoursAgo).dumps(raw)
    response = client.post("/lock", data={"csrf_token": old_token})
    assert response.status_code == 302
    db.session.refresh(nina)
    assert nina.locked_at is not None


def test_signed_out_fragment_request_redirects_the_whole_screen(client):
    make_site(slug="east")
    response = client.get("/sites/east/board", headers={
        "HX-Request": "true", "HX-Current-URL": "http://localhost/sites/east/floor"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/sites/east/floor"


def test_refused_fragment_shows_in_the_message_area(client, auth, nina):
    response = client.get("/sites/nowhere/board", headers={"HX-Request": "true"})
    assert response.status_code == 404
    assert response.headers["HX-Retarget"] == "#flash"
    assert b'role="alert"' in response.data


def _login_from_behind(client, username: str):
    client.post("/login", data={"username": username, "password": PASSWORD,
                                "csrf_token": csrf_token(client)},
                headers={"X-Forwarded-For": "203.0.113.9"})


def test_without_a_proxy_forwarded_headers_are_ignored(client):
    site = make_site()
    make_staff(site, username="sam")
    _login_from_behind(client, "sam")
    login = db.session.execute(db.select(AuditEvent).filter_by(action="login")).scalar_one()
    assert login.origin == "127.0.0.1"


def test_behind_one_proxy_the_client_address_is_recorded(app_with):
    app = app_with(SRS_PROXY_HOPS=1)
    site = make_site()
    make_staff(site, username="sam")
    _login_from_behind(app.test_client(), "sam")
    login = db.session.execute(db.select(AuditEvent).filter_by(action="login")).scalar_one()
    assert login.origin == "203.0.113.9"


def test_logged_failures_never_carry_client_codes(app, caplog):
    site = make_site()
    make_client(site, code="F-SECR-1980")
    db.session.add(Client(site_id=site.id, code="F-SECR-1980"))
    with pytest.raises(exc.IntegrityError) as raised:
        db.session.commit()
    db.session.rollback()
    log_failure(logging.getLogger("srs.test"), "check-in failed", raised.value)
    assert "IntegrityError" in caplog.text
    assert "F-SECR-1980" not in caplog.text


def test_instances_of_one_database_share_a_channel_whatever_the_spelling():
    a = message_channel("postgresql+psycopg://srs:old-secret@db:5432/srs")
    b = message_channel("postgresql://other:new-secret@db:5432/srs")
    assert a == b
    assert message_channel("postgresql+psycopg://srs@db:5432/training") != a
    assert "secret" not in a
