"""Taking access away bites at once: a revoked API token, a deactivated or deleted person, a
role removed. Each refuses the next call and cuts every socket already open (service, CLI
and API; across instances in test_live_scaleout.py)."""

import pytest
from factories import ACTOR, PASSWORD, make_site, make_staff
from routes import assert_api_error

from srs.auth.models import ApiToken, AuditEvent, LoginSession, Staff
from srs.auth.service import (
    Actor,
    deactivate_staff,
    delete_staff,
    issue_token,
    remove_role,
    revoke_token,
    tokens_of,
)
from srs.common import utcnow
from srs.errors import Conflict, NotFound
from srs.extensions import db


@pytest.fixture
def east(app):
    """Site "east" with its admin Ada and its nurse Nina; site "west" with its admin Wes."""
    site = make_site(name="East Side", slug="east")
    west = make_site(name="West End", slug="west")
    return {"site": site, "west": west,
            "ada": make_staff(site, role="admin", username="ada"),
            "nina": make_staff(site, role="nurse", username="nina"),
            "wes": make_staff(west, role="admin", username="wes")}


def a_token(staff) -> tuple[ApiToken, str]:
    """A new API token of ``staff``: the row and the value its holder was given."""
    raw = issue_token(staff, actor=ACTOR)
    return tokens_of(staff)[0], raw


def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


def api_status(client, raw: str) -> int:
    """What the API answers the token now (listSites: any staff member may call it)."""
    return client.get("/api/v1/sites", headers=bearer(raw)).status_code


def actions(**where) -> list[str]:
    return [e.action for e in db.session.execute(
        db.select(AuditEvent).filter_by(**where).order_by(AuditEvent.id)).scalars()]


def stored(model, id_):
    """The row as the database has it now, after the requests' own commits."""
    db.session.expire_all()
    return db.session.get(model, id_)


def by_admin(east) -> dict:
    return {"actor": Actor.of(east["ada"]), "now": utcnow()}


# --- Revoking a token ---------------------------------------------------------------------

def test_a_revoked_token_is_refused_at_its_next_call_and_its_socket_is_cut_at_once(
        client, socket_client, east):
    token, raw = a_token(east["nina"])
    _other, other_raw = a_token(east["nina"])
    integration = socket_client(auth={"token": raw})
    second = socket_client(auth={"token": other_raw})
    assert integration.is_connected() and second.is_connected()

    revoke_token(token, **by_admin(east))

    assert not integration.is_connected()
    assert second.is_connected()  # the person's other token still stands
    assert api_status(client, raw) == 401 and api_status(client, other_raw) == 200
    assert not socket_client(auth={"token": raw}).is_connected()
    assert actions(entity="api_token", entity_id=str(token.id)) == ["token_created",
                                                                     "token_revoked"]
    revoked_at = stored(ApiToken, token.id).revoked_at
    revoke_token(stored(ApiToken, token.id), **by_admin(east))  # again: nothing changes
    assert stored(ApiToken, token.id).revoked_at == revoked_at


# --- Deactivating, deleting --------------------------------------------------------------

def test_deactivating_ends_every_login_and_token_and_cuts_every_socket(
        client, auth, socket_client, east):
    nina = east["nina"]
    token, raw = a_token(nina)
    auth.login("nina")
    tablet = socket_client(auth={"view": "floor"})
    integration = socket_client(auth={"token": raw})
    _adas, adas_raw = a_token(east["ada"])
    colleague = socket_client(auth={"token": adas_raw})
    assert tablet.is_connected() and integration.is_connected()

    deactivate_staff(nina, **by_admin(east))

    assert not tablet.is_connected() and not integration.is_connected()
    assert colleague.is_connected()
    assert client.get("/sites/east/floor").headers["Location"].startswith("/login")
    assert api_status(client, raw) == 401
    assert stored(ApiToken, token.id).revoked_at is not None
    (login,) = db.session.execute(db.select(LoginSession).filter_by(staff_id=nina.id)).scalars()
    assert login.ended_at is not None
    assert auth.login("nina").status_code != 302
    assert "staff_deactivated" in actions(entity="staff", entity_id=str(nina.id))
    assert actions(entity="login_session", entity_id=str(login.id))[-1] == "logout"
    # The roles stay, for the day they come back.
    assert stored(Staff, nina.id).roles_at(east["site"].id) == {"nurse"}


def test_deleting_someone_no_record_names_removes_them(client, socket_client, east):
    mistake = make_staff(east["site"], role="nurse", username="nnia")
    token, raw = a_token(mistake)
    staff_id, token_id = mistake.id, token.id
    integration = socket_client(auth={"token": raw})

    assert delete_staff(mistake, **by_admin(east)) is True

    assert not integration.is_connected()
    assert api_status(client, raw) == 401
    assert stored(Staff, staff_id) is None and stored(ApiToken, token_id) is None
    (deleted,) = db.session.execute(db.select(AuditEvent).filter_by(
        action="staff_deleted")).scalars()
    assert deleted.entity_id == str(staff_id) and deleted.staff_id == east["ada"].id
    assert deleted.detail == {"roles": [[east["site"].id, "nurse"]], "row_kept": False}


def test_deleting_someone_on_the_records_keeps_their_name_and_nothing_to_sign_in_with(
        client, auth, socket_client, east):
    nina = east["nina"]
    auth.login("nina")  # the audit trail names her from now on
    tablet = socket_client(auth={"view": "floor"})
    _token, raw = a_token(nina)

    assert delete_staff(nina, **by_admin(east)) is False

    assert not tablet.is_connected()
    assert client.get("/sites/east/floor").headers["Location"].startswith("/login")
    assert api_status(client, raw) == 401
    kept = stored(Staff, nina.id)
    assert not kept.active and kept.roles == [] and kept.pin_hash is None
    assert auth.login("nina", PASSWORD).status_code != 302
    assert actions(staff_id=nina.id)[0] == "login"


def test_nobody_deactivates_or_deletes_themselves(east):
    ada = east["ada"]
    for take_away in (deactivate_staff, delete_staff):
        with pytest.raises(Conflict):
            take_away(ada, actor=Actor.of(ada), now=utcnow())
    assert stored(Staff, ada.id).active


# --- Removing a role ------------------------------------------------------------------------

def test_removing_a_role_cuts_the_sockets_and_the_last_at_a_site_ends_the_access(
        client, auth, socket_client, east):
    site, west = east["site"], east["west"]
    sam = make_staff(username="sam", roles=[(site, "nurse"), (site, "supervisor"),
                                            (west, "nurse")])
    token, raw = a_token(sam)
    auth.login("sam")
    tablet = socket_client(auth={"view": "floor"})
    integration = socket_client(auth={"token": raw})

    remove_role(sam, site, "supervisor", **by_admin(east))

    # Its rooms followed the role it had: it reconnects into those the roles kept allow.
    assert not tablet.is_connected() and not integration.is_connected()
    assert client.get("/sites/east/floor").status_code == 200
    assert api_status(client, raw) == 200
    tablet = socket_client(auth={"view": "floor"})
    assert tablet.is_connected()

    remove_role(stored(Staff, sam.id), site, "nurse", **by_admin(east))

    assert not tablet.is_connected()
    assert client.get("/sites/east/floor").headers["Location"].startswith("/login")
    assert api_status(client, raw) == 401
    assert stored(ApiToken, token.id).revoked_at is not None
    assert stored(Staff, sam.id).site_ids == {west.id}
    assert actions(action="role_removed", entity_id=str(sam.id)) == ["role_removed"] * 2
    with pytest.raises(NotFound):
        remove_role(stored(Staff, sam.id), site, "nurse", **by_admin(east))


# --- The CLI --------------------------------------------------------------------------------

def test_token_revoke_is_told_which_one_or_whose(runner, socket_client, east):
    token, raw = a_token(east["nina"])
    a_token(east["nina"])
    integration = socket_client(auth={"token": raw})
    for args in ([], ["--id", str(token.id), "--user", "nina"]):
        result = runner.invoke(args=["srs", "token", "revoke", *args])
        assert result.exit_code != 0 and "Say which" in result.output

    one = runner.invoke(args=["srs", "token", "revoke", "--id", str(token.id)])
    assert one.exit_code == 0, one.output
    assert one.output == f"Token {token.id} ({token.prefix}) of nina revoked.\n"
    assert not integration.is_connected()
    again = runner.invoke(args=["srs", "token", "revoke", "--id", str(token.id)])
    assert "was already revoked" in again.output

    every = runner.invoke(args=["srs", "token", "revoke", "--user", "nina"])
    assert every.output == "Revoked 1 token of nina.\n"
    assert all(t.revoked_at for t in tokens_of(stored(Staff, east["nina"].id)))
    unknown = runner.invoke(args=["srs", "token", "revoke", "--id", "999999"])
    assert unknown.exit_code != 0 and "no API token with id 999999" in unknown.output


def test_token_list_shows_ids_and_prefixes_never_the_tokens(runner, east):
    token, raw = a_token(east["nina"])
    runner.invoke(args=["srs", "token", "revoke", "--id", str(token.id)])
    _kept, kept_raw = a_token(east["nina"])
    result = runner.invoke(args=["srs", "token", "list", "nina"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{_kept.id}\t{kept_raw[:10]}\t") and "revoked -" in lines[0]
    assert lines[1].startswith(f"{token.id}\t") and "revoked -" not in lines[1]
    assert raw not in result.output and kept_raw not in result.output


def test_user_deactivate_delete_and_remove_role(runner, auth, socket_client, east):
    make_staff(username="sam", roles=[(east["site"], "nurse"), (east["site"], "reviewer")])
    auth.login("sam")
    tablet = socket_client(auth={"view": "floor"})

    result = runner.invoke(args=["srs", "user", "remove-role", "sam", "east", "reviewer"])
    assert result.output == "sam is no longer reviewer at east (still nurse).\n"
    assert not tablet.is_connected()
    result = runner.invoke(args=["srs", "user", "remove-role", "sam", "east", "nurse"])
    assert result.output == ("sam is no longer nurse at east; their logins ended and their "
                             "tokens were revoked.\n")
    for args, message in ((["remove-role", "sam", "east", "nurse"], "sam is not nurse at east"),
                          (["remove-role", "sam", "north", "nurse"], "No site has the slug"),
                          (["deactivate", "ghost"], "No staff member is called 'ghost'")):
        result = runner.invoke(args=["srs", "user", *args])
        assert result.exit_code != 0 and message in result.output, args

    assert runner.invoke(args=["srs", "user", "deactivate", "nina"]).output == \
        "Deactivated nina.\n"
    assert runner.invoke(args=["srs", "user", "deactivate", "nina"]).output == \
        "nina was already inactive.\n"
    assert not stored(Staff, east["nina"].id).active
    assert runner.invoke(args=["srs", "user", "delete", "wes"]).output == "Deleted wes.\n"
    kept = runner.invoke(args=["srs", "user", "delete", "sam"]).output
    assert kept.startswith("Deleted sam's access") and "stays on the records" in kept
    assert db.session.scalars(db.select(Staff.username).order_by(Staff.username)).all() == \
        ["ada", "nina", "sam"]


# --- The API: listApiTokens, revokeApiToken -------------------------------------------------

def test_a_person_lists_and_revokes_their_own_tokens(client, socket_client, east):
    _first, first_raw = a_token(east["nina"])
    second, second_raw = a_token(east["nina"])
    integration = socket_client(auth={"token": second_raw})

    listed = client.get("/api/v1/tokens", headers=bearer(first_raw))
    assert listed.status_code == 200, listed.get_data(as_text=True)
    body = listed.get_json()
    assert [t["id"] for t in body] == [second.id, _first.id]
    assert set(body[0]) == {"id", "staff_id", "prefix", "created_at", "last_used_at",
                            "revoked_at"}
    assert body[0]["prefix"] == second_raw[:10] and body[0]["revoked_at"] is None
    assert first_raw not in listed.get_data(as_text=True)
    assert second_raw not in listed.get_data(as_text=True)

    revoked = client.post(f"/api/v1/tokens/{second.id}/revoke", headers=bearer(first_raw))
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    assert not integration.is_connected()
    assert api_status(client, second_raw) == 401
    again = client.post(f"/api/v1/tokens/{second.id}/revoke", headers=bearer(first_raw))
    assert again.get_json()["revoked_at"] == revoked.get_json()["revoked_at"]
    after = client.get("/api/v1/tokens", headers=bearer(first_raw)).get_json()
    assert [t["id"] for t in after] == [_first.id, second.id]  # those in use first


def test_an_admin_manages_the_tokens_of_their_sites_staff_and_nobody_elses(client, east):
    ninas, ninas_raw = a_token(east["nina"])
    adas, adas_raw = a_token(east["ada"])
    _wess, wess_raw = a_token(east["wes"])

    of_nina = client.get("/api/v1/tokens?username=nina", headers=bearer(adas_raw))
    assert [t["id"] for t in of_nina.get_json()] == [ninas.id]
    # Another site's admin, and a nurse, get what they would for nobody at all.
    assert_api_error(client.get("/api/v1/tokens?username=nina", headers=bearer(wess_raw)), 404)
    assert_api_error(client.get("/api/v1/tokens?username=ada", headers=bearer(ninas_raw)), 404)
    assert_api_error(client.get("/api/v1/tokens?username=ghost", headers=bearer(adas_raw)), 404)
    assert_api_error(client.post(f"/api/v1/tokens/{ninas.id}/revoke",
                                 headers=bearer(wess_raw)), 404)
    assert_api_error(client.post(f"/api/v1/tokens/{adas.id}/revoke",
                                 headers=bearer(ninas_raw)), 404)
    assert_api_error(client.post("/api/v1/tokens/999999/revoke", headers=bearer(adas_raw)), 404)
    assert api_status(client, adas_raw) == 200

    revoked = client.post(f"/api/v1/tokens/{ninas.id}/revoke", headers=bearer(adas_raw))
    assert revoked.status_code == 200
    assert api_status(client, ninas_raw) == 401
    (event,) = db.session.execute(db.select(AuditEvent).filter_by(
        action="token_revoked")).scalars()
    assert event.staff_id == east["ada"].id and event.entity_id == str(ninas.id)


def test_the_openapi_document_names_the_token_operations(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operations = {op.get("operationId"): path for path, item in spec["paths"].items()
                  for op in item.values() if isinstance(op, dict)}
    assert operations["listApiTokens"] == "/api/v1/tokens"
    assert operations["revokeApiToken"] == "/api/v1/tokens/{token_id}/revoke"


# --- The tokens page: /account/tokens --------------------------------------------------------

def _rows(page: str, testid: str) -> list[int]:
    """The token ids of the page's rows of one kind (own-token, staff-token), in order."""
    return [int(part.split('"', 1)[0]) for part in
            page.split(f'data-testid="{testid}" data-token-id="')[1:]]


def test_a_person_creates_sees_once_and_revokes_their_own_token_on_the_page(
        client, auth, socket_client, east):
    auth.login("nina")
    empty = client.get("/account/tokens").get_data(as_text=True)
    assert "You have no API tokens" in empty and 'data-testid="site-tokens"' not in empty

    created = auth.post("/account/tokens")
    assert created.status_code == 200
    page = created.get_data(as_text=True)
    raw = page.split('data-testid="new-token"')[0].rsplit('value="', 1)[1].split('"')[0]
    assert raw.startswith("srs_") and api_status(client, raw) == 200
    integration = socket_client(auth={"token": raw})
    (token,) = tokens_of(east["nina"])
    assert _rows(page, "own-token") == [token.id]

    again = client.get("/account/tokens").get_data(as_text=True)
    assert raw not in again and token.prefix in again  # shown that once, then its prefix
    row = again.split(f'id="token-{token.id}"')[1].split("</tr>")[0]
    assert "never" not in row  # created, and last used by the API call above: both dated
    revoked = auth.post(f"/account/tokens/{token.id}/revoke")
    assert revoked.status_code == 302
    assert revoked.headers["Location"].endswith(f"/account/tokens#token-{token.id}")
    assert api_status(client, raw) == 401 and not integration.is_connected()
    after = client.get("/account/tokens").get_data(as_text=True)
    assert "revoked " in after and 'data-testid="revoke-token"' not in after
    events = db.session.execute(db.select(AuditEvent).filter_by(
        entity="api_token", entity_id=str(token.id)).order_by(AuditEvent.id)).scalars().all()
    assert [(e.action, e.staff_id) for e in events] == [("token_created", east["nina"].id),
                                                       ("token_revoked", east["nina"].id)]


def test_a_site_admin_sees_and_revokes_their_staffs_tokens_and_nobody_elses(
        client, auth, east):
    ninas, ninas_raw = a_token(east["nina"])
    adas, _adas_raw = a_token(east["ada"])
    wess, wess_raw = a_token(east["wes"])

    auth.login("ada")
    page = client.get("/account/tokens").get_data(as_text=True)
    assert _rows(page, "own-token") == [adas.id]
    assert _rows(page, "staff-token") == [ninas.id]  # Wes works at West End only
    assert "Tokens of East Side's staff" in page and 'id="site-east"' in page
    assert auth.post(f"/account/tokens/{ninas.id}/revoke").status_code == 302
    assert api_status(client, ninas_raw) == 401
    assert auth.post(f"/account/tokens/{wess.id}/revoke").status_code == 404
    assert api_status(client, wess_raw) == 200
    (event,) = db.session.execute(db.select(AuditEvent).filter_by(
        action="token_revoked")).scalars()
    assert event.staff_id == east["ada"].id and event.entity_id == str(ninas.id)

    # A nurse sees their own tokens only, and may revoke nobody else's.
    auth.login("nina")
    page = client.get("/account/tokens").get_data(as_text=True)
    assert _rows(page, "own-token") == [ninas.id] and _rows(page, "staff-token") == []
    assert auth.post(f"/account/tokens/{adas.id}/revoke").status_code == 404
    assert stored(ApiToken, adas.id).revoked_at is None
