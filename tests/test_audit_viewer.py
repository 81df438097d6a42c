"""The audit trail page and its CSV: filters, a client's trail, pages, who may read it."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from factories import make_booth, make_client, make_site, make_staff

from srs.audit.models import ACTIONS
from srs.auth.models import AuditEvent, Role
from srs.auth.service import Actor, record
from srs.booths import service as floor
from srs.extensions import db
from srs.overdose import service as overdose

# 10:00 at the site (Toronto, UTC-5) on 1 December; the day before is 30 November.
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
EVENT_ID = re.compile(r'data-testid="audit-row" data-event-id="(\d+)" data-action="([a-z_]+)"')


@pytest.fixture
def trail(app):
    """Two clients' visits at East, one overdose, reads by a nurse, and another site."""
    site = make_site(name="East", slug="east")
    booth = make_booth(site, label="B1")
    admin = make_staff(site, role=Role.ADMIN, username="ada")
    nurse = make_staff(site, role=Role.NURSE, username="nina")
    make_staff(site, role=Role.SUPERVISOR, username="sue")
    west = make_site(name="West", slug="west")
    make_staff(west, role=Role.SUPERVISOR, username="walt")
    by_nurse = Actor.of(nurse, "10.0.0.7")
    ann, bob = make_client(site, code="F-ANNA-1980"), make_client(site, code="M-BOBB-1975")
    yesterday = NOW - timedelta(days=1)
    ann_visit = floor.check_in(site, code=ann.code, handle=None, actor=by_nurse,
                               actor_roles={"nurse"}, now=yesterday)
    bob_visit = floor.check_in(site, code=bob.code, handle=None, actor=by_nurse,
                               actor_roles={"nurse"}, now=NOW)
    floor.assign_booth(ann_visit, booth, actor=by_nurse, now=yesterday)
    response, _ = overdose.start_response(site, kind="opioid", visit=ann_visit, actor=by_nurse,
                                          now=yesterday)
    overdose.audit_read(response, actor=Actor.of(admin, "10.0.0.9"), now=NOW)
    for visit in (ann_visit, bob_visit):
        record(by_nurse, "referral_suggestions_viewed", "visit", visit.id, site_id=site.id,
               now=NOW, detail={"client": visit.client_id})
    record(by_nurse, "client_viewed", "client", ann.id, site_id=west.id, now=NOW)  # not East's
    db.session.commit()
    return {"site": site, "ann": ann, "bob": bob, "ann_visit": ann_visit,
            "bob_visit": bob_visit, "response": response, "admin": admin, "nurse": nurse}


def rows(page) -> list[tuple[int, str]]:
    assert page.status_code == 200, page.get_data(as_text=True)
    return [(int(i), a) for i, a in EVENT_ID.findall(page.get_data(as_text=True))]


def events(**where) -> list[AuditEvent]:
    return list(db.session.execute(db.select(AuditEvent).filter_by(**where)
                                   .order_by(AuditEvent.id)).scalars())


def test_each_filter_narrows_the_site_s_events(client, auth, trail):
    auth.login("ada")
    everything = rows(client.get("/sites/east/audit"))
    east = [e.id for e in events(site_id=trail["site"].id)]
    assert sorted(i for i, _ in everything) == sorted(east)
    assert [i for i, _ in everything] == sorted(  # newest first
        east, key=lambda i: (db.session.get(AuditEvent, i).at, i), reverse=True)

    by_admin = rows(client.get(f"/sites/east/audit?person={trail['admin'].id}"))
    assert [a for _, a in by_admin] == ["overdose_viewed"]
    checked_in = rows(client.get("/sites/east/audit?action=visit_checked_in"))
    assert len(checked_in) == 2 and {a for _, a in checked_in} == {"visit_checked_in"}
    about_bob_visit = rows(client.get(
        f"/sites/east/audit?entity=visit&entity_id={trail['bob_visit'].id}"))
    assert {i for i, _ in about_bob_visit} == {
        e.id for e in events(entity="visit", entity_id=str(trail["bob_visit"].id))}
    # Dates are the site's: 30 November holds yesterday's check-in, booth and overdose.
    day_before = rows(client.get("/sites/east/audit?from=2026-11-30&to=2026-11-30"))
    assert day_before and all(
        db.session.get(AuditEvent, i).at.date() == (NOW - timedelta(days=1)).date()
        for i, _ in day_before)
    assert len(day_before) < len(everything)
    # Each row reads as words: who, what, about which record, from where.
    page = client.get("/sites/east/audit?action=visit_checked_in").get_data(as_text=True)
    row = page[page.index('data-testid="audit-row"'):page.index("</tr>", page.index(
        'data-testid="audit-row"'))]
    assert "Checked in" in row and trail["nurse"].display_name in row
    assert f"Visit {trail['bob_visit'].id}" in row and "10.0.0.7" in row


def test_a_client_s_trail_holds_its_visit_and_overdose_and_nothing_of_another(
        client, auth, trail):
    auth.login("sue")
    ann, bob = trail["ann"], trail["bob"]
    page = client.get("/sites/east/audit?client=f-anna-1980")
    shown = {db.session.get(AuditEvent, i) for i, _ in rows(page)}
    about = {(e.entity, e.entity_id) for e in shown}
    assert ("visit", str(trail["ann_visit"].id)) in about
    assert ("overdose_response", str(trail["response"].id)) in about
    assert ("client", str(ann.id)) in about
    assert {e.action for e in shown} >= {"overdose_viewed", "referral_suggestions_viewed",
                                         "visit_checked_in", "overdose_started"}
    assert ("visit", str(trail["bob_visit"].id)) not in about
    assert ("client", str(bob.id)) not in about
    assert all(e.site_id == trail["site"].id for e in shown)  # West's read of the code: not here
    # The read itself is on the record: by the client's id, never the code.
    read = events(action="audit_viewed")
    assert len(read) == 1 and read[0].entity == "client" and read[0].entity_id == str(ann.id)
    assert read[0].detail == {"filters": ["client"]}
    assert "ANNA" not in str(read[0].detail)


def test_a_client_s_records_take_in_incidents_that_name_them_or_came_from_their_overdose(
        app, trail):
    from factories import make_submitted_incident

    from srs.audit.service import client_records

    site, ann = trail["site"], trail["ann"]
    naming = make_submitted_incident(site, trail["nurse"], now=NOW)
    naming.clients = [ann]
    from_response = make_submitted_incident(site, trail["nurse"], now=NOW)
    from_response.response_id = trail["response"].id
    about_bob = make_submitted_incident(site, trail["nurse"], now=NOW)
    about_bob.clients = [trail["bob"]]
    db.session.commit()
    records = client_records(site, ann)
    assert records["incident"] == sorted([naming.id, from_response.id])
    assert records["visit"] == [trail["ann_visit"].id]
    assert records["overdose_response"] == [trail["response"].id]
    assert about_bob.id not in records["incident"]


def test_an_unknown_code_says_so_and_shows_nothing(client, auth, trail):
    auth.login("ada")
    page = client.get("/sites/east/audit?client=F-ZZZZ-1999&action=client_viewed")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and rows(page) == []
    assert "No client of East has the code F-ZZZZ-1999" in text
    assert 'value="client_viewed" selected' in text  # what was chosen stays chosen
    assert events(action="audit_viewed") == []


def test_bad_filters_are_named_and_kept(client, auth, trail):
    auth.login("ada")
    page = client.get("/sites/east/audit?from=2026-12-05&to=2026-12-01&person=abc")
    text = page.get_data(as_text=True)
    assert page.status_code == 422
    assert "The end date is before the start date." in text
    assert 'data-error-for="person"' in text
    assert 'value="2026-12-05"' in text and 'value="2026-12-01"' in text


def test_the_csv_holds_the_filtered_rows_under_a_header(client, auth, trail):
    auth.login("ada")
    response = client.get("/sites/east/audit.csv?action=visit_checked_in")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert table[0] == ["time", "person", "action", "action_words", "entity", "entity_id",
                        "origin", "detail"]
    assert len(table) == 3 and {row[2] for row in table[1:]} == {"visit_checked_in"}
    assert {row[0] for row in table[1:]} == {"2026-11-30T10:00:00-05:00",
                                             "2026-12-01T10:00:00-05:00"}
    assert {row[6] for row in table[1:]} == {"10.0.0.7"}
    by_client = client.get("/sites/east/audit.csv?client=F-ANNA-1980")
    assert by_client.status_code == 200 and len(by_client.get_data(as_text=True).splitlines()) > 2
    assert events(action="audit_viewed")[0].detail == {"filters": ["client"], "export": "csv"}


def test_pages_of_fifty_walk_older_and_back(client, auth, trail):
    site, admin = trail["site"], Actor.of(trail["admin"])
    for n in range(60):
        record(admin, "booth_cleaned", "booth", 1, site_id=site.id,
               now=NOW - timedelta(days=3, minutes=n))
    db.session.commit()
    auth.login("ada")
    first = client.get("/sites/east/audit?action=booth_cleaned")
    first_rows = rows(first)
    assert len(first_rows) == 50 and 'data-testid="audit-newer"' not in first.get_data(
        as_text=True)
    older = re.search(r'href="([^"]+)" data-testid="audit-older"',
                      first.get_data(as_text=True)).group(1).replace("&amp;", "&")
    assert "action=booth_cleaned" in older
    second = client.get(older)
    second_rows = rows(second)
    assert len(second_rows) == 10 and not {i for i, _ in second_rows} & {i for i, _ in first_rows}
    assert 'data-testid="audit-older"' not in second.get_data(as_text=True)
    newer = re.search(r'href="([^"]+)" data-testid="audit-newer"',
                      second.get_data(as_text=True)).group(1).replace("&amp;", "&")
    assert rows(client.get(newer)) == first_rows


@pytest.mark.parametrize("username", ["nina", "walt"])
def test_a_nurse_and_another_site_s_supervisor_are_refused(client, auth, trail, username):
    auth.login(username)
    assert client.get("/sites/east/audit").status_code == 403
    assert client.get("/sites/east/audit.csv?client=F-ANNA-1980").status_code == 403
    assert events(action="audit_viewed") == []


def test_every_action_the_code_records_reads_as_words_on_its_entity():
    """A new ``record(..., "action", "entity", ...)`` needs its words and entity in ACTIONS:
    the page's filter offers only those, each row reads as them, and the filter on an action
    looks only at events on its entity."""
    source = Path(__file__).resolve().parent.parent / "srs"
    written, on = set(), {}
    for path in source.rglob("*.py"):
        text = path.read_text()
        for action, entity in re.findall(
                r'record\([^,()]+(?:\([^()]*\))?,\s*"([a-z_]+)",\s*"([a-z_]+)"', text):
            on.setdefault(action, set()).add(entity)
        written |= set(re.findall(r'audit\.append\(\("([a-z_]+)"', text))
        written |= set(re.findall(r'\baction = "([a-z_]+)"', text))
    assert on, "the pattern finds record() calls"
    assert sorted((written | set(on)) - set(ACTIONS)) == []
    assert {action: entities for action, entities in on.items()
            if entities != {ACTIONS[action][1]}} == {}


def test_the_api_lists_a_client_s_trail_and_refuses_a_nurse(client, trail):
    from routes import bearer

    site, ann = trail["site"], trail["ann"]
    url = f"/api/v1/sites/{site.id}/audit-events"
    supervisor = bearer(make_staff(site, role=Role.SUPERVISOR))
    answer = client.get(f"{url}?client=F-ANNA-1980&per_page=3", headers=supervisor)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert len(body["items"]) == 3 and body["newer"] is None and body["older"]
    rest = client.get(f"{url}?client=F-ANNA-1980&per_page=50&before={body['older']}",
                      headers=supervisor).get_json()
    shown = body["items"] + rest["items"]
    assert ("visit", str(trail["bob_visit"].id)) not in {
        (i["entity"], i["entity_id"]) for i in shown}
    assert {"overdose_viewed", "referral_suggestions_viewed"} <= {i["action"] for i in shown}
    assert shown[0]["at"].endswith("-05:00") and shown[0]["action_words"]
    assert [e.entity_id for e in events(action="audit_viewed")] == [str(ann.id)] * 2
    unknown = client.get(f"{url}?client=F-ZZZZ-1999", headers=supervisor)
    assert unknown.status_code == 422 and unknown.get_json()["errors"]["client"]
    nurse = client.get(url, headers=bearer(trail["nurse"]))
    assert nurse.status_code == 403
