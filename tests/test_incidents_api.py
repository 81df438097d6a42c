"""Incident reports through the JSON API and the pages: create, amend, submit, review, list,
export; refusals carry the API's error shape."""

import csv
import io
import re

import pytest
from factories import make_booth, make_client, make_site, make_staff
from routes import assert_api_error, bearer

from srs.extensions import db
from srs.incidents.models import Incident

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
              "approver": make_staff(site, role="reviewer")}

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
    from srs.auth.service import Actor
    from srs.common import utcnow
    from srs.incidents import service

    now = utcnow()
    incident = service.create_incident(site, {
        "type": "complaint", "area": "Front desk", "narrative": "Client complained of wait.",
        "immediate_actions": "Listened."}, actor=Actor.of(nurse), now=now)
    service.submit_incident(incident, actor=Actor.of(nurse), now=now)
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
