"""Incident reports through the JSON API and the pages: create, amend, submit, review, list,
export; refusals carry the API's error shape."""

import csv
import io
import re

import pytest
from factories import make_booth, make_client, make_site, make_staff, make_submitted_incident
from routes import assert_api_error, bearer

from srs.auth.models import AuditEvent
from srs.extensions import db
from srs.incidents.models import HARM_GRADES, INCIDENT_TYPES, Incident, Stage

REPORT = {"type": "needle_stick", "occurred_at": "2026-11-18T14:05:00+00:00",
          "area": "Sharps station", "harm": "low", "client_codes": ["F-ABCD-1984"],
          "narrative": "Staff member pricked by a used needle while clearing the station.",
          "immediate_actions": "Washed, reported, sent for post-exposure prophylaxis."}


@pytest.fixture
def api(client):
    site = make_site(slug="east")
    make_client(site, code="F-ABCD-1984")
    people = {"nurse": make_staff(site, role="nurse"),
              "reviewer": make_staff(site, role="reviewer"),
              "approver": make_staff(site, role="reviewer"),
              "other_nurse": make_staff(site, role="nurse"),
              "supervisor": make_staff(site, role="supervisor")}

    class Api:
        def __init__(self):
            self.site = site
            self.people = people

        def call(self, method, path, who="nurse", json=None, key=None, **kwargs):
            headers = {**bearer(people[who]), **({"Idempotency-Key": key} if key else {})}
            return client.open(f"/api/v1/sites/{site.id}{path}", method=method, json=json,
                               headers=headers, **kwargs)

        def submitted(self):
            created = self.call("POST", "/incidents", json=REPORT)
            assert created.status_code == 201, created.get_json()
            incident_id = created.get_json()["id"]
            response = self.call("POST", f"/incidents/{incident_id}/submit", json={})
            assert response.status_code == 200, response.get_json()
            return incident_id

    return Api()


def test_create_submit_review_close_through_the_api(api):
    incident_id = api.submitted()
    review = f"/incidents/{incident_id}/review"
    assert api.call("POST", review, "reviewer", {"decision": "start_review"}).status_code == 200
    body = api.call("POST", review, "reviewer", {
        "feedback": "Thank you for reporting at once.", "lessons_learned": "Sharps bins full.",
        "new_actions": [{"description": "Empty bins twice a shift",
                         "owner_id": api.people["nurse"].id, "due_on": "2026-11-25"}],
        "decision": "request_approval"}).get_json()
    assert body["stage"] == "awaiting_approval"
    assert body["actions"][0]["due_on"] == "2026-11-25"
    closed = api.call("POST", review, "approver", {"decision": "approve"}).get_json()
    assert closed["stage"] == "closed"
    assert [h["stage_to"] for h in closed["history"]] == [
        "submitted", "under_review", "awaiting_approval", "closed"]


def test_refusals_have_the_error_shape(api):
    incident_id = api.submitted()
    path = f"/incidents/{incident_id}"
    assert_api_error(api.call("POST", f"{path}/review", "nurse", {"decision": "start_review"}),
                     403)
    body = assert_api_error(api.call("POST", f"{path}/review", "reviewer",
                                     {"decision": "approve"}), 409)
    assert body["current_stage"] == "submitted"
    assert_api_error(api.call("PATCH", path, "nurse", {"harm": "severe"}), 422,
                     "amendment_reason")
    assert_api_error(api.call("POST", "/incidents", json={"type": "fire"}), 422, "type")
    assert_api_error(api.call("POST", "/incidents", json={"colour": "red"}), 422, "colour")


def test_an_amendment_through_the_api_is_in_the_history(api):
    incident_id = api.submitted()
    body = api.call("PATCH", f"/incidents/{incident_id}", "nurse", {
        "harm": "moderate", "amendment_reason": "Bleeding needed dressing."}).get_json()
    assert body["harm"] == "moderate"
    assert body["history"][-1]["kind"] == "amendment"
    assert body["history"][-1]["changes"] == {"harm": ["low", "moderate"]}


def test_the_identifier_check_answers_per_field(api):
    created = api.call("POST", "/incidents", json={
        **REPORT, "narrative": "Mary Jones, 416-555-0123, was pricked."}).get_json()
    body = assert_api_error(api.call("POST", f"/incidents/{created['id']}/submit", json={}),
                            422, "narrative")
    assert any("Mary Jones" in m for m in body["errors"]["narrative"])
    assert any("416-555-0123" in m for m in body["errors"]["narrative"])


def test_a_repeated_key_creates_one_report(api):
    first = api.call("POST", "/incidents", json=REPORT, key="same-key")
    again = api.call("POST", "/incidents", json=REPORT, key="same-key")
    assert first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.session.scalar(db.select(db.func.count(Incident.id))) == 1


def test_list_filters_and_pages_and_export(api):
    ids = [api.submitted() for _ in range(3)]
    other = api.call("POST", "/incidents", json={**REPORT, "type": "complaint"}).get_json()
    api.call("POST", f"/incidents/{other['id']}/submit", json={})
    api.call("POST", "/incidents", json=REPORT)  # a draft: never listed

    page = api.call("GET", "/incidents?per_page=2&page=1", "reviewer").get_json()
    assert page["total"] == 4 and len(page["items"]) == 2
    page2 = api.call("GET", "/incidents?per_page=2&page=2", "reviewer").get_json()
    assert {i["id"] for i in page["items"] + page2["items"]} == {*ids, other["id"]}
    only = api.call("GET", "/incidents?type=complaint", "reviewer").get_json()
    assert [i["id"] for i in only["items"]] == [other["id"]]
    assert api.call("GET", "/incidents?band=09-10", "reviewer").status_code == 422

    export = api.call("GET", "/incidents.csv?type=needle_stick", "reviewer")
    assert export.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert sorted(int(r["id"]) for r in rows) == sorted(ids)
    assert rows[0]["client_codes"] == "F-ABCD-1984" and rows[0]["time_band"] == "07-12"
    assert_api_error(api.call("GET", "/incidents", "nurse"), 403)


def test_the_openapi_document_names_every_operation(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operations = {op["operationId"] for path in spec["paths"].values() for op in path.values()
                  if isinstance(op, dict) and "operationId" in op}
    assert {"createIncident", "updateIncident", "submitIncident", "reviewIncident",
            "listIncidents", "exportIncidents", "getMonthlyReport"} <= operations


def test_a_nurse_reads_completes_and_submits_her_overdose_draft_through_the_api(api):
    """The close names the draft it wrote; its reporter reads it, finds it among her own
    reports, completes and submits it, and later reads the reviewer's feedback."""
    started = api.call("POST", "/overdose-responses", json={"kind": "opioid",
                                                             "location": "Washroom"})
    assert started.status_code == 201, started.get_json()
    rid = started.get_json()["id"]
    assert api.call("POST", f"/overdose-responses/{rid}/interventions",
                    json={"kind": "stimulation"}).status_code == 201
    closed = api.call("POST", f"/overdose-responses/{rid}/close",
                      json={"outcome": "recovered_on_site"}).get_json()
    path = f"/incidents/{closed['incident_id']}"

    draft = api.call("GET", path)
    assert draft.status_code == 200, draft.get_json()
    draft = draft.get_json()
    assert (draft["stage"], draft["type"], draft["response_id"], draft["area"]) == (
        "draft", "overdose", rid, "Washroom")
    assert draft["narrative"].startswith("Overdose response, as recorded on the console")
    mine = api.call("GET", "/incidents?mine=true").get_json()
    assert [i["id"] for i in mine["items"]] == [draft["id"]] and mine["total"] == 1

    saved = api.call("PATCH", path, json={"immediate_actions": "Stimulation; stayed 1 h.",
                                          "harm": "low"})
    assert saved.status_code == 200, saved.get_json()
    submitted = api.call("POST", f"{path}/submit", json={})
    assert submitted.status_code == 200, submitted.get_json()
    assert submitted.get_json()["stage"] == "submitted"

    review = f"{path}/review"
    assert api.call("POST", review, "reviewer", {"decision": "start_review"}).status_code == 200
    assert api.call("POST", review, "reviewer",
                    {"feedback": "Quick stimulation: well done."}).status_code == 200
    read = api.call("GET", path).get_json()
    assert (read["stage"], read["feedback"]) == ("under_review", "Quick stimulation: well done.")
    assert read["immediate_actions"] == "Stimulation; stayed 1 h."


def test_only_the_reporter_and_reviewers_read_a_report_others_get_404(api):
    draft = api.call("POST", "/incidents", json=REPORT).get_json()
    submitted = api.submitted()
    missing = assert_api_error(api.call("GET", "/incidents/999999", "reviewer"), 404)
    # Drafts are their reporter's alone; a report closed to someone reads as one that
    # does not exist.
    for who, incident_id in (("other_nurse", draft["id"]), ("other_nurse", submitted),
                             ("supervisor", submitted), ("reviewer", draft["id"])):
        body = assert_api_error(api.call("GET", f"/incidents/{incident_id}", who), 404)
        assert body == {**missing, "message": missing["message"].replace(
            "999999", str(incident_id))}, who
    for who in ("reviewer", "nurse"):
        answer = api.call("GET", f"/incidents/{submitted}", who)
        assert answer.status_code == 200 and answer.get_json()["id"] == submitted
    # Each read is in the audit trail, with the clients it showed (by id).
    reads = db.session.execute(db.select(AuditEvent).filter_by(
        action="incident_viewed", entity_id=str(submitted))).scalars().all()
    assert sorted(db.session.get(type(api.people["nurse"]), r.staff_id).username
                  for r in reads) == sorted(api.people[w].username for w in ("reviewer",
                                                                                "nurse"))
    assert all(r.detail["clients"] for r in reads)


def test_mine_lists_the_callers_own_reports_drafts_included(api):
    draft = api.call("POST", "/incidents", json=REPORT).get_json()["id"]
    submitted = api.submitted()
    others = api.call("POST", "/incidents", "other_nurse", json=REPORT).get_json()["id"]
    api.call("POST", f"/incidents/{others}/submit", "other_nurse", json={})

    mine = api.call("GET", "/incidents?mine=true").get_json()
    assert sorted(i["id"] for i in mine["items"]) == sorted([draft, submitted])
    drafts = api.call("GET", "/incidents?mine=true&stage=draft").get_json()
    assert [i["id"] for i in drafts["items"]] == [draft]
    theirs = api.call("GET", "/incidents?mine=true", "other_nurse").get_json()
    assert [i["id"] for i in theirs["items"]] == [others]
    assert api.call("GET", "/incidents?mine=true", "supervisor").get_json()["total"] == 0
    # A reviewer's own list is theirs alone; without ``mine`` they see every submitted one.
    assert api.call("GET", "/incidents?mine=true", "reviewer").get_json()["items"] == []
    every = api.call("GET", "/incidents", "reviewer").get_json()
    assert sorted(i["id"] for i in every["items"]) == sorted([submitted, others])
    for who in ("nurse", "supervisor"):
        assert_api_error(api.call("GET", "/incidents", who), 403)
        assert_api_error(api.call("GET", "/incidents?mine=false", who), 403)
    assert_api_error(api.call("GET", "/incidents?mine=perhaps"), 422, "mine")


def test_the_document_gives_the_vocabularies_the_answers_use(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    operations = {op["operationId"]: op for path in paths.values() for op in path.values()
                  if isinstance(op, dict) and "operationId" in op}
    assert "getIncident" in operations
    assert any(p["name"] == "mine" and p["in"] == "query"
               for p in operations["listIncidents"]["parameters"])
    schemas = spec["components"]["schemas"]
    incident = schemas["Incident"]["properties"]
    assert incident["stage"]["enum"] == [s.value for s in Stage]
    assert incident["type"]["enum"] == list(INCIDENT_TYPES)
    assert incident["harm"]["enum"] == list(HARM_GRADES)
    history = schemas["HistoryOut"]["properties"]
    assert [v for v in history["stage_to"]["enum"] if v is not None] == [s.value for s in Stage]
    assert history["kind"]["enum"] == ["stage", "amendment"]
    figure = schemas["FigureOut"]["properties"]
    assert figure["value"]["type"] == ["integer", "null"] or figure["value"]["type"] == "integer"
    assert "incident_reports_by_type" in figure["name"]["enum"]
    item = figure["breakdown"]["additionalProperties"]
    item = schemas[item["$ref"].rsplit("/", 1)[1]] if "$ref" in item else item
    # A share of nobody (a treatment retention with no one enrolled long enough) is null.
    assert item["properties"]["value"]["type"] == ["integer", "null"]
    assert "needle_stick" in operations["getMonthlyReport"]["description"]


def test_monthly_figures_are_keyed_by_the_values_the_api_takes(api):
    for kind in ("needle_stick", "needle_stick", "complaint"):
        created = api.call("POST", "/incidents", json={**REPORT, "type": kind}).get_json()
        api.call("POST", f"/incidents/{created['id']}/submit", json={})
    body = api.call("GET", "/reports/monthly?month=2026-11", "reviewer").get_json()
    figures = {f["name"]: f for f in body["figures"]}
    by_type = figures["incident_reports_by_type"]
    assert set(by_type["breakdown"]) == set(INCIDENT_TYPES)
    assert by_type["breakdown"]["needle_stick"] == {"label": "Needle-stick injury", "value": 2}
    assert by_type["breakdown"]["complaint"] == {"label": "Complaint", "value": 1}
    assert by_type["value"] is None and by_type["label"] == "Incident reports, by type"
    # Every key is a value createIncident takes as a type.
    for key in by_type["breakdown"]:
        assert api.call("POST", "/incidents", json={"type": key}).status_code == 201
    assert figures["total_visits"]["value"] == 0 and figures["total_visits"]["breakdown"] is None
    assert figures["opening_hours"]["text"] == "not set"
    assert figures["opening_hours"]["value"] is None
    assert set(figures["drugs_consumed_by_type"]["breakdown"]) >= {"fentanyl", "crack"}
    assert figures["drugs_consumed_by_type"]["breakdown"]["crack"]["label"] == "Crack cocaine"
    assert set(figures["take_home_kits_by_form"]["breakdown"]) == {"injectable", "nasal"}
    assert figures["referrals_by_service_type"]["breakdown"]["oat"]["value"] == 0


# --- The pages -------------------------------------------------------------------------------

_KEY = re.compile(r'name="idempotency_key" value="([0-9a-f]+)"')


def test_the_form_autosaves_a_draft_and_warns_about_identifiers(client, auth):
    site = make_site(slug="west")
    make_booth(site, label="B1")
    make_client(site, code="M-SPRK-1990", handle="Sparky")
    nurse = make_staff(site, role="nurse")
    auth.login(nurse.username)
    created = auth.post("/sites/west/incidents", {"idempotency_key": "k1"})
    assert created.status_code == 302
    url = created.headers["Location"]
    incident_id = int(url.rstrip("/").rsplit("/", 1)[1])
    saved = auth.post(f"/sites/west/incidents/{incident_id}/draft", {
        "type": "overdose", "occurred_at": "2026-11-18T09:30", "narrative": "Sparky went blue.",
        "harm": "moderate"})
    assert saved.status_code == 200
    text = saved.get_data(as_text=True)
    assert "Draft saved" in text and "Sparky" in text and "M-SPRK-1990" in text
    incident = db.session.get(Incident, incident_id)
    assert incident.narrative == "Sparky went blue." and incident.type == "overdose"
    # 09:30 at the site (Toronto, UTC-5 in November).
    assert incident.occurred_at.hour == 14

    page = client.get(url)
    refused = auth.post(f"/sites/west/incidents/{incident_id}/submit", {
        "idempotency_key": _KEY.search(page.get_data(as_text=True)).group(1),
        "type": "overdose", "occurred_at": "2026-11-18T09:30", "narrative": "Sparky went blue.",
        "immediate_actions": "Naloxone.", "area": "Booth area", "harm": "moderate"})
    assert refused.status_code == 422
    assert "client&#39;s handle" in refused.get_data(as_text=True) or \
        "client's handle" in refused.get_data(as_text=True)
    db.session.refresh(incident)
    assert incident.stage == "draft"


def test_the_reporter_sees_the_reviewers_feedback(client, auth):
    site = make_site(slug="north")
    nurse = make_staff(site, role="nurse")
    reviewer = make_staff(site, role="reviewer")
    from srs.common import utcnow

    incident = make_submitted_incident(site, nurse, now=utcnow())
    auth.login(reviewer.username)
    assert auth.post(f"/sites/north/incidents/{incident.id}/review",
                     {"decision": "start_review"}).status_code == 302
    assert auth.post(f"/sites/north/incidents/{incident.id}/review",
                     {"feedback": "Waits are on the agenda."}).status_code == 302
    auth.logout()
    auth.login(nurse.username)
    page = client.get(f"/sites/north/incidents/{incident.id}").get_data(as_text=True)
    assert "Waits are on the agenda." in page
    # Another nurse may not open it.
    other = make_staff(site, role="nurse")
    auth.logout()
    auth.login(other.username)
    assert client.get(f"/sites/north/incidents/{incident.id}").status_code == 403
