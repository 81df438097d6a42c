"""Wall displays: registered by a site's admin (page and API), signed in by their link, shown
the dashboard and every alarm, never locked, acting on nothing, revoked at once."""

import hashlib
import re
from datetime import timedelta

import pytest
from factories import make_booth, make_site, make_staff
from routes import assert_api_error, bearer

from srs.alerts import service as alerts
from srs.auth.models import AuditEvent, Display, LoginSession
from srs.auth.service import Actor, register_display
from srs.booths import service as floor_service
from srs.common import utcnow
from srs.extensions import db, socketio

LINK = re.compile(r'value="(http://localhost/display/(srsd_[A-Za-z0-9_-]+))"')


@pytest.fixture
def east(app):
    """Site "east" with a booth, its admin Ada, its nurse Nina, and a second site "west"."""
    site = make_site(name="East Side", slug="east", booth_check_interval_seconds=60)
    make_booth(site, label="B1")
    admin = make_staff(site, role="admin", username="ada")
    nurse = make_staff(site, role="nurse", username="nina")
    make_site(name="West End", slug="west")
    return {"site": site, "admin": admin, "nurse": nurse}


def a_display(east, name="After-care wall") -> tuple[Display, str]:
    return register_display(east["site"], name, actor=Actor.of(east["admin"]), now=utcnow())


def an_alarm(east):
    """A booth check 30 s overdue at east: one open alert, level 1."""
    site, actor = east["site"], Actor.of(east["nurse"])
    visit = floor_service.check_in(site, code="F-ABCD-1984", handle="Sparrow", actor=actor,
                                   actor_roles={"nurse"}, now=utcnow() - timedelta(minutes=3))
    floor_service.assign_booth(visit, site.booths[0], actor=actor,
                               now=utcnow() - timedelta(seconds=90))
    alerts.scan(now=utcnow())
    (alert,) = alerts.open_alerts(site)
    return alert


def audit_actions() -> list[str]:
    return [e.action for e in db.session.execute(
        db.select(AuditEvent).order_by(AuditEvent.id)).scalars()]


# --- Registering, listing, revoking: the admin's page -------------------------------------

def test_an_admin_finds_the_displays_page_from_their_site(client, auth, east):
    auth.login("ada")
    home = client.get("/").get_data(as_text=True)
    assert 'href="/sites/east/displays"' in home
    auth.login("nina")
    assert "/sites/east/displays" not in client.get("/sites/east/incidents").get_data(
        as_text=True)
    assert client.get("/sites/east/displays").status_code == 403


def test_registering_shows_the_link_once_and_keeps_only_its_hash(client, auth, east):
    auth.login("ada")
    page = auth.post("/sites/east/displays", {"name": " After-care wall "})
    assert page.status_code == 200
    link, token = LINK.search(page.get_data(as_text=True)).groups()
    assert "shown <strong>this once</strong>" in page.get_data(as_text=True)

    display = db.session.execute(db.select(Display)).scalar_one()
    assert display.name == "After-care wall" and display.site_id == east["site"].id
    assert display.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert display.created_by == east["admin"].id
    assert token not in str([getattr(display, c.key) for c in Display.__table__.columns])
    again = client.get("/sites/east/displays").get_data(as_text=True)
    assert "After-care wall" in again and token not in again
    assert "display_registered" in audit_actions()


def test_a_display_needs_a_name_no_other_display_of_the_site_has(client, auth, east):
    a_display(east)
    auth.login("ada")
    for name, message in (("", "Give the display a name"),
                          ("After-care wall", "already called &#39;After-care wall&#39;")):
        page = auth.post("/sites/east/displays", {"name": name})
        assert page.status_code == 422
        assert message in page.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Display.id))) == 1


def test_revoking_signs_the_display_out_and_is_audited(client, auth, east, app):
    display, token = a_display(east)
    auth.login("ada")
    response = auth.post(f"/sites/east/displays/{display.id}/revoke")
    assert response.headers["Location"] == "/sites/east/displays"
    db.session.refresh(display)
    assert display.revoked_at is not None
    assert "display_revoked" in audit_actions()
    assert "revoked" in client.get("/sites/east/displays").get_data(as_text=True)

    wall = app.test_client()
    answer = wall.get(f"/display/{token}")
    assert answer.status_code == 404
    assert "revoked or mistyped" in answer.get_data(as_text=True)


def test_an_admin_of_another_site_cannot_revoke_this_sites_display(client, auth, east):
    display, _token = a_display(east)
    west_admin = make_staff(role="admin", roles=[(db.session.execute(
        db.select(type(east["site"])).filter_by(slug="west")).scalar_one(), "admin")])
    auth.login(west_admin.username)
    assert auth.post(f"/sites/west/displays/{display.id}/revoke").status_code == 404
    assert auth.post(f"/sites/east/displays/{display.id}/revoke").status_code == 403
    db.session.refresh(display)
    assert display.revoked_at is None


# --- What a display sees and may do -------------------------------------------------------

def test_the_link_shows_the_dashboard_with_every_alarm_and_nothing_to_tap(client, east):
    an_alarm(east)
    _display, token = a_display(east)

    signed_in = client.get(f"/display/{token}")
    assert signed_in.headers["Location"] == "/supervise"
    page = client.get("/supervise").get_data(as_text=True)

    assert "East Side" in page and "West End" not in page
    assert 'data-display="on"' in page and 'data-idle-lock="off"' in page
    assert 'data-lock-after="0"' in page  # srs.js never locks it
    assert "Wall display · After-care wall" in page
    assert 'data-testid="alarm"' in page and "F-ABCD-1984" in page
    assert 'data-testid="display-sound-blocked"' in page  # until srs.js finds sound allowed
    for action in ("I&#39;m on it", "I'm on it", "Sign out", ">Lock<", "Open floor"):
        assert action not in page, action
    # A device, not a person: no login session, nothing for the idle lock to lock.
    assert db.session.scalar(db.select(db.func.count(LoginSession.id))) == 0
    assert "display_signed_in" in audit_actions()


def test_a_display_reads_the_dashboards_fragments_of_its_own_site_only(client, east):
    _display, token = a_display(east)
    client.get(f"/display/{token}")
    for path in ("/sites/east/board", "/sites/east/queue", "/sites/east/aftercare",
                 "/sites/east/today", "/sites/east/alerts", "/sites/east/overdose/active"):
        assert client.get(path).status_code == 200, path
    for path in ("/", "/sites/east/floor", "/sites/east/floor/alerts", "/sites/east/incidents",
                 "/sites/east/displays", "/sites/west/board", "/sites/west/today"):
        assert client.get(path).status_code == 403, path
    assert client.get("/api/v1/sites").status_code == 401  # the API wants a bearer token


def test_a_display_acts_on_nothing(client, auth, east):
    alert = an_alarm(east)
    _display, token = a_display(east)
    client.get(f"/display/{token}")
    for path, form in ((f"/sites/east/alerts/{alert.id}/acknowledge", {}), ("/lock", {}),
                       ("/logout", {}), ("/activity", {}),
                       ("/login", {"username": "nina", "password": "x"}),
                       ("/sites/east/floor/check-in", {"code": "M-NEWC-1990"})):
        assert auth.post(path, form).status_code == 403, path
    db.session.refresh(alert)
    assert alert.acknowledged_at is None
    assert client.get("/supervise").status_code == 200  # still signed in


def test_a_display_signing_in_ends_the_session_this_browser_had(client, auth, east):
    auth.login("nina")
    _display, token = a_display(east)
    client.get(f"/display/{token}")
    login = db.session.execute(db.select(LoginSession)).scalar_one()
    db.session.refresh(login)
    assert login.ended_at is not None
    assert client.get("/sites/east/floor").status_code == 403  # the wall, not Nina


def test_the_last_request_of_a_display_is_kept_to_the_minute(client, east):
    display, token = a_display(east)
    client.get(f"/display/{token}")
    display.last_seen_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    client.get("/supervise")
    db.session.refresh(display)
    assert utcnow() - display.last_seen_at < timedelta(seconds=30)


# --- Its socket -----------------------------------------------------------------------------

def _rooms(socket) -> set[str]:
    manager = socketio.server.manager
    return set(manager.get_rooms(manager.sid_from_eio_sid(socket.eio_sid, "/"), "/"))


def test_a_displays_socket_hears_the_dashboard_and_revoking_cuts_it(client, auth, east, app,
                                                                     socket_client):
    display, token = a_display(east)
    client.get(f"/display/{token}")
    wall = socket_client(auth={"view": "watch"})
    assert wall.is_connected()
    site_id = east["site"].id
    # The dashboard's room (fragments with today's figures) and the site's alarms; its own
    # room to be cut by; no person's room (a level-3 alarm is for the on-call by name).
    assert _rooms(wall) >= {f"site:{site_id}", f"site:{site_id}:dashboard",
                            f"login:display:{display.id}"}
    assert not any(room.startswith("staff:") for room in _rooms(wall))

    admin = app.test_client()
    admin.post("/login", data={"username": "ada", "password": "correct horse battery",
                               "csrf_token": _token(admin)})
    admin.post(f"/sites/east/displays/{display.id}/revoke", data={"csrf_token": _token(admin)})

    assert not wall.is_connected()  # at once: the revocation closed its room
    assert client.get("/supervise").headers["Location"].startswith("/login")
    again = socket_client(auth={"view": "watch"})
    assert not again.is_connected()


def _token(test_client) -> str:
    page = test_client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


# --- The API -----------------------------------------------------------------------------------

def test_the_api_registers_lists_and_revokes_displays(client, east):
    site_id = east["site"].id
    admin = bearer(east["admin"])
    created = client.post(f"/api/v1/sites/{site_id}/displays", json={"name": "Hall"},
                          headers=admin)
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    token = body["token"]
    assert body["url"] == f"http://localhost/display/{token}"
    assert body["display"]["name"] == "Hall" and body["display"]["revoked_at"] is None

    listed = client.get(f"/api/v1/sites/{site_id}/displays", headers=admin).get_json()
    assert [d["name"] for d in listed] == ["Hall"]
    assert token not in str(listed) and "token" not in listed[0]

    display_id = body["display"]["id"]
    revoked = client.post(f"/api/v1/sites/{site_id}/displays/{display_id}/revoke",
                          headers=admin)
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    assert client.get(f"/display/{token}").status_code == 404


def test_the_api_refuses_bad_names_other_roles_and_unknown_displays(client, east):
    site_id = east["site"].id
    admin = bearer(east["admin"])
    url = f"/api/v1/sites/{site_id}/displays"
    assert_api_error(client.post(url, json={"name": ""}, headers=admin), 422, "name")
    assert_api_error(client.post(url, json={"name": "Hall", "site": 2}, headers=admin), 422,
                     "site")
    assert_api_error(client.post(url, json={"name": "Hall"}, headers=bearer(east["nurse"])),
                     403)
    assert_api_error(client.get(url, headers=bearer(east["nurse"])), 403)
    assert_api_error(client.post(f"{url}/999999/revoke", headers=admin), 404)


def test_the_openapi_document_names_the_display_operations(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    ids = {op.get("operationId") for item in spec["paths"].values()
           for op in item.values() if isinstance(op, dict)}
    assert {"registerDisplay", "listDisplays", "revokeDisplay"} <= ids
