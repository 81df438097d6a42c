"""A client's page for supervisors and admins: finding a client by code, setting and lifting a
service restriction and a note (each audited, each refusal beside its field with what was
typed kept), the check-in that shows them, and the same through the API."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import csrf_token
from factories import ACTOR, make_client, make_site, make_staff
from routes import bearer, field_error, input_value

from srs.auth.models import AuditEvent
from srs.booths import service as floor
from srs.booths import views as booth_views
from srs.booths.models import Visit
from srs.clients.models import Client
from srs.common import utcnow
from srs.extensions import db

HTMX = {"HX-Request": "true"}


class Desk:
    """A site, its client F-ABCD-1984 and a signed-in supervisor's browser."""

    def __init__(self, client, auth):
        self.browser, self.auth = client, auth
        self.site = make_site(name="East Side", slug="east")
        self.client = make_client(self.site, code="F-ABCD-1984", handle="Sparrow")
        self.supervisor = make_staff(self.site, role="supervisor", username="sam")
        self.sign_in(self.supervisor)

    @property
    def today(self):
        return self.site.local_date(utcnow())

    def sign_in(self, staff):
        self.auth.logout()
        assert self.auth.login(staff.username).status_code == 302
        self.token = csrf_token(self.browser)

    def url(self, path: str = "") -> str:
        return f"/sites/{self.site.slug}/clients/{self.client.id}{path}"

    def post(self, path: str, data: dict | None = None):
        return self.browser.post(self.url(path), data={"csrf_token": self.token, **(data or {})},
                                 headers=HTMX)

    def restrict(self, **data):
        form = {"reason": "violence", "note": "Threatened staff",
                "until": (self.today + timedelta(days=7)).isoformat(), **data}
        return self.post("/restriction", form)

    def fresh(self) -> Client:
        db.session.rollback()  # read what the request committed
        return db.session.get(Client, self.client.id)


@pytest.fixture
def desk(client, auth):
    return Desk(client, auth)


def text(response) -> str:
    return response.get_data(as_text=True)


def events(action: str) -> list[AuditEvent]:
    db.session.rollback()
    return list(db.session.execute(db.select(AuditEvent).filter_by(action=action)
                                   .order_by(AuditEvent.id)).scalars())


# --- Finding a client and opening their page ------------------------------------------------


def test_a_supervisor_finds_a_client_by_part_of_the_code(desk):
    make_client(desk.site, code="M-WXYZ-1990")
    found = text(desk.browser.get("/sites/east/clients?code=abcd"))
    assert f'href="/sites/east/clients/{desk.client.id}"' in found
    assert "F-ABCD-1984" in found and "M-WXYZ-1990" not in found
    assert events("client_search")

    short = text(desk.browser.get("/sites/east/clients?code=A"))
    assert "at least 2 characters" in field_error(short, "code")
    none = text(desk.browser.get("/sites/east/clients?code=QQQQ"))
    assert 'data-testid="no-clients"' in none


def test_the_clients_page_shows_the_record_and_audits_the_read(desk):
    page = desk.browser.get(desk.url())
    body = text(page)
    assert page.status_code == 200
    assert "F-ABCD-1984" in body and "Sparrow" in body
    assert re.findall(r'figure__label">([^<]+)<', body) == [
        "Visits", "Overdoses", "Referrals", "Incidents", "Take-home kits",
        "Naloxone training sessions"]
    assert re.search(r"Visits</dt><dd[^>]*>0<", body)
    assert 'href="/sites/east/audit?client=F-ABCD-1984"' in body
    assert "Who has looked at or changed this record" in body
    assert f"/sites/east/clients/{desk.client.id}/record.pdf" in body
    assert f"/sites/east/clients/{desk.client.id}/record.csv" in body
    [viewed] = events("client_viewed")
    assert viewed.entity_id == str(desk.client.id) and viewed.staff_id == desk.supervisor.id


def test_another_sites_client_is_not_found_here(desk):
    west = make_site(slug="west")
    theirs = make_client(west, code="F-ABCD-1984")
    assert desk.browser.get(f"/sites/east/clients/{theirs.id}").status_code == 404


def test_a_nurse_may_not_open_a_clients_page_or_change_a_flag(desk):
    desk.sign_in(make_staff(desk.site, role="nurse"))
    assert desk.browser.get(desk.url()).status_code == 403
    assert desk.restrict().status_code == 403
    assert desk.fresh().restricted_until is None


# --- The restriction --------------------------------------------------------------------------


def test_a_restriction_set_here_stops_a_nurses_check_in_until_it_is_lifted(desk):
    until = desk.today + timedelta(days=7)
    saved = desk.restrict(until=until.isoformat())
    body = text(saved)
    assert saved.status_code == 200
    assert "Restriction saved." in body
    assert (f"Service restriction until {until:%d %b %Y}: Violence or threats: "
            f"Threatened staff") in body
    client = desk.fresh()
    assert client.restricted_until == until
    assert client.restriction_reason == "Violence or threats: Threatened staff"
    [event] = events("client_restricted")
    assert event.entity_id == str(client.id) and event.staff_id == desk.supervisor.id
    assert event.detail == {"reason": "violence", "until": until.isoformat(),
                            "replaced": False}, "ids and settings only, never the note"

    nurse = make_staff(desk.site, role="nurse")
    desk.sign_in(nurse)
    review = desk.browser.post("/sites/east/floor/check-in", headers=HTMX, data={
        "csrf_token": desk.token, "code": "F-ABCD-1984"})
    assert "Violence or threats: Threatened staff" in text(review)
    assert "A supervisor must check this client in" in text(review)

    desk.sign_in(desk.supervisor)
    lifted = desk.post("/restriction/lift")
    assert lifted.status_code == 200 and "Restriction lifted." in text(lifted)
    assert 'data-testid="flag-unrestricted"' in text(lifted)
    client = desk.fresh()
    assert client.restricted_until is None and client.restriction_reason is None
    assert len(events("client_restriction_lifted")) == 1

    desk.sign_in(nurse)
    done = desk.browser.post("/sites/east/floor/check-in", headers=HTMX, data={
        "csrf_token": desk.token, "code": "F-ABCD-1984"})
    assert done.status_code == 200 and "checked in at" in text(done)
    assert db.session.scalar(db.select(db.func.count(Visit.id))) == 1


def test_the_page_shows_the_restriction_in_force_in_its_form(desk):
    desk.restrict(reason="weapon", note="Knife at the door")
    page = text(desk.browser.get(desk.url()))
    assert re.search(r'<option value="weapon" selected>', page)
    assert input_value(page, "note") == "Knife at the door"
    assert 'data-testid="lift-restriction"' in page


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"reason": ""}, "reason", "Choose why service is restricted."),
    ({"reason": "rude"}, "reason", "Choose one of: Violence or threats"),
    ({"until": ""}, "until", "Give the last day"),
    ({"until": "next week"}, "until", "as a date"),
    ({"until": "past"}, "until", "cannot be in the past"),
    ({"until": "far"}, "until", "At most a year ahead"),
    ({"reason": "other", "note": ""}, "note", "when the reason is Other"),
    ({"note": "x" * 151}, "note", "At most 150 characters."),
])
def test_a_restriction_refused_says_why_and_keeps_what_was_typed(desk, data, field, message):
    dates = {"past": desk.today - timedelta(days=1), "far": desk.today + timedelta(days=366)}
    if data.get("until") in dates:
        data = {**data, "until": dates[data["until"]].isoformat()}
    refused = desk.restrict(**data)
    body = text(refused)
    assert refused.status_code == 422
    assert message in field_error(body, field)
    assert "The restriction was not set: see the fields." in body
    expected_note = data.get("note", "Threatened staff")
    if len(expected_note) <= 150:
        assert input_value(body, "note") == expected_note
    assert desk.fresh().restricted_until is None
    assert events("client_restricted") == []


def test_a_restriction_may_end_today_and_not_later_than_a_year(desk):
    assert desk.restrict(until=desk.today.isoformat()).status_code == 200
    latest = desk.today + timedelta(days=365)
    assert desk.restrict(reason="other", note="Set again",
                         until=latest.isoformat()).status_code == 200
    client = desk.fresh()
    assert client.restricted_until == latest and client.restriction_reason == "Other: Set again"
    assert [e.detail["replaced"] for e in events("client_restricted")] == [False, True]


def test_lifting_without_a_restriction_in_force_says_so(desk):
    refused = desk.post("/restriction/lift")
    assert refused.status_code == 409
    assert "no service restriction to lift" in text(refused)
    assert events("client_restriction_lifted") == []


# --- The note -------------------------------------------------------------------------------


def test_a_note_is_set_shown_at_check_in_and_cleared(desk):
    saved = desk.post("/note", {"flag_note": "  Prefers the booth by the door "})
    assert saved.status_code == 200 and "Note saved." in text(saved)
    assert desk.fresh().flag_note == "Prefers the booth by the door"
    [event] = events("client_note_changed")
    assert event.detail == {"note": "set"}

    desk.sign_in(make_staff(desk.site, role="nurse"))
    review = desk.browser.post("/sites/east/floor/check-in", headers=HTMX, data={
        "csrf_token": desk.token, "code": "F-ABCD-1984"})
    assert "Prefers the booth by the door" in text(review)

    desk.sign_in(desk.supervisor)
    cleared = desk.post("/note", {"flag_note": ""})
    assert "Note cleared." in text(cleared)
    assert desk.fresh().flag_note is None
    assert [e.detail for e in events("client_note_changed")] == [{"note": "set"},
                                                                 {"note": "cleared"}]


def test_a_note_too_long_is_refused_and_kept(desk):
    long_note = "y" * 501
    refused = desk.post("/note", {"flag_note": long_note})
    assert refused.status_code == 422
    assert "At most 500 characters." in field_error(text(refused), "flag_note")
    assert long_note in text(refused)
    assert desk.fresh().flag_note is None


# --- The API ----------------------------------------------------------------------------------


def test_the_api_reads_and_changes_a_clients_flags(desk):
    headers = bearer(desk.supervisor)
    url = f"/api/v1/sites/{desk.site.id}/clients/{desk.client.id}"
    got = desk.browser.get(url, headers=headers)
    assert got.status_code == 200
    body = got.get_json()
    assert body["code"] == "F-ABCD-1984" and body["flags"]["restricted"] is False
    assert body["summary"]["Visits"] == 0
    assert events("client_viewed")

    until = (desk.today + timedelta(days=3)).isoformat()
    changed = desk.browser.patch(url, headers=headers, json={
        "restriction": {"reason": "dealing", "until": until}, "flag_note": "Banned from lot"})
    assert changed.status_code == 200, changed.get_json()
    flags = changed.get_json()["flags"]
    assert flags["restricted"] and flags["restricted_until"] == until
    assert flags["restriction_reason"] == "Dealing on site"
    assert flags["note"] == "Banned from lot"

    refused = desk.browser.patch(url, headers=headers, json={
        "restriction": {"reason": "weapon", "until": "2000-01-01"}, "flag_note": None})
    assert refused.status_code == 422
    assert "cannot be in the past" in refused.get_json()["errors"]["until"][0]
    assert desk.fresh().flag_note == "Banned from lot", "nothing changed"

    lifted = desk.browser.patch(url, headers=headers, json={"restriction": None})
    assert lifted.status_code == 200 and lifted.get_json()["flags"]["restricted"] is False
    assert lifted.get_json()["flags"]["note"] == "Banned from lot"
    again = desk.browser.patch(url, headers=headers, json={"restriction": None})
    assert again.status_code == 200
    assert len(events("client_restriction_lifted")) == 1


def test_the_api_refuses_a_nurse(desk):
    nurse = make_staff(desk.site, role="nurse")
    url = f"/api/v1/sites/{desk.site.id}/clients/{desk.client.id}"
    assert desk.browser.get(url, headers=bearer(nurse)).status_code == 403
    assert desk.browser.patch(url, headers=bearer(nurse), json={"flag_note": "x"}) \
        .status_code == 403


def test_a_check_in_made_elsewhere_is_counted_on_the_page(desk):
    floor.check_in(desk.site, code="F-ABCD-1984", handle=None, actor=ACTOR,
                   actor_roles={"nurse"}, now=utcnow())
    assert re.search(r"Visits</dt><dd[^>]*>1<", text(desk.browser.get(desk.url())))


def test_the_check_in_panel_reads_a_restriction_on_the_sites_calendar(desk, monkeypatch):
    # 03:00 UTC on the 8th is still the evening of the 7th in Toronto: the last day.
    monkeypatch.setattr(booth_views, "utcnow", lambda: datetime(2026, 12, 8, 3, 0, tzinfo=UTC))
    desk.client.restricted_until = date(2026, 12, 7)
    desk.client.restriction_reason = "Weapon"
    db.session.commit()
    desk.sign_in(make_staff(desk.site, role="nurse"))
    panel = text(desk.browser.get("/sites/east/floor/check-in?code=F-ABCD-1984", headers=HTMX))
    assert "Service restriction until 07 Dec 2026: Weapon" in panel
    offered = text(desk.browser.get("/sites/east/floor/clients?code=ABCD", headers=HTMX))
    assert "Restricted" in offered
