"""The floor through the JSON API: each operation, bad input, conflicts, idempotency."""

import json
from datetime import timedelta

import pytest
from factories import make_booth, make_site, make_staff
from routes import assert_api_error, bearer
from sqlalchemy import event
from sqlalchemy.orm import Session

from srs import live
from srs.auth.models import AuditEvent, Staff
from srs.booths.models import Consumption, Visit
from srs.common import utcnow
from srs.extensions import db
from srs.idempotency import IdempotentRequest


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
        db.select(AuditEvent).filter_by(entity="visit", entity_id=str(visit["id"]))
        .order_by(AuditEvent.id)).scalars()]
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


def _claimed_unanswered(api, key: str, *, started) -> None:
    """A request with ``key`` whose action committed at ``started`` and whose answer is not
    kept: an older version of SRS committed the key before the answer and stopped in
    between."""
    nurse = db.session.execute(db.select(Staff).filter_by(username="nina")).scalar_one()
    db.session.add(IdempotentRequest(staff_id=nurse.id, key=key, method="POST",
                                     path=f"/api/v1/sites/{api.site.id}/visits",
                                     created_at=started))
    db.session.commit()


@pytest.mark.parametrize("age", [timedelta(0), timedelta(days=1)], ids=["now", "a-day-ago"])
def test_a_claimed_key_without_its_answer_is_never_acted_on_again(api, age):
    _claimed_unanswered(api, "tap-4", started=utcnow() - age)
    body = assert_api_error(api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-4"), 409)
    assert "already recorded" in body["message"]
    assert db.session.execute(db.select(db.func.count(Visit.id))).scalar() == 0


def _check_in_failing(monkeypatch, *, after_commit: bool) -> None:
    from srs.booths import service

    real_check_in = service.check_in

    def failing(*args, **kwargs):
        if after_commit:
            real_check_in(*args, **kwargs)
        raise RuntimeError("the server failed")

    monkeypatch.setattr(service, "check_in", failing)


def _visits() -> int:
    db.session.rollback()
    return db.session.execute(db.select(db.func.count(Visit.id))).scalar()


def test_a_tap_that_fails_before_recording_anything_can_be_tried_again(api, app, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    _check_in_failing(monkeypatch, after_commit=False)
    assert api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-6").status_code == 500
    monkeypatch.undo()
    assert _visits() == 0
    again = api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-6")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert _visits() == 1


def test_a_tap_that_fails_after_its_action_records_nothing_and_tells_no_screen(
        api, app, auth, monkeypatch, socket_client):
    """The action, its key and its answer commit together: a server error after the
    service's own commit leaves nothing recorded and no screen told of a visit that is
    not there, and the retry checks the client in once."""
    auth.login("nina")
    screen = socket_client()
    screen.get_received()
    app.config["PROPAGATE_EXCEPTIONS"] = False
    _check_in_failing(monkeypatch, after_commit=True)
    failed = api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-7")
    failed.close()  # sent: what the request announces goes out now
    assert failed.status_code == 500
    monkeypatch.undo()
    assert live.wait_until_published()
    assert [e for e in screen.get_received() if e["name"] == "changed"] == []
    assert _visits() == 0
    again = api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-7")
    again.close()
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert live.wait_until_published()
    assert [e["args"][0]["topic"] for e in screen.get_received()
            if e["name"] == "changed"] == ["queue"]
    assert _visits() == 1


@pytest.fixture
def crash_after_the_commit(app):
    """The server fails right after the commit that records a visit, before the answer goes
    out (as a crash there would): the caller hears a 500."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    armed = [True]

    def note(session, _context):
        if any(isinstance(written, Visit) for written in session.new):
            session.info["test_visit_written"] = True

    def crash(session):
        if session.get_nested_transaction() is None \
                and session.info.pop("test_visit_written", False) and armed[0]:
            armed[0] = False
            raise RuntimeError("the server stopped")

    event.listen(Session, "after_flush", note)
    event.listen(Session, "after_commit", crash)
    yield
    event.remove(Session, "after_commit", crash)
    event.remove(Session, "after_flush", note)


def test_a_check_in_answered_by_a_crash_after_its_commit_is_replayed_with_its_visit(
        api, crash_after_the_commit):
    """A check-in recorded but never answered (the server failed between commit and
    response) answers its retry with the visit it recorded, never "not ready"."""
    cut_off = api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-9")
    assert cut_off.status_code == 500
    assert _visits() == 1
    visit = db.session.execute(db.select(Visit)).scalar_one()
    kept = db.session.execute(db.select(IdempotentRequest).filter_by(key="tap-9")).scalar_one()
    assert kept.status_code == 201 and json.loads(kept.body)["id"] == visit.id
    again = api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-9")
    assert again.status_code == 201, again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == visit.id and again.get_json()["state"] == "waiting"
    assert _visits() == 1


def test_a_refusal_after_an_audited_read_is_kept_once(api):
    """Checking in a restricted client commits the audited read of the record, then refuses:
    a repeat gets the same refusal and the read is audited once."""
    from factories import make_client

    client = make_client(api.site, code="F-ABCD-1984")
    client.restricted_until = utcnow().date() + timedelta(days=3)
    db.session.commit()
    first = api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-8")
    again = api.post("/visits", {"code": "F-ABCD-1984"}, key="tap-8")
    assert first.status_code == again.status_code == 403
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.get_json() == again.get_json()
    db.session.rollback()
    reads = db.session.execute(db.select(db.func.count(AuditEvent.id)).filter_by(
        action="client_viewed")).scalar()
    assert reads == 1
