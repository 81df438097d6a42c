"""A client's access request: everything the site holds about one client, and who looked at
or changed it, as one CSV or one PDF; the export audited; nobody below a supervisor may."""

import csv
import io
from datetime import timedelta

import pytest
from factories import ACTOR, make_booth, make_client, make_referral, make_site, make_staff
from routes import pdf_text

from srs.alerts import service as alerts
from srs.auth.models import AuditEvent
from srs.auth.service import Actor
from srs.booths import checks
from srs.booths import service as floor
from srs.clients import export
from srs.clients import service as clients
from srs.common import utcnow
from srs.extensions import db
from srs.incidents import service as incidents
from srs.naloxone import service as naloxone
from srs.overdose import service as overdose

CODE = "F-ABCD-1984"
OTHER = "M-WXYZ-1990"
EVERY_KIND = {"client", "visit", "consumption", "observation_check", "alert",
              "overdose_response", "intervention", "referral_offer", "referral",
              "take_home_kit", "incident", "audit_event"}


@pytest.fixture
def site(app):
    return make_site(name="East Side", slug="east")


@pytest.fixture
def history(site):
    """One of every record about CODE, and some about another client that must stay out."""
    nurse = make_staff(site, role="nurse", username="nina")
    actor, now = Actor.of(nurse), utcnow() - timedelta(hours=2)
    booth = make_booth(site, label="B1")
    visit = floor.check_in(site, code=CODE, handle="Sparrow", actor=actor,
                           actor_roles={"nurse"}, now=now)
    floor.assign_booth(visit, booth, actor=actor, now=now)
    floor.record_consumption(visit, {"substances": ["fentanyl"], "route": "injects"},
                             actor=actor, now=now)
    checks.record_check(visit, {"status": "drowsy", "spo2": 93, "respiratory_rate": 10},
                        actor=actor, now=now + timedelta(minutes=1))
    alerts.raise_alert(site=site, kind="observation_check_due", due_at=now, now=now,
                       visit=visit)
    response, _ = overdose.start_response(site, kind="opioid", visit=visit, actor=actor,
                                          now=now + timedelta(minutes=2))
    overdose.record_intervention(response, {"kind": "stimulation"}, actor=actor,
                                 now=now + timedelta(minutes=3))
    overdose.close_response(response, outcome="recovered_on_site", note=None, actor=actor,
                            now=now + timedelta(minutes=10))
    floor.start_observation(db.session.get(type(visit), visit.id), actor=actor,
                            now=now + timedelta(minutes=11))
    make_referral(visit, service_type="oat", outcome="presented")
    incidents.create_incident(site, {
        "type": "violence", "area": "Waiting room", "client_codes": [CODE],
        "narrative": "Raised voice at the door."}, actor=actor, now=now)
    incidents.create_incident(site, {
        "type": "complaint", "area": "Front desk",
        "narrative": f"{CODE} complained about the wait."}, actor=actor, now=now)
    naloxone.record_take_home_kit(site, {"client_code": CODE, "form": "nasal"}, actor=actor,
                                  now=now)
    # Another client's day: none of it belongs in CODE's record.
    other = floor.check_in(site, code=OTHER, handle="Wren", actor=actor,
                           actor_roles={"nurse"}, now=now)
    incidents.create_incident(site, {
        "type": "other", "area": "Hall", "client_codes": [OTHER],
        "narrative": "Slipped on the wet floor."}, actor=actor, now=now)
    return {"nurse": nurse, "visit": visit, "response": response, "other": other}


def sections(content: str) -> dict[str, list[dict]]:
    """The CSV's sections: rows by record type, each a dict under its section's header."""
    found: dict[str, list[dict]] = {}
    header = None
    for row in csv.reader(io.StringIO(content)):
        if not row:
            header = None
        elif header is None:
            header = row
        elif row[0] != "export":
            found.setdefault(row[0], []).append(dict(zip(header, row, strict=True)))
    return found


def signed_in(client, auth, site, role: str):
    staff = make_staff(site, role=role)
    assert auth.login(staff.username).status_code == 302
    return staff


def test_the_csv_holds_every_kind_of_record_about_the_client_and_no_one_elses(
        app, client, auth, site, history):
    client_id = history["visit"].client_id
    supervisor = signed_in(client, auth, site, "supervisor")
    response = client.get(f"/sites/east/clients/{client_id}/record.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"
    assert CODE not in response.headers["Content-Disposition"], "ids in file names, not codes"
    content = response.get_data(as_text=True)
    found = sections(content)
    assert set(found) == EVERY_KIND, f"missing {EVERY_KIND - set(found)}"
    assert OTHER not in content and "Wren" not in content and "wet floor" not in content

    assert found["client"][0]["code"] == CODE
    assert [v["id"] for v in found["visit"]] == [str(history["visit"].id)]
    assert found["consumption"][0]["substances"] == "fentanyl"
    assert found["observation_check"][0]["status"] == "drowsy"
    assert found["overdose_response"][0]["outcome"] == "recovered_on_site"
    assert found["intervention"][0]["kind"] == "stimulation"
    assert found["referral"][0]["outcome"] == "presented"
    assert found["take_home_kit"][0]["form"] == "nasal"
    stories = {i["narrative"] for i in found["incident"]}
    assert "Raised voice at the door." in stories, "named as a person involved"
    assert f"{CODE} complained about the wait." in stories, "named by code in the text"
    assert any(i["response_id"] == str(history["response"].id) for i in found["incident"]), \
        "the draft the overdose response wrote"

    trail = {(e["action"], e["entity"]) for e in found["audit_event"]}
    assert {("client_created", "client"), ("visit_checked_in", "visit"),
            ("consumption_recorded", "visit"), ("overdose_started", "overdose_response"),
            ("incident_created", "incident")} <= trail
    assert all(e["actor"] for e in found["audit_event"])

    db.session.rollback()
    exported = db.session.execute(db.select(AuditEvent).filter_by(
        action="client_record_exported")).scalar_one()
    assert exported.staff_id == supervisor.id and exported.entity_id == str(client_id)
    assert exported.detail["format"] == "csv" and exported.detail["rows"]["visit"] == 1


def test_the_next_export_shows_who_exported_before(app, site, history):
    client = history["visit"].client
    supervisor = make_staff(site, role="supervisor", username="sam")
    export.export_record(site, client, "csv", actor=Actor.of(supervisor), now=utcnow())
    content, _found = export.export_record(site, client, "csv", actor=ACTOR, now=utcnow())
    exports = [e for e in sections(content)["audit_event"]
               if e["action"] == "client_record_exported"]
    assert [e["actor"] for e in exports] == ["sam"]


def test_a_cell_that_looks_like_a_formula_is_kept_as_text(app, site):
    client = make_client(site, code=CODE)
    client.flag_note = "=HYPERLINK(\"x\")"
    db.session.commit()
    content, _ = export.export_record(site, client, "csv", actor=ACTOR, now=utcnow())
    assert sections(content)["client"][0]["flag_note"] == "'=HYPERLINK(\"x\")"


def test_the_pdf_is_a_real_pdf_holding_the_code_and_every_section(
        app, client, auth, site, history):
    client_id = history["visit"].client_id
    signed_in(client, auth, site, "admin")
    response = client.get(f"/sites/east/clients/{client_id}/record.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    text = pdf_text(response.data)
    assert CODE in text
    for title in ("Visits", "Overdose interventions", "Referrals and outcomes",
                  "Take-home naloxone kits", "Who has looked at or changed these records"):
        assert title in text
    assert OTHER not in text
    db.session.rollback()
    [exported] = db.session.execute(db.select(AuditEvent).filter_by(
        action="client_record_exported")).scalars().all()
    assert exported.detail["format"] == "pdf"


@pytest.mark.parametrize("role", ["nurse", "reviewer"])
def test_only_a_supervisor_or_admin_may_export(app, client, auth, site, history, role):
    client_id = history["visit"].client_id
    signed_in(client, auth, site, role)
    for fmt in ("csv", "pdf"):
        assert client.get(f"/sites/east/clients/{client_id}/record.{fmt}").status_code == 403
    db.session.rollback()
    assert db.session.execute(db.select(AuditEvent).filter_by(
        action="client_record_exported")).first() is None


def test_the_clients_page_offers_both_exports(app, client, auth, site, history):
    client_id = history["visit"].client_id
    signed_in(client, auth, site, "supervisor")
    page = client.get(f"/sites/east/clients/{client_id}").get_data(as_text=True)
    assert f'href="/sites/east/clients/{client_id}/record.pdf"' in page
    assert f'href="/sites/east/clients/{client_id}/record.csv"' in page


def test_a_search_that_showed_the_client_is_in_the_trail_and_anothers_is_not(app, site,
                                                                              history):
    nurse = history["nurse"]
    clients.find_clients(site, "ABCD", actor=Actor.of(nurse))  # shows CODE
    clients.find_clients(site, "WXYZ", actor=Actor.of(nurse))  # shows OTHER only
    content, _ = export.export_record(site, history["visit"].client, "csv", actor=ACTOR,
                                      now=utcnow())
    searches = [e for e in sections(content)["audit_event"] if e["action"] == "client_search"]
    assert len(searches) == 1
    assert searches[0]["actor"] == "nina"
