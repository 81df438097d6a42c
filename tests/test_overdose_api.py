"""Overdose responses through the JSON API: each operation, each refusal, idempotency."""

import pytest
from factories import make_booth, make_site, make_staff
from routes import assert_api_error, bearer

from srs.extensions import db
from srs.incidents.models import Incident
from srs.naloxone.models import NaloxoneLot
from srs.overdose.models import Intervention, OverdoseResponse

LOT = {"product": "Naloxone HCl", "form": "ampoule", "strength": "0.4 mg/mL",
       "lot_number": "A1", "expires_on": "2099-01-01", "quantity": 10}


@pytest.fixture
def api(client):
    site = make_site(slug="east")
    booth = make_booth(site, label="B1")
    nurse = make_staff(site, role="nurse", username="nina")
    boss = make_staff(site, role="supervisor", username="sam")
    headers = {"nurse": bearer(nurse), "supervisor": bearer(boss)}

    class Api:
        def __init__(self):
            self.site, self.booth = site, booth

        def post(self, path, json=None, key=None, who="nurse"):
            extra = {"Idempotency-Key": key} if key else {}
            return client.post(f"/api/v1/sites/{site.id}{path}", json=json,
                               headers={**headers[who], **extra})

        def get(self, path, who="nurse"):
            return client.get(f"/api/v1/sites/{site.id}{path}", headers=headers[who])

        def visit_in_booth(self, code="F-ABCD-1984"):
            visit = self.post("/visits", {"code": code}).get_json()
            assert self.post(f"/visits/{visit['id']}/booth",
                             {"booth_id": booth.id}).status_code == 200
            return visit

        def start(self, **body):
            response = self.post("/overdose-responses", {"kind": "opioid", **body})
            assert response.status_code == 201, response.get_json()
            return response.get_json()

        def step(self, response_id, body, **kwargs):
            return self.post(f"/overdose-responses/{response_id}/interventions", body,
                             **kwargs)

    return Api()


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(db.select(db.func.count(model.id)))


def test_a_whole_response_through_the_api(api):
    assert api.post("/naloxone/lots", LOT, who="supervisor").status_code == 201
    visit = api.visit_in_booth()
    response = api.start(visit_id=visit["id"])
    assert (response["visit_id"], response["client_code"], response["source"]) == (
        visit["id"], "F-ABCD-1984", "booth")
    rid = response["id"]
    for body in ({"kind": "stimulation"}, {"kind": "oxygen_on", "oxygen_lpm": 10},
                 {"kind": "naloxone", "route": "im"}, {"kind": "spo2", "spo2": 88},
                 {"kind": "ems_called"}):
        answer = api.step(rid, body)
        assert answer.status_code == 201, answer.get_json()
    dose = next(i for i in api.get(f"/overdose-responses/{rid}").get_json()["interventions"]
                if i["kind"] == "naloxone")
    assert dose["dose_mg"] == 0.4 and dose["lot_id"] and not dose["stock_discrepancy"]
    live = api.get(f"/overdose-responses/{rid}").get_json()
    assert live["redose_due_at"] and live["report_draft"] is None
    assert [r["id"] for r in api.get("/overdose-responses").get_json()] == [rid]

    closed = api.post(f"/overdose-responses/{rid}/close", {"outcome": "recovered_on_site"})
    assert closed.status_code == 200, closed.get_json()
    draft = closed.get_json()["report_draft"]
    assert draft["type"] == "overdose" and draft["outcome"] == "recovered_on_site"
    incident = db.session.execute(db.select(Incident).filter_by(response_id=rid)).scalar_one()
    assert closed.get_json()["incident_id"] == incident.id  # the draft the close wrote
    assert [e["what"] for e in draft["timeline"]] == [
        "started", "stimulation", "oxygen_on", "naloxone", "spo2", "ems_called", "closed"]
    assert draft["summary"]["naloxone_doses"] == 1 and draft["summary"]["ems_called"]
    # The draft is a stored record: read back later, as the incident review will.
    again = api.get(f"/overdose-responses/{rid}").get_json()
    assert again["report_draft"] == draft and again["closed_at"]
    assert api.get("/overdose-responses").get_json() == []


def test_someone_not_checked_in(api):
    response = api.start(location="Washroom")
    assert (response["client_code"], response["location"], response["source"]) == (
        None, "Washroom", "not_checked_in")
    refused = api.post("/overdose-responses", {"kind": "opioid", "location": "Roof"})
    assert_api_error(refused, 422, "location")


@pytest.mark.parametrize("body, field", [
    ({"kind": "naloxone", "route": "im", "dose_mg": 0.03}, "dose_mg"),
    ({"kind": "naloxone", "route": "iv", "dose_mg": 11}, "dose_mg"),
    ({"kind": "spo2", "spo2": 49}, "spo2"),
    ({"kind": "spo2", "spo2": 101}, "spo2"),
    ({"kind": "spo2", "spo2": "88"}, "spo2"),
    ({"kind": "levitation"}, "kind"),
    ({"kind": "cpr", "colour": "red"}, "colour"),
])
def test_bad_readings_are_refused_on_the_field(api, body, field):
    rid = api.start(location="Doorway")["id"]
    refused = api.step(rid, body)
    assert_api_error(refused, 422, field)
    assert count(Intervention) == 0


def test_an_intervention_on_a_closed_response_is_a_conflict(api):
    rid = api.start(location="Doorway")["id"]
    api.post(f"/overdose-responses/{rid}/close", {"outcome": "death"})
    refused = api.step(rid, {"kind": "cpr"})
    body = assert_api_error(refused, 409)
    assert body["current_state"] == "closed" and body["outcome"] == "death"
    assert_api_error(api.post(f"/overdose-responses/{rid}/close",
                              {"outcome": "recovered_on_site"}), 409)
    assert count(Intervention) == 0


@pytest.mark.parametrize("body, field", [({}, "outcome"), ({"outcome": None}, "outcome"),
                                         ({"outcome": "fine"}, "outcome"),
                                         ({"outcome": "other"}, "note")])
def test_closing_without_an_outcome_is_refused(api, body, field):
    rid = api.start(location="Doorway")["id"]
    assert_api_error(api.post(f"/overdose-responses/{rid}/close", body), 422, field)
    assert db.session.get(OverdoseResponse, rid).closed_at is None


def test_an_amendment_through_the_api(api):
    rid = api.start(location="Doorway")["id"]
    first = api.step(rid, {"kind": "spo2", "spo2": 97}).get_json()
    assert_api_error(api.step(rid, {"amends_id": first["id"], "spo2": 87}), 422,
                     "amend_reason")
    fixed = api.step(rid, {"amends_id": first["id"], "spo2": 87, "amend_reason": "Misread"})
    assert fixed.status_code == 201 and fixed.get_json()["amends_id"] == first["id"]
    timeline = api.get(f"/overdose-responses/{rid}").get_json()["timeline"]
    assert timeline[1]["detail"] == "SpO2 87%" and timeline[1]["amendments"][0]["was"] == (
        "SpO2 97%")


def test_a_repeated_tap_records_one_dose(api):
    api.post("/naloxone/lots", LOT, who="supervisor")
    rid = api.start(location="Doorway")["id"]
    first = api.step(rid, {"kind": "naloxone", "route": "im"}, key="tap-1")
    again = api.step(rid, {"kind": "naloxone", "route": "im"}, key="tap-1")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert count(Intervention) == 1
    assert db.session.execute(db.select(NaloxoneLot.quantity)).scalar_one() == 9


def test_starting_twice_for_one_visit_opens_the_same_response(api):
    visit = api.visit_in_booth()
    first = api.start(visit_id=visit["id"])
    second = api.start(visit_id=visit["id"])
    assert first["id"] == second["id"] and count(OverdoseResponse) == 1


def test_a_dose_with_no_stock_is_recorded_and_flagged(api):
    rid = api.start(location="Doorway")["id"]
    dose = api.step(rid, {"kind": "naloxone", "route": "in"})
    assert dose.status_code == 201 and dose.get_json()["stock_discrepancy"]
    findings = api.get("/naloxone", who="supervisor").get_json()["findings"]
    assert [f["kind"] for f in findings if f["intervention_id"]] == ["discrepancy"]


def test_the_operations_are_documented(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operations = {op["operationId"] for path in spec["paths"].values()
                  for op in path.values() if isinstance(op, dict) and "operationId" in op}
    assert {"startOverdoseResponse", "recordIntervention", "closeOverdoseResponse",
            "listNaloxoneStock", "receiveNaloxoneStock", "recordTakeHomeKit",
            "getOverdoseResponse"} <= operations
