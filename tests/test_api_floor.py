"""The floor through the JSON API: each operation, bad input, conflicts, idempotency."""

from datetime import timedelta

import pytest
from factories import make_booth, make_site, make_staff
from routes import assert_api_error, bearer

from srs.auth.models import AuditEvent, Staff
from srs.booths.models import Consumption, Visit
from srs.common import utcnow
from srs.extensions import db
from srs.idempotency import STALE_AFTER, IdempotentRequest


@pytest.fixture
def api(client):
    site = make_site(slug="east")
    nurse = make_staff(site, role="nurse", username="nina")
    headers = bearer(nurse)
    booths = {label: make_booth(site, label=label, kind=kind, position=n)
              for n, (label, kind) in enumerate([("B1", "injection"), ("B2", "injection"),
                                                 ("S1", "inhalation")])}

    class Api:
        def __init__(self):
            self.site, self.booths = site, booths

        def post(self, path, json=None, key=None):
            extra = {"Idempotency-Key": key} if key else {}
            return client.post(f"/api/v1/sites/{site.id}{path}", json=json,
                               headers={**headers, **extra})

        def check_in(self, code="F-ABCD-1984", **body):
            response = self.post("/visits", {"code": code, **body})
            assert response.status_code == 201, response.get_json()
            return response.get_json()

        def in_booth(self, code="F-ABCD-1984", booth="B1"):
            visit = self.check_in(code)
            response = self.post(f"/visits/{visit['id']}/booth",
                                 {"booth_id": self.booths[booth].id})
            assert response.status_code == 200, response.get_json()
            return response.get_json()

    return Api()


CONSUMPTION = {"substances": ["fentanyl", "cocaine"], "route": "injects",
               "fentanyl_strip": "positive", "benzo_strip": "not_done",
               "split_or_shared": True, "peer_assisted": False}


def test_a_whole_visit(api, client):
    visit = api.check_in("F-ABCD-1984", handle="Sparrow")
    assert visit["state"] == "waiting" and visit["client"]["handle"] == "Sparrow"
    in_booth = api.post(f"/visits/{visit['id']}/booth", {"booth_id": api.booths["B1"].id})
    assert in_booth.get_json()["state"] == "in_booth"
    used = api.post(f"/visits/{visit['id']}/consumptions", CONSUMPTION)
    assert used.status_code == 201 and used.get_json()["substances"] == ["fentanyl", "cocaine"]
    observing = api.post(f"/visits/{visit['id']}/observation")
    assert observing.get_json()["state"] == "observing"
    assert observing.get_json()["observation_ends_at"]
    cleaned = api.post(f"/booths/{api.booths['B1'].id}/clean")
    assert cleaned.get_json()["state"] == "available"
    done = api.post(f"/visits/{visit['id']}/discharge", {})
    assert done.get_json()["state"] == "departed"
    events = [e.action for e in db.session.execute(
        db.select(AuditEvent).filter_by(entity="visit", entity_id=str(visit["id"]))).scalars()]
    assert events == ["visit_checked_in", "booth_assigned", "consumption_recorded",
                      "observation_started", "visit_discharged"]


def test_the_board_shows_who_is_where(api, client):
    api.in_booth("F-ABCD-1984", "B2")
    api.check_in("M-WXYZ-1977")
    nurse_headers = bearer(make_staff(api.site, role="nurse"))
    board = client.get(f"/api/v1/sites/{api.site.id}/board", headers=nurse_headers).get_json()
    b2 = next(b for b in board["booths"] if b["label"] == "B2")
    assert b2["state"] == "occupied" and b2["visit"]["client"]["code"] == "F-ABCD-1984"
    assert [v["client"]["code"] for v in board["queue"]] == ["M-WXYZ-1977"]
    assert board["today"]["visits"] == 2


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/visits", {"code": "ABCD-1984"}, "code"),
    ("/visits", {"code": "F-ABCD-1984", "handle": "555 123 4567"}, "handle"),
    ("/visits", {}, "code"),
    ("/visits", {"code": "F-ABCD-1984", "name": "Jane"}, "name"),
])
def test_bad_check_in_input_is_refused_on_the_field(api, path, body, field):
    assert_api_error(api.post(path, body), 422, field)
    assert db.session.execute(db.select(db.func.count(Visit.id))).scalar() == 0


@pytest.mark.parametrize(("change", "field"), [
    ({"substances": ["fentanyl", "tea"]}, "substances"),
    ({"substances": []}, "substances"),
    ({"route": "smokes"}, "route"),
    ({"route": "teleports"}, "route"),
    ({"fentanyl_strip": "maybe"}, "fentanyl_strip"),
])
def test_bad_consumption_is_refused_on_the_field(api, change, field):
    visit = api.in_booth()
    assert_api_error(api.post(f"/visits/{visit['id']}/consumptions", {**CONSUMPTION, **change}),
                     422, field)
    assert db.session.execute(db.select(db.func.count(Consumption.id))).scalar() == 0


def test_a_taken_booth_is_a_409_naming_it(api):
    api.in_booth("F-ABCD-1984", "B1")
    second = api.check_in("M-WXYZ-1977")
    body = assert_api_error(api.post(f"/visits/{second['id']}/booth",
                                     {"booth_id": api.booths["B1"].id}), 409)
    assert body["code"] == "booth_taken" and body["booth"] == "B1"
    assert "F-ABCD-1984" in body["message"]


def test_out_of_order_transitions_are_409_with_the_current_state(api):
    visit = api.in_booth()
    api.post(f"/visits/{visit['id']}/discharge", {"reason": "did_not_consume"})
    body = assert_api_error(api.post(f"/visits/{visit['id']}/discharge", {}), 409)
    assert body["current_state"] == "departed"
    body = assert_api_error(api.post(f"/visits/{visit['id']}/booth",
                                     {"booth_id": api.booths["B2"].id}), 409)
    assert body["current_state"] == "departed"


def test_unknown_visit_or_booth_is_404(api):
    assert_api_error(api.post("/visits/999/observation"), 404)
    visit = api.check_in()
    assert_api_error(api.post(f"/visits/{visit['id']}/booth", {"booth_id": 999}), 404)


def test_the_same_key_twice_records_once_and_answers_the_same(api):
    first = api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-1")
    again = api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-1")
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.session.execute(db.select(db.func.count(Visit.id))).scalar() == 1


def test_a_refusal_is_repeated_too(api):
    first = api.post("/visits", {"code": "nonsense"}, key="tap-2")
    again = api.post("/visits", {"code": "nonsense"}, key="tap-2")
    assert first.status_code == again.status_code == 422
    assert first.get_json() == again.get_json()


def test_a_key_cannot_be_reused_for_another_action(api):
    visit = api.check_in()
    api.post(f"/visits/{visit['id']}/booth", {"booth_id": api.booths["B1"].id}, key="tap-3")
    body = assert_api_error(api.post(f"/visits/{visit['id']}/observation", key="tap-3"), 422,
                            "Idempotency-Key")
    assert "another action" in body["message"]


def test_without_a_key_each_call_counts(api):
    api.check_in("F-ABCD-1984")
    assert_api_error(api.post("/visits", {"code": "F-ABCD-1984"}), 409)


def _in_progress(api, key: str, *, started) -> None:
    """A request with ``key`` that began at ``started`` and has not answered (yet, or ever:
    the server died mid-way)."""
    nurse = db.session.execute(db.select(Staff).filter_by(username="nina")).scalar_one()
    db.session.add(IdempotentRequest(staff_id=nurse.id, key=key, method="POST",
                                     path=f"/api/v1/sites/{api.site.id}/visits",
                                     created_at=started))
    db.session.commit()


def test_a_repeat_while_the_first_is_still_running_is_told_to_wait(api):
    _in_progress(api, "tap-4", started=utcnow())
    body = assert_api_error(api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-4"), 409)
    assert "still being processed" in body["message"]
    assert db.session.execute(db.select(db.func.count(Visit.id))).scalar() == 0


def test_a_key_whose_request_died_mid_way_can_be_used_again(api):
    _in_progress(api, "tap-5", started=utcnow() - STALE_AFTER - timedelta(seconds=1))
    response = api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-5")
    assert response.status_code == 201, response.get_json()
    again = api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-5")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == response.get_json()
    assert db.session.execute(db.select(db.func.count(Visit.id))).scalar() == 1
