"""A site's booths as its admin keeps them: list, add, rename, change kind, reorder, take out
of service, retire; by service, through the API (listBooths, createBooth, updateBooth) and on
the admin page."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from factories import make_booth, make_site, make_staff
from routes import assert_api_error, bearer

from srs import live
from srs.auth.models import AuditEvent
from srs.auth.service import Actor
from srs.booths import admin, service
from srs.booths.models import Booth, BoothState
from srs.errors import Conflict, Invalid
from srs.extensions import db

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.fixture
def east(app):
    """Site "east" with booths B1, B2 (injection) and S1 (inhalation), its admin Ada, its
    nurse Nina, and a second site "west" with its own B1."""
    site = make_site(name="East", slug="east")
    booths = {label: make_booth(site, label=label, kind=kind, position=i)
              for i, (label, kind) in enumerate(
                  [("B1", "injection"), ("B2", "injection"), ("S1", "inhalation")])}
    west = make_site(name="West", slug="west")
    make_booth(west, label="B4")
    ada = make_staff(site, role="admin", username="ada")
    nina = make_staff(site, role="nurse", username="nina")
    return {"site": site, "booths": booths, "west": west, "ada": ada, "nina": nina,
            "actor": Actor.of(ada), "nurse": Actor.of(nina)}


def occupy(east, label="B1", code="F-ABCD-1984"):
    """A client in booth ``label``."""
    visit = service.check_in(east["site"], code=code, handle=None, actor=east["nurse"],
                             actor_roles={"nurse"}, now=NOW)
    return service.assign_booth(visit, east["booths"][label], actor=east["nurse"], now=NOW)


def board_labels(site) -> list[str]:
    return [b.label for b in service.site_board(site, now=NOW)["booths"]]


def audit(booth_id) -> list[tuple]:
    return [(e.action, e.detail) for e in db.session.execute(
        db.select(AuditEvent).filter_by(entity="booth", entity_id=str(booth_id))
        .order_by(AuditEvent.id)).scalars()]


def change(east, which, **changes):
    return admin.update_booth(east["booths"][which], changes, actor=east["actor"], now=NOW)


# --- The service ------------------------------------------------------------------------------

def test_a_new_booth_goes_at_the_end_of_the_board_and_is_audited(east):
    booth = admin.add_booth(east["site"], label=" B9 ", kind="inhalation", actor=east["actor"],
                            now=NOW)
    assert board_labels(east["site"]) == ["B1", "B2", "S1", "B9"]
    assert (booth.label, booth.kind) == ("B9", "inhalation")
    assert audit(booth.id) == [("booth_created", {"label": "B9", "kind": "inhalation"})]


@pytest.mark.parametrize("label", ["B2", "b2", " B2 "])
def test_a_label_the_site_has_already_is_refused_in_any_case(east, label):
    with pytest.raises(Invalid) as refused:
        admin.add_booth(east["site"], label=label, kind="injection", actor=east["actor"],
                        now=NOW)
    assert refused.value.errors["label"] == ["Booth B2 exists already: choose another label."]
    with pytest.raises(Invalid):
        change(east, "B1", label=label)
    assert board_labels(east["site"]) == ["B1", "B2", "S1"]


def test_another_sites_label_and_a_booths_own_label_are_fine(east):
    admin.add_booth(east["site"], label="B4", kind="injection", actor=east["actor"], now=NOW)
    change(east, "B1", label="B1")
    assert board_labels(east["site"]) == ["B1", "B2", "S1", "B4"]
    assert audit(east["booths"]["B1"].id) == []  # nothing changed, nothing recorded


def test_a_retired_booths_label_stays_taken(east):
    change(east, "B2", retired=True)
    with pytest.raises(Invalid) as refused:
        admin.add_booth(east["site"], label="B2", kind="injection", actor=east["actor"],
                        now=NOW)
    assert refused.value.errors["label"] == [
        "Booth B2 exists already (retired): choose another label."]


def test_renaming_shows_on_the_board_and_keeps_the_old_name_in_the_audit(east):
    change(east, "B1", label="A1")
    assert board_labels(east["site"]) == ["A1", "B2", "S1"]
    assert audit(east["booths"]["B1"].id) == [("booth_renamed", {"from": "B1", "to": "A1"})]


def test_the_kind_of_a_free_booth_changes_and_of_an_occupied_one_is_refused(east):
    occupy(east, "B1")
    with pytest.raises(Conflict) as refused:
        change(east, "B1", kind="inhalation")
    assert refused.value.status == 409
    assert refused.value.errors["kind"] == [
        "A client is in booth B1: change its kind once it is free."]
    db.session.rollback()
    assert db.session.get(Booth, east["booths"]["B1"].id).kind == "injection"
    change(east, "B2", kind="inhalation")
    assert db.session.get(Booth, east["booths"]["B2"].id).kind == "inhalation"


def test_an_occupied_booth_cannot_be_retired(east):
    occupy(east, "B1")
    with pytest.raises(Conflict) as refused:
        change(east, "B1", retired=True)
    assert refused.value.errors["retired"] == [
        "A client is in booth B1: retire it once it is free."]
    db.session.rollback()
    assert board_labels(east["site"]) == ["B1", "B2", "S1"]


def test_moving_a_booth_reorders_the_board(east):
    change(east, "S1", position=0)
    assert board_labels(east["site"]) == ["S1", "B1", "B2"]
    change(east, "S1", position=99)  # past the end: last
    assert board_labels(east["site"]) == ["B1", "B2", "S1"]
    assert [a for a, _ in audit(east["booths"]["S1"].id)] == ["booth_moved", "booth_moved"]


def test_a_retired_booth_leaves_the_board_keeps_its_history_and_is_never_assigned(east):
    visit = occupy(east, "B2")
    service.start_observation(visit, actor=east["nurse"], now=NOW + timedelta(minutes=10))
    change(east, "B2", retired=True)
    assert board_labels(east["site"]) == ["B1", "S1"]
    assert [b.label for b in admin.list_booths(east["site"])] == ["B1", "S1", "B2"]
    assert db.session.get(type(visit), visit.id).booth.label == "B2"  # history kept
    waiting = service.check_in(east["site"], code="F-WXYZ-1990", handle=None,
                               actor=east["nurse"], actor_roles={"nurse"}, now=NOW)
    with pytest.raises(Conflict, match="Booth B2 is retired"):
        service.assign_booth(waiting, east["booths"]["B2"], actor=east["nurse"], now=NOW)
    with pytest.raises(Conflict, match="reinstate it first"):
        change(east, "B2", label="B7")
    change(east, "B2", retired=False)
    assert board_labels(east["site"]) == ["B1", "S1", "B2"]
    assert [a for a, _ in audit(east["booths"]["B2"].id)][-2:] == [
        "booth_retired", "booth_reinstated"]


def test_a_change_announces_the_board_to_every_screen_of_the_site(east, monkeypatch):
    heard = []
    monkeypatch.setattr(live, "announce", lambda site_id, topic: heard.append((site_id, topic)))
    change(east, "B1", label="A1")
    admin.add_booth(east["site"], label="B9", kind="injection", actor=east["actor"], now=NOW)
    assert heard == [(east["site"].id, "board")] * 2


# --- The API ---------------------------------------------------------------------------------

def api_url(site, booth=None) -> str:
    return f"/api/v1/sites/{site.id}/booths" + (f"/{booth.id}" if booth else "")


def test_list_booths_gives_board_order_with_retired_ones_last(client, east):
    change(east, "B1", retired=True)
    answer = client.get(api_url(east["site"]), headers=bearer(east["ada"]))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    listed = [(b["label"], b["kind"], b["state"], b["retired_at"] is not None)
              for b in answer.get_json()]
    assert listed == [("B2", "injection", "available", False),
                      ("S1", "inhalation", "available", False),
                      ("B1", "injection", "retired", True)]


def test_only_an_admin_of_the_site_manages_its_booths(client, east):
    nurse = bearer(east["nina"])
    assert_api_error(client.get(api_url(east["site"]), headers=nurse), 403)
    assert_api_error(client.post(api_url(east["site"]), headers=nurse,
                                 json={"label": "B9", "kind": "injection"}), 403)
    assert_api_error(client.patch(api_url(east["site"], east["booths"]["B1"]), headers=nurse,
                                  json={"label": "A1"}), 403)


def test_create_booth_answers_the_new_booth_and_refuses_a_taken_label(client, east):
    headers = bearer(east["ada"])
    made = client.post(api_url(east["site"]), headers=headers,
                       json={"label": "B9", "kind": "inhalation"})
    assert made.status_code == 201, made.get_data(as_text=True)
    assert {k: made.get_json()[k] for k in ("label", "kind", "position", "state")} == {
        "label": "B9", "kind": "inhalation", "position": 3, "state": "available"}
    taken = client.post(api_url(east["site"]), headers=headers,
                        json={"label": "b9", "kind": "injection"})
    assert_api_error(taken, 422, "label")
    wrong = client.post(api_url(east["site"]), headers=headers,
                        json={"label": "", "kind": "sauna", "colour": "red"})
    assert_api_error(wrong, 422, "label", "kind", "colour")


def test_update_booth_renames_moves_retires_and_refuses_an_occupied_booth(client, east):
    headers = bearer(east["ada"])
    b1, s1 = east["booths"]["B1"], east["booths"]["S1"]
    moved = client.patch(api_url(east["site"], s1), headers=headers,
                         json={"label": "S0", "position": 0})
    assert moved.status_code == 200, moved.get_data(as_text=True)
    assert (moved.get_json()["label"], moved.get_json()["position"]) == ("S0", 0)
    assert board_labels(east["site"]) == ["S0", "B1", "B2"]
    occupy(east, "B1")
    assert_api_error(client.patch(api_url(east["site"], b1), headers=headers,
                                  json={"kind": "inhalation"}), 409, "kind")
    assert_api_error(client.patch(api_url(east["site"], b1), headers=headers,
                                  json={"retired": True}), 409, "retired")
    retired = client.patch(api_url(east["site"], east["booths"]["B2"]), headers=headers,
                           json={"retired": True})
    assert retired.get_json()["state"] == "retired"
    assert board_labels(east["site"]) == ["S0", "B1"]
    assert_api_error(client.patch(api_url(east["site"], b1), headers=headers,
                                  json={"position": "first"}), 422, "position")


def test_a_booth_of_another_site_is_not_found(client, east):
    west_booth = east["west"].booths[0]
    assert_api_error(client.patch(api_url(east["site"], west_booth), headers=bearer(
        east["ada"]), json={"label": "Z1"}), 404)


def test_the_three_operations_are_documented(client):
    document = client.get("/api/v1/openapi.json").get_json()
    ids = {op["operationId"] for path in document["paths"].values() for op in path.values()
           if isinstance(op, dict) and "operationId" in op}
    assert {"listBooths", "createBooth", "updateBooth"} <= ids


# --- The admin page ---------------------------------------------------------------------------

PAGE = "/sites/east/admin/booths"


def rows(html: str) -> list[str]:
    return re.findall(r'name="label" class="booth-admin__label" maxlength="20" value="([^"]*)"',
                      html)


def test_an_admin_reaches_the_booths_page_from_home_and_a_nurse_does_not(client, auth, east):
    auth.login("ada")
    assert f'href="{PAGE}"' in client.get("/").get_data(as_text=True)
    page = client.get(PAGE)
    assert page.status_code == 200
    assert rows(page.get_data(as_text=True)) == ["B1", "B2", "S1"]
    auth.login("nina")
    assert PAGE not in client.get("/").get_data(as_text=True)
    assert client.get(PAGE).status_code == 403


def test_the_page_adds_renames_and_retires_with_busy_buttons_and_keys(client, auth, east):
    auth.login("ada")
    html = client.get(PAGE).get_data(as_text=True)
    # Every button says it is working while its tap is answered; each form has its own key.
    for form in re.findall(r"<form[^>]*hx-post.*?</form>", html, re.S):
        assert 'name="idempotency_key"' in form and 'hx-sync="this:drop"' in form
        assert all("data-busy-label" in b for b in re.findall(r"<button[^>]*>", form))
    added = auth.post(f"{PAGE}", {"label": "B9", "kind": "inhalation"})
    assert added.status_code == 200
    assert rows(added.get_data(as_text=True)) == ["B1", "B2", "S1", "B9"]
    b1 = east["booths"]["B1"]
    renamed = auth.post(f"{PAGE}/{b1.id}", {"label": "A1"})
    assert rows(renamed.get_data(as_text=True)) == ["A1", "B2", "S1", "B9"]
    retired = auth.post(f"{PAGE}/{b1.id}", {"retired": "true"})
    assert rows(retired.get_data(as_text=True)) == ["B2", "S1", "B9"]
    assert 'data-testid="retired-row"' in retired.get_data(as_text=True)
    assert board_labels(east["site"]) == ["B2", "S1", "B9"]


def test_a_refused_field_comes_back_beside_it_with_what_was_typed(client, auth, east):
    auth.login("ada")
    taken = auth.post(PAGE, {"label": "S1 ", "kind": "injection"})
    assert taken.status_code == 422
    html = taken.get_data(as_text=True)
    assert 'id="new-label" name="label" maxlength="20" placeholder="B9" value="S1 "' in html
    assert re.search(r'<p class="field-error" id="new-label-error" data-error-for="label">'
                     r"Booth S1 exists already: choose another label.</p>", html)
    b2 = east["booths"]["B2"]
    blank = auth.post(f"{PAGE}/{b2.id}", {"label": "  "})
    assert blank.status_code == 422
    assert f'id="booth-{b2.id}-label-error"' in blank.get_data(as_text=True)
    occupy(east, "B1")
    b1 = east["booths"]["B1"]
    refused = auth.post(f"{PAGE}/{b1.id}", {"retired": "true"})
    assert refused.status_code == 409
    assert "A client is in booth B1: retire it once it is free." in refused.get_data(
        as_text=True)


def test_the_page_moves_a_booth_and_takes_one_out_of_service(client, auth, east):
    auth.login("ada")
    s1 = east["booths"]["S1"]
    auth.post(f"{PAGE}/{s1.id}", {"position": "0"})
    assert board_labels(east["site"]) == ["S1", "B1", "B2"]
    out = auth.post(f"{PAGE}/{s1.id}/out-of-service", {"reason": "Broken fixture"})
    assert out.status_code == 200
    board = service.site_board(east["site"], now=NOW)["booths"]
    assert (board[0].label, board[0].state) == ("S1", BoothState.OUT_OF_SERVICE)
    back = auth.post(f"{PAGE}/{s1.id}/in-service")
    assert 'data-testid="out-of-service"' in back.get_data(as_text=True)


def test_another_screen_of_the_site_hears_the_change(client, auth, east, socket_client):
    auth.login("ada")
    screen = socket_client()
    screen.get_received()
    answer = auth.post(f"{PAGE}/{east['booths']['B1'].id}", {"label": "A1"})
    answer.close()
    assert live.wait_until_published()
    said = [e["args"][0] for e in screen.get_received() if e["name"] == "changed"]
    assert any("board" in (m.get("topics") or [m.get("topic")]) for m in said), said
