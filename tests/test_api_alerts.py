"""Checks and alerts through the JSON API and the tablet's pages: input, conflicts, owners."""

import re
from datetime import timedelta

import pytest
from factories import make_booth, make_site, make_staff
from routes import assert_api_error, bearer

from srs.alerts import service as alerts
from srs.auth.models import AuditEvent
from srs.booths.models import ObservationCheck, Visit
from srs.common import utcnow
from srs.extensions import db
from srs.overdose.models import OverdoseResponse


@pytest.fixture
def api(client):
    site = make_site(slug="east", booth_check_interval_seconds=180)
    nina = make_staff(site, role="nurse", username="nina")
    omar = make_staff(site, role="supervisor", username="omar")
    booth = make_booth(site, label="B1")

    class Api:
        def __init__(self):
            self.site, self.booth, self.nina, self.omar = site, booth, nina, omar
            self.headers = {"nina": bearer(nina), "omar": bearer(omar)}

        def call(self, method, path, json=None, who="nina", key=None):
            extra = {"Idempotency-Key": key} if key else {}
            return client.open(f"/api/v1/sites/{site.id}{path}", method=method, json=json,
                               headers={**self.headers[who], **extra})

        def in_booth(self, code="F-ABCD-1984"):
            visit = self.call("POST", "/visits", {"code": code}).get_json()
            response = self.call("POST", f"/visits/{visit['id']}/booth",
                                 {"booth_id": booth.id})
            assert response.status_code == 200, response.get_json()
            return response.get_json()

    return Api()


def test_a_check_moves_the_next_check_and_is_audited(api):
    visit = api.in_booth()
    before = visit["next_check_due_at"]
    response = api.call("POST", f"/visits/{visit['id']}/checks",
                        {"status": "ok", "spo2": 96, "respiratory_rate": 14})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["status"], body["spo2"], body["respiratory_rate"], body["phase"]) == (
        "ok", 96, 14, "in_booth")
    board = api.call("GET", "/board").get_json()
    assert board["booths"][0]["visit"]["next_check_due_at"] > before
    assert db.session.execute(db.select(AuditEvent.action).order_by(AuditEvent.id.desc())
                              .limit(1)).scalar_one() == "check_recorded"


@pytest.mark.parametrize("body, field", [
    ({"status": "asleep"}, "status"),
    ({}, "status"),
    ({"status": "ok", "spo2": 49}, "spo2"),
    ({"status": "ok", "spo2": 101}, "spo2"),
    ({"status": "ok", "spo2": "96"}, "spo2"),
    ({"status": "ok", "respiratory_rate": 61}, "respiratory_rate"),
    ({"status": "ok", "pulse": 80}, "pulse"),
])
def test_bad_checks_are_refused_on_the_field_and_nothing_is_saved(api, body, field):
    visit = api.in_booth()
    response = api.call("POST", f"/visits/{visit['id']}/checks", body)
    assert_api_error(response, 422, field)
    assert db.session.query(ObservationCheck).count() == 0


def test_a_check_on_a_waiting_visit_is_a_conflict_with_its_state(api):
    visit = api.call("POST", "/visits", {"code": "F-ABCD-1984"}).get_json()
    response = api.call("POST", f"/visits/{visit['id']}/checks", {"status": "ok"})
    body = assert_api_error(response, 409)
    assert "waiting" in body["message"]


def _overdose_by_tap(api, visit) -> int:
    """An overdose started by a tap no alarm led to: its alarm is nobody's yet."""
    api.call("POST", "/overdose-responses", {"kind": "opioid", "visit_id": visit["id"]})
    return api.call("GET", "/alerts").get_json()[0]["id"]


def test_unresponsive_opens_an_overdose_alarm_owned_by_the_nurse_who_found_them(api):
    visit = api.in_booth()
    api.call("POST", f"/visits/{visit['id']}/checks", {"status": "unresponsive"})
    listed = api.call("GET", "/alerts").get_json()
    assert [(a["kind"], a["priority"], a["level"], a["booth"], a["visit_id"])
            for a in listed] == [("overdose", "high", 1, "B1", visit["id"])]
    assert listed[0]["acknowledged_by"] == api.nina.display_name
    late = api.call("POST", f"/alerts/{listed[0]['id']}/acknowledge", who="omar")
    body = assert_api_error(late, 409)
    assert api.nina.display_name in body["message"]


def test_the_first_to_acknowledge_an_alarm_nobody_owns_owns_it(api):
    alert_id = _overdose_by_tap(api, api.in_booth())
    assert api.call("GET", "/alerts").get_json()[0]["acknowledged_by"] is None
    mine = api.call("POST", f"/alerts/{alert_id}/acknowledge", who="omar")
    assert mine.status_code == 200
    assert mine.get_json()["acknowledged_by"] == api.omar.display_name
    late = api.call("POST", f"/alerts/{alert_id}/acknowledge", who="nina")
    body = assert_api_error(late, 409)
    assert api.omar.display_name in body["message"]
    assert api.call("GET", "/alerts").get_json()[0]["acknowledged_by"] == api.omar.display_name


def test_acknowledging_twice_with_one_key_is_one_acknowledgement(api):
    alert_id = _overdose_by_tap(api, api.in_booth())
    first = api.call("POST", f"/alerts/{alert_id}/acknowledge", key="tap-1")
    again = api.call("POST", f"/alerts/{alert_id}/acknowledge", key="tap-1")
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert db.session.execute(db.select(db.func.count()).select_from(AuditEvent).filter_by(
        action="alert_acknowledged")).scalar_one() == 1


def test_an_alert_of_another_site_is_not_found(api):
    west = make_site(slug="west")
    make_staff(west, role="nurse", username="wes")
    visit = api.in_booth()
    api.call("POST", f"/visits/{visit['id']}/checks", {"status": "unresponsive"})
    alert_id = api.call("GET", "/alerts").get_json()[0]["id"]
    api.headers["nina-west"] = bearer(make_staff(west, role="nurse", username="nw"))
    from flask import current_app

    response = current_app.test_client().post(
        f"/api/v1/sites/{west.id}/alerts/{alert_id}/acknowledge",
        headers=api.headers["nina-west"])
    assert_api_error(response, 404)


def test_the_openapi_document_names_the_operations(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operations = {op["operationId"] for path in spec["paths"].values()
                  for op in path.values() if isinstance(op, dict)}
    assert {"recordObservationCheck", "listAlerts", "acknowledgeAlert"} <= operations


# --- The tablet's pages ------------------------------------------------------------------

def test_the_tablet_records_a_check_from_its_dialog(api, client, auth):
    visit = api.in_booth()
    auth.login("nina")
    dialog = client.get(f"/sites/east/floor/visits/{visit['id']}/check")
    assert dialog.status_code == 200
    page = dialog.get_data(as_text=True)
    assert 'data-testid="check-unresponsive"' in page and 'name="spo2"' in page
    bad = auth.post(f"/sites/east/floor/visits/{visit['id']}/check",
                    {"status": "ok", "spo2": "9x"})
    assert bad.status_code == 422
    assert "SpO2 is a whole number" in bad.get_data(as_text=True)
    assert 'value="9x"' in bad.get_data(as_text=True)
    done = auth.post(f"/sites/east/floor/visits/{visit['id']}/check",
                     {"status": "unresponsive", "spo2": "84"})
    assert done.status_code == 200
    # Unresponsive: the tablet goes straight to the overdose console, whose alarm is the
    # checking nurse's: she is on it.
    assert "/overdose/" in done.headers["HX-Redirect"]
    alarms = client.get("/sites/east/floor/alerts").get_data(as_text=True)
    assert 'data-priority="high"' in alarms and 'data-acknowledged="1"' in alarms
    assert f"Owned by {api.nina.display_name}" in alarms


def test_acknowledging_on_a_page_shows_the_owner_on_every_view(api, client, auth):
    alert_id = _overdose_by_tap(api, api.in_booth())
    auth.login("nina")
    owned = auth.post(f"/sites/east/alerts/{alert_id}/acknowledge", {"view": "floor"})
    assert owned.status_code == 200
    assert f"Owned by {api.nina.display_name}" in owned.get_data(as_text=True)
    assert 'data-alarms="floor"' in owned.get_data(as_text=True)
    auth.logout()
    auth.login("omar")
    watch = client.get("/sites/east/alerts").get_data(as_text=True)
    assert f"Owned by {api.nina.display_name}" in watch and 'data-alarms="watch"' in watch
    dashboard = client.get("/supervise").get_data(as_text=True)
    assert f"Owned by {api.nina.display_name}" in dashboard


def test_the_tiles_count_down_to_the_next_check(api, client, auth):
    api.in_booth()
    auth.login("nina")
    board = client.get("/sites/east/floor/board").get_data(as_text=True)
    assert 'data-testid="booth-next-check"' in board and "left" in board


def test_on_call_must_be_a_supervisor_of_the_site(api, client):
    admin = make_staff(api.site, role="admin", username="ada")
    headers = bearer(admin)
    refused = client.patch(f"/api/v1/sites/{api.site.id}/settings",
                           json={"on_call_staff_id": api.nina.id}, headers=headers)
    assert_api_error(refused, 422, "on_call_staff_id")
    accepted = client.patch(f"/api/v1/sites/{api.site.id}/settings",
                            json={"on_call_staff_id": api.omar.id}, headers=headers)
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["on_call_staff_id"] == api.omar.id


def test_level_three_reaches_the_on_call_supervisor_by_name(api, app, socket_client, auth):
    api.site.on_call_staff_id = api.omar.id
    db.session.commit()
    visit = api.in_booth()
    auth.login("omar")
    screen = socket_client()
    screen.get_received()
    grace = api.site.escalation_grace_seconds
    due = utcnow() + timedelta(seconds=180)
    db.session.expire_all()
    alerts.scan(now=due + timedelta(seconds=2 * grace))
    events = [e for e in screen.get_received() if e["name"] == "alert"]
    assert any(e["args"][0].get("on_call") and e["args"][0]["level"] == 3 for e in events)
    assert all(e["args"][0]["visit_id"] == visit["id"] for e in events)


def test_an_unresponsive_check_after_two_closed_responses_still_opens_the_console(
        api, client, auth):
    """The visit has used the form's two emergencies; an unresponsive client still gets a
    console, and the check, its alarm and the response are stored together."""
    visit = api.in_booth()
    for _ in range(2):
        started = api.call("POST", "/overdose-responses",
                           {"kind": "opioid", "visit_id": visit["id"]})
        assert started.status_code == 201, started.get_json()
        closed = api.call("POST", f"/overdose-responses/{started.get_json()['id']}/close",
                          {"outcome": "recovered_on_site"})
        assert closed.status_code == 200, closed.get_json()
    # A tap on Overdose is still told the form holds two (the nurse discharges and re-checks).
    assert_api_error(api.call("POST", "/overdose-responses",
                              {"kind": "opioid", "visit_id": visit["id"]}), 409)

    auth.login("nina")
    done = auth.post(f"/sites/east/floor/visits/{visit['id']}/check",
                     {"status": "unresponsive"})

    assert done.status_code == 200, done.get_data(as_text=True)
    console = done.headers["HX-Redirect"]
    assert "/overdose/" in console
    page = client.get(console)
    assert page.status_code == 200 and b"Naloxone" in page.data
    db.session.rollback()  # read what the requests committed
    responses = db.session.query(OverdoseResponse).filter_by(visit_id=visit["id"]).all()
    assert len(responses) == 3 and [r.is_open for r in responses].count(True) == 1
    assert db.session.query(ObservationCheck).count() == 1
    open_alarms = api.call("GET", "/alerts").get_json()
    assert [a["kind"] for a in open_alarms] == ["overdose"]  # the console took it over


def test_a_dashboard_of_two_sites_marks_the_one_with_an_alarm_nobody_owns(api, client, auth):
    west = make_site(slug="west", name="West End")
    make_staff(username="sol", roles=[(api.site, "supervisor"), (west, "supervisor")])
    visit = api.in_booth()
    now = utcnow()
    alert = alerts.raise_alert(site=api.site, kind="booth_check_due", due_at=now, now=now,
                               visit=db.session.get(Visit, visit["id"]))
    db.session.commit()
    auth.login("sol")

    def marks() -> dict:
        page = client.get("/supervise").get_data(as_text=True)
        found = {}
        for site in (api.site, west):
            link = re.search(rf'<a class="([^"]*)"[^>]*data-site-nav="{site.id}".*?</a>', page,
                             re.S)
            badge = re.search(r'data-testid="site-nav-alarms"( hidden)?>([^<]*)<', link[0])
            found[site.slug] = ("site-nav__site--alarming" in link[1],
                                None if badge[1] else badge[2])
        bar = re.search(r'data-testid="site-alarm-bar"[^>]*?( hidden)?>(.*?)</div>', page, re.S)
        found["bar"] = None if bar[1] else re.findall(r'<a [^>]*>([^<]*)</a>', bar[2])
        return found

    assert marks() == {"east": (True, "1 alarm"), "west": (False, None),
                       "bar": [f"{api.site.name} · 1"]}
    assert auth.post(f"/sites/east/alerts/{alert.id}/acknowledge",
                     {"view": "watch"}).status_code == 200
    assert marks() == {"east": (False, None), "west": (False, None), "bar": None}, \
        "someone is on it"
