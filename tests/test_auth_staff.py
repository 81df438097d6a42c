"""A site's staff, managed by its admins without a shell: add a person (first password and PIN
shown once), reset either (shown once), change roles, deactivate and reactivate; never the
site's last admin or one's own admin role; an on-call supervisor deactivated is taken off
call, audited and said so. Service, API (listStaff, createStaff, updateStaff,
resetStaffCredentials) and the admin page."""

import json

import pytest
from factories import ACTOR, PASSWORD, PIN, make_site, make_staff
from routes import assert_api_error
from werkzeug.security import check_password_hash

from srs.auth import service as auth_service
from srs.auth.models import AuditEvent, Staff
from srs.auth.service import Actor, issue_token
from srs.common import utcnow
from srs.errors import Conflict, Invalid
from srs.extensions import db
from srs.sites import service as sites_service
from srs.sites.models import Site


@pytest.fixture
def east(app):
    """Site "east" with its admin Ada, its nurse Nina and its supervisor Sam, on call."""
    site = make_site(name="East Side", slug="east")
    people = {"site": site, "ada": make_staff(site, role="admin", username="ada"),
              "nina": make_staff(site, role="nurse", username="nina"),
              "sam": make_staff(site, role="supervisor", username="sam")}
    site.on_call_staff_id = people["sam"].id
    db.session.commit()
    return people


def by(staff) -> dict:
    return {"actor": Actor.of(staff), "now": utcnow()}


def stored(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def events(**where) -> list[AuditEvent]:
    return list(db.session.execute(
        db.select(AuditEvent).filter_by(**where).order_by(AuditEvent.id)).scalars())


def admin_headers(staff) -> dict:
    return {"Authorization": f"Bearer {issue_token(staff, actor=ACTOR)}"}


# --- Service ----------------------------------------------------------------------------------

def test_the_sites_last_admin_is_neither_demoted_nor_deactivated(east):
    site, ada = east["site"], east["ada"]
    cli = ACTOR  # not Ada herself: the refusal is for the site's sake
    with pytest.raises(Conflict, match="last admin"):
        sites_service.set_staff_roles(site, ada, ["nurse"], actor=cli, now=utcnow())
    with pytest.raises(Conflict, match="last admin"):
        sites_service.deactivate_staff(ada, actor=cli, now=utcnow())
    with pytest.raises(Conflict, match="last admin"):
        auth_service.deactivate_staff(ada, actor=cli, now=utcnow())
    ada = stored(Staff, ada.id)
    assert ada.active and ada.roles_at(site.id) == {"admin"}
    # With a second admin, the first may go.
    make_staff(site, role="admin", username="bea")
    sites_service.set_staff_roles(site, stored(Staff, ada.id), ["nurse"], actor=cli,
                                  now=utcnow())
    assert stored(Staff, ada.id).roles_at(site.id) == {"nurse"}


def test_an_admin_cannot_take_away_their_own_admin_role(east):
    site, ada = east["site"], east["ada"]
    bea = make_staff(site, role="admin", username="bea")
    with pytest.raises(Conflict, match="your own admin role"):
        sites_service.set_staff_roles(site, ada, ["nurse"], **by(ada))
    # Adding a role beside admin is fine; another admin may take Ada's admin role.
    sites_service.set_staff_roles(site, ada, ["admin", "reviewer"], **by(ada))
    assert stored(Staff, ada.id).roles_at(site.id) == {"admin", "reviewer"}
    sites_service.set_staff_roles(site, stored(Staff, ada.id), ["reviewer"], **by(bea))
    assert stored(Staff, ada.id).roles_at(site.id) == {"reviewer"}
    with pytest.raises(Invalid):
        sites_service.set_staff_roles(site, stored(Staff, ada.id), [], **by(bea))


def test_a_reactivated_person_signs_in_again_with_the_roles_they_kept(client, auth, east):
    nina, ada = east["nina"], east["ada"]
    sites_service.deactivate_staff(nina, **by(ada))
    assert auth.login("nina").status_code != 302
    auth_service.reactivate_staff(stored(Staff, nina.id), **by(ada))
    assert auth.login("nina").status_code == 302
    assert stored(Staff, nina.id).roles_at(east["site"].id) == {"nurse"}
    assert [e.action for e in events(entity="staff", entity_id=str(nina.id))][-2:] == [
        "staff_deactivated", "staff_reactivated"]


def test_a_new_person_and_a_reset_get_secrets_that_work_and_are_kept_nowhere(
        client, auth, east):
    site, ada = east["site"], east["ada"]
    person, password, pin = auth_service.add_site_staff(
        site, username="Omar", display_name="Omar Diaz", roles=["nurse", "supervisor"],
        **by(ada))
    assert person.username == "omar" and person.roles_at(site.id) == {"nurse", "supervisor"}
    assert check_password_hash(person.pin_hash, pin)
    assert auth.login("omar", password).status_code == 302

    new = auth_service.reset_password(person, site_id=site.id, **by(ada))
    assert new != password
    auth.logout()
    assert auth.login("omar", password).status_code != 302
    assert auth.login("omar", new).status_code == 302
    new_pin = auth_service.reset_pin(stored(Staff, person.id), site_id=site.id, **by(ada))
    assert check_password_hash(stored(Staff, person.id).pin_hash, new_pin)

    trail = events(entity="staff", entity_id=str(person.id))
    assert {"staff_created", "password_reset", "pin_reset"} <= {e.action for e in trail}
    written = json.dumps([e.detail for e in trail])
    for secret in (password, pin, new, new_pin):
        assert secret not in written


def test_deactivating_the_on_call_supervisor_takes_them_off_call_audited(east):
    site, sam, ada = east["site"], east["sam"], east["ada"]
    off_call = sites_service.deactivate_staff(sam, **by(ada))
    assert [item.site.id for item in off_call] == [site.id]
    assert stored(Site, site.id).on_call_staff_id is None
    (change,) = [e for e in events(entity="site", entity_id=str(site.id))
                 if e.action == "settings_updated"]
    assert change.detail == {"on_call_staff_id": {"from": sam.id, "to": None},
                             "why": "deactivated"}
    assert change.staff_id == ada.id


def test_the_cli_deactivating_the_on_call_supervisor_says_nobody_is_on_call(runner, east):
    result = runner.invoke(args=["srs", "user", "deactivate", "sam"])
    assert result.exit_code == 0, result.output
    assert "sam was on call at east: nobody is now." in result.output
    assert stored(Site, east["site"].id).on_call_staff_id is None
    last_admin = runner.invoke(args=["srs", "user", "deactivate", "ada"])
    assert last_admin.exit_code != 0 and "last admin" in last_admin.output
    assert stored(Staff, east["ada"].id).active


# --- API --------------------------------------------------------------------------------------

def test_list_staff_gives_roles_and_last_sign_in_and_no_secret(client, auth, east):
    auth.login("nina")
    answer = client.get(f"/api/v1/sites/{east['site'].id}/staff",
                        headers=admin_headers(east["ada"]))
    assert answer.status_code == 200
    people = {p["username"]: p for p in answer.get_json()}
    assert set(people) == {"ada", "nina", "sam"}
    assert people["nina"]["roles"] == ["nurse"] and people["nina"]["active"] is True
    assert people["nina"]["last_sign_in_at"] is not None
    assert people["sam"]["last_sign_in_at"] is None
    assert not {"password", "pin", "password_hash", "pin_hash"} & set(people["nina"])


def test_create_staff_answers_the_first_password_and_pin_once(client, auth, east):
    url = f"/api/v1/sites/{east['site'].id}/staff"
    headers = admin_headers(east["ada"])
    answer = client.post(url, headers=headers, json={
        "username": "omar", "display_name": "Omar Diaz", "roles": ["nurse"]})
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["staff"]["roles"] == ["nurse"] and body["staff"]["has_pin"] is True
    assert auth.login("omar", body["password"]).status_code == 302
    listed = client.get(url, headers=headers).get_data(as_text=True)
    assert body["password"] not in listed and body["pin"] not in listed
    assert_api_error(client.post(url, headers=headers, json={
        "username": "omar", "roles": ["nurse"]}), 422, "username")
    assert_api_error(client.post(url, headers=headers, json={
        "username": "olga", "roles": ["janitor"]}), 422, "roles")


def test_update_staff_changes_roles_and_refuses_the_callers_own_admin_role(client, east):
    site, ada = east["site"], east["ada"]
    headers = admin_headers(ada)
    url = f"/api/v1/sites/{site.id}/staff"
    answer = client.patch(f"{url}/{east['nina'].id}", headers=headers,
                          json={"roles": ["nurse", "reviewer"], "display_name": "Nina O."})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["roles"] == ["nurse", "reviewer"]
    assert answer.get_json()["display_name"] == "Nina O."
    refusal = assert_api_error(client.patch(f"{url}/{ada.id}", headers=headers,
                                            json={"roles": ["nurse"]}), 409, "roles")
    assert "your own admin role" in refusal["message"]
    assert stored(Staff, ada.id).roles_at(site.id) == {"admin"}
    # Someone of another site is not this site's to change.
    west = make_site(name="West", slug="west")
    wes = make_staff(west, role="nurse", username="wes")
    assert_api_error(client.patch(f"{url}/{wes.id}", headers=headers, json={"active": False}),
                     404)


def test_update_staff_deactivating_the_on_call_supervisor_names_the_site(client, east):
    site = east["site"]
    answer = client.patch(f"/api/v1/sites/{site.id}/staff/{east['sam'].id}",
                          headers=admin_headers(east["ada"]), json={"active": False})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["active"] is False and answer.get_json()["off_call"] == [site.id]
    assert stored(Site, site.id).on_call_staff_id is None


def test_the_sites_audit_trail_shows_who_deactivated_and_reactivated_someone(client, auth,
                                                                              east):
    """A site admin's staff change is on that site's trail (listAuditEvents, the audit page)
    like a role change or a reset: the trail shows only events of its site."""
    site, nina, sam = east["site"], east["nina"], east["sam"]
    url = f"/api/v1/sites/{site.id}"
    headers = admin_headers(east["ada"])
    assert client.patch(f"{url}/staff/{nina.id}", headers=headers,
                        json={"active": False}).status_code == 200
    assert client.patch(f"{url}/staff/{nina.id}", headers=headers,
                        json={"active": True}).status_code == 200
    trail = client.get(f"{url}/audit-events?entity=staff", headers=headers).get_json()["items"]
    assert [(i["action"], i["entity_id"], i["person"]) for i in trail][:2] == [
        ("staff_reactivated", str(nina.id), "ada"), ("staff_deactivated", str(nina.id), "ada")]
    auth.login("ada")
    assert auth.post(f"/sites/east/admin/staff/{sam.id}/deactivate").status_code == 200
    page = client.get("/sites/east/audit?action=staff_deactivated").get_data(as_text=True)
    assert page.count('data-testid="audit-row"') == 2
    assert client.get("/sites/east/audit?action=staff_reactivated").get_data(
        as_text=True).count('data-testid="audit-row"') == 1


def test_a_deactivated_nurses_open_floor_socket_is_cut_at_once(client, auth, socket_client,
                                                                east):
    headers = admin_headers(east["ada"])  # before Nina signs in on this browser
    auth.login("nina")
    tablet = socket_client(auth={"view": "floor"})
    assert tablet.is_connected()
    answer = client.patch(f"/api/v1/sites/{east['site'].id}/staff/{east['nina'].id}",
                          headers=headers, json={"active": False})
    assert answer.status_code == 200, answer.get_json()
    assert not tablet.is_connected()
    assert client.get("/sites/east/floor").headers["Location"].startswith("/login")


def test_reset_staff_credentials_answers_the_new_pin_once(client, east):
    nina = east["nina"]
    answer = client.post(f"/api/v1/sites/{east['site'].id}/staff/{nina.id}/reset",
                         headers=admin_headers(east["ada"]), json={"pin": True})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["password"] is None and body["pin"] != PIN
    assert check_password_hash(stored(Staff, nina.id).pin_hash, body["pin"])
    assert check_password_hash(stored(Staff, nina.id).password_hash, PASSWORD)


def test_the_openapi_document_names_the_staff_operations(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()
           if isinstance(op, dict) and "operationId" in op}
    assert {"listStaff", "createStaff", "updateStaff", "resetStaffCredentials"} <= ids


# --- The admin page ---------------------------------------------------------------------------

def test_the_admin_page_adds_a_person_and_shows_their_secrets_once(client, auth, east):
    auth.login("ada")
    home = client.get("/").get_data(as_text=True)
    assert "/sites/east/admin/staff" in home
    page = client.get("/sites/east/admin/staff").get_data(as_text=True)
    assert page.count('data-testid="staff-row"') == 3 and 'hx-post=' in page

    refused = auth.post("/sites/east/admin/staff", {"username": "Omar!", "display_name": "Omar"})
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert 'value="Omar!"' in text and 'value="Omar"' in text
    assert 'data-error-for="roles"' in text and 'data-error-for="username"' in text

    added = auth.post("/sites/east/admin/staff",
                      {"username": "omar", "display_name": "Omar Diaz", "roles": ["nurse"]})
    assert added.status_code == 200
    text = added.get_data(as_text=True)
    assert 'data-testid="staff-secrets"' in text and 'id="staff-admin"' in text
    assert "<html" not in text  # the panel, for htmx to swap
    password = text.split('data-testid="staff-password">')[1].split("<")[0]
    assert auth_service.authenticate("omar", password, now=utcnow(), origin=None)
    again = client.get("/sites/east/admin/staff").get_data(as_text=True)
    assert password not in again and "Omar Diaz" in again


def test_the_admin_page_refuses_ones_own_admin_role_and_says_who_went_off_call(
        client, auth, east):
    auth.login("ada")
    refused = auth.post(f"/sites/east/admin/staff/{east['ada'].id}/roles", {"roles": ["nurse"]})
    assert refused.status_code == 409
    assert "your own admin role" in refused.get_data(as_text=True)
    unknown = auth.post(f"/sites/east/admin/staff/{east['nina'].id}/roles",
                        {"roles": ["janitor"]})
    assert unknown.status_code == 422 and "Choose from" in unknown.get_data(as_text=True)
    answer = auth.post(f"/sites/east/admin/staff/{east['sam'].id}/deactivate")
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert "was the on-call supervisor of East Side" in text
    assert 'data-testid="reactivate-staff"' in text
