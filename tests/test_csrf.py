"""CSRF: every form post needs this browser's token; the API needs a bearer token instead."""

import pytest
from conftest import csrf_token
from factories import PASSWORD
from routes import (
    FLOOR_NURSE,
    api_body,
    assert_api_error,
    page_form,
    routes,
    url_of,
)

from srs.api.access import GATEWAY, PUBLIC
from srs.auth.models import AuditEvent, LoginSession
from srs.extensions import db

PAGE_POSTS = [r for r in routes() if not r.is_api and r.changes_state]
API_CHANGES = [r for r in routes() if r.is_api and r.changes_state]


def audit_count() -> int:
    db.session.rollback()  # read what the requests committed
    return db.session.scalar(db.select(db.func.count(AuditEvent.id)))


def open_session(staff) -> LoginSession:
    db.session.rollback()
    return db.session.execute(db.select(LoginSession).filter_by(
        staff_id=staff.id, ended_at=None)).scalar_one()


def sign_in_everywhere(floor, client, auth):
    """Sign in the person holding every role at the floor's site, so no role check
    interferes."""
    staff = floor.everyone
    assert auth.login(staff.username).status_code == 302
    assert client.get("/").status_code == 200  # a page: this session now holds its token
    floor.principal = staff  # routes naming "my own report" name one this person wrote
    return staff


@pytest.fixture(params=["missing", "from another browser"])
def bad_token(request, app):
    """No token at all, or a real token that belongs to someone else's session."""
    if request.param == "missing":
        return {}
    return {"csrf_token": csrf_token(app.test_client())}


def test_there_are_form_posts_to_check():
    assert {r.endpoint for r in PAGE_POSTS} >= {"auth.login", "auth.logout", "auth.lock_now",
                                                "auth.unlock", "auth.activity"}


# Posts that only do something from a locked screen: the refusal is checked from one.
FROM_A_LOCKED_SCREEN = {"auth.unlock"}


@pytest.mark.parametrize("route", PAGE_POSTS, ids=str)
def test_every_form_post_refuses_a_missing_or_foreign_token(kept_floor, client, auth, route,
                                                            bad_token):
    floor = kept_floor.load()
    staff = sign_in_everywhere(floor, client, auth)
    locked = route.endpoint in FROM_A_LOCKED_SCREEN
    if locked:
        assert auth.post("/lock").status_code == 302
    before = open_session(staff)
    state = (before.id, before.locked_at, before.ended_at, before.failed_pins)
    assert (state[1] is not None) is locked
    url, form = url_of(route, floor), page_form(route, floor)
    audits = audit_count()

    response = client.open(url, method=route.method, data={**form, **bad_token})

    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True), "the page says why"
    assert audit_count() == audits, "a refused post wrote to the audit trail"
    after = open_session(staff)
    assert (after.id, after.locked_at, after.ended_at, after.failed_pins) == state
    if locked:
        assert client.get("/").headers["Location"].startswith("/lock"), "still locked"
    else:
        assert client.get("/").status_code == 200, "still signed in and unlocked"

    # The token was the only thing wrong: with this browser's own token the post goes through.
    accepted = client.open(url, method=route.method,
                           data={**form, "csrf_token": csrf_token(client)})
    assert accepted.status_code in (200, 204, 302, 303), accepted.get_data(as_text=True)


def test_login_without_a_token_signs_nobody_in(kept_floor, client):
    response = client.post("/login", data={"username": FLOOR_NURSE, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").headers["Location"].startswith("/login")


@pytest.mark.parametrize("route", [r for r in PAGE_POSTS if r.endpoint in {
    s.endpoint for s in routes() if s.method == "HEAD"}], ids=str)
def test_a_head_request_never_does_what_the_form_post_does(kept_floor, client, route):
    """HEAD skips the CSRF check and the rate limits, so it must act as a GET does."""
    floor = kept_floor.load()
    audits = audit_count()
    response = client.open(url_of(route, floor), method="HEAD",
                           data=page_form(route, floor))
    assert response.status_code == 200, f"HEAD {route.rule} acted on its form body"
    assert audit_count() == audits
    assert client.get("/").headers["Location"].startswith("/login"), "nobody signed in"


def test_htmx_requests_may_send_the_token_in_a_header(kept_floor, client, auth):
    floor = kept_floor.load()
    staff = sign_in_everywhere(floor, client, auth)
    token = csrf_token(client)
    response = client.post("/lock", headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 302
    assert open_session(staff).locked_at is not None


@pytest.mark.parametrize("route", API_CHANGES, ids=str)
def test_api_changes_need_a_bearer_token_not_a_csrf_token(kept_floor, client, auth, route):
    floor = kept_floor.load()
    sign_in_everywhere(floor, client, auth)
    url, body, token = url_of(route, floor), api_body(route, floor), kept_floor.everyone_token
    declared = client.application.view_functions[route.endpoint].srs_roles
    audits = audit_count()

    if declared == PUBLIC:
        # Open to anyone, so nothing to forge but the body: what a cross-site form can send
        # (not JSON) is refused.
        forged = client.open(url, method=route.method, data=body)
        assert_api_error(forged, 422, "_body")
        assert audit_count() == audits
        token = {}
    else:
        # A signed-in browser's cookie, even with its CSRF token, is not an API credential.
        refused = client.open(url, method=route.method, json=body,
                              headers={"X-CSRFToken": csrf_token(client)})
        assert_api_error(refused, 401)
        assert audit_count() == audits
    if declared == GATEWAY:
        token = kept_floor.gateway_token

    accepted = client.open(url, method=route.method, json=body, headers=token)
    assert 200 <= accepted.status_code < 300, accepted.get_data(as_text=True)
    assert audit_count() > audits
