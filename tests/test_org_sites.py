"""An organisation admin runs sites without a shell: creates a site with its booths and
first admin, renames it, moves its clock, and passes the flag on; the CLI makes the first
organisation admin and a bare site."""

import re
from datetime import UTC, datetime

import pytest
from conftest import csrf_token
from factories import ACTOR, PASSWORD, PIN, make_site, make_staff
from routes import assert_api_error, bearer

from srs.auth import service as auth
from srs.auth.models import AuditEvent, Role, Staff
from srs.booths.models import Booth
from srs.errors import Conflict, Invalid
from srs.extensions import db
from srs.org import service
from srs.sites.models import TIMERS, Site

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def make_org_admin(username: str = "olu", *, roles=()) -> Staff:
    return auth.create_staff(username, display_name=username.title(), password=PASSWORD,
                             pin=PIN, roles=list(roles), actor=ACTOR, org_admin=True)


def events(action: str) -> list[AuditEvent]:
    return list(db.session.execute(db.select(AuditEvent).filter_by(action=action)
                                   .order_by(AuditEvent.id)).scalars())


def new_site(**overrides):
    fields = {"name": "North", "slug": "north", "timezone": "America/Winnipeg",
              "booths": {"injection": 3, "inhalation": 2},
              "admin": {"username": "nadia", "display_name": "Nadia K"}}
    return service.create_site(**{**fields, **overrides}, actor=ACTOR, now=NOW)


# --- The service ------------------------------------------------------------------------------

def test_a_new_site_has_its_booths_default_settings_and_a_first_admin_who_can_sign_in(
        app, auth):
    created = new_site()
    site = created.site
    booths = db.session.execute(db.select(Booth).filter_by(site_id=site.id)
                                .order_by(Booth.position)).scalars().all()
    assert [(b.label, b.kind) for b in booths] == [
        ("B1", "injection"), ("B2", "injection"), ("B3", "injection"),
        ("S1", "inhalation"), ("S2", "inhalation")]
    assert site.timezone == "America/Winnipeg"
    assert site.booth_time_limit_seconds == TIMERS["booth_time_limit_seconds"].default
    assert created.admin.roles_at(site.id) == {"admin"}
    assert created.admin.display_name == "Nadia K"
    assert re.fullmatch(r"[0-9]{6}", created.pin)
    assert auth.login("nadia", created.password).status_code == 302
    [event] = events("site_created")
    assert event.detail == {"timezone": "America/Winnipeg",
                            "booths": {"injection": 3, "inhalation": 2},
                            "admin_id": created.admin.id, "added_admin_id": None}


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"slug": "east"}, "slug", "already the slug of East"),
    ({"slug": "North End"}, "slug", "lower-case letters"),
    ({"slug": "north-"}, "slug", "lower-case letters"),
    ({"slug": "x" * 61}, "slug", "lower-case letters"),
    ({"timezone": "Mars/Olympus"}, "timezone", "not a known time zone"),
    ({"timezone": "/etc/passwd"}, "timezone", "not a known time zone"),
    ({"name": "  "}, "name", "name of 1 to 120"),
    ({"booths": {"injection": 51}}, "booths", "0 to 50 injection"),
])
def test_a_bad_site_is_refused_by_field_and_nothing_is_made(app, fields, field, message):
    make_site(name="East", slug="east")
    with pytest.raises(Invalid) as refused:
        new_site(**fields)
    assert message in str(refused.value.errors[field])
    assert db.session.execute(db.select(Site).filter_by(slug="north")).first() is None
    assert not events("site_created")


def test_a_taken_username_for_the_first_admin_makes_no_site(app):
    make_staff(username="nadia")
    with pytest.raises(Invalid) as refused:
        new_site()
    assert "already taken" in str(refused.value.errors["admin"]["username"])
    assert db.session.execute(db.select(Site).filter_by(slug="north")).first() is None


def test_renaming_and_moving_a_site_records_each_old_and_new_value(app):
    site = make_site(name="East", slug="east")
    service.update_site(site, {"name": "East End", "timezone": "America/Vancouver"},
                        actor=ACTOR, now=NOW)
    assert (site.name, site.timezone) == ("East End", "America/Vancouver")
    [event] = events("site_updated")
    assert event.detail == {"name": {"from": "East", "to": "East End"},
                            "timezone": {"from": "America/Toronto", "to": "America/Vancouver"}}
    service.update_site(site, {"name": "East End"}, actor=ACTOR, now=NOW)  # no change
    assert len(events("site_updated")) == 1
    with pytest.raises(Invalid) as refused:
        service.update_site(site, {"timezone": "Nowhere"}, actor=ACTOR, now=NOW)
    assert "timezone" in refused.value.errors


def test_the_flag_passes_on_but_never_from_oneself_nor_from_the_last(app):
    olu = make_org_admin("olu")
    nina = make_staff(username="nina")
    service.grant_org_admin(nina, actor=auth.Actor.of(olu), now=NOW)
    assert nina.org_admin
    with pytest.raises(Conflict, match="your own"):
        service.remove_org_admin(olu, actor=auth.Actor.of(olu), now=NOW)
    service.remove_org_admin(olu, actor=auth.Actor.of(nina), now=NOW)
    assert not olu.org_admin
    with pytest.raises(Conflict, match="last organisation admin"):
        service.remove_org_admin(nina, actor=ACTOR, now=NOW)
    with pytest.raises(Conflict, match="last organisation admin"):
        auth.deactivate_staff(nina, actor=ACTOR, now=NOW)
    assert nina.org_admin and nina.active
    assert [e.entity_id for e in events("org_admin_granted")] == [str(olu.id), str(nina.id)]
    assert [e.entity_id for e in events("org_admin_removed")] == [str(olu.id)]


# --- The CLI ----------------------------------------------------------------------------------

def test_cli_site_create_makes_a_site_and_says_so(runner, app):
    result = runner.invoke(args=["srs", "site", "create", "north", "--name", "North",
                                 "--timezone", "America/Halifax"])
    assert result.exit_code == 0, result.output
    assert "Created site 'north': North, time zone America/Halifax" in result.output
    assert "--role admin --site north" in result.output
    site = db.session.execute(db.select(Site).filter_by(slug="north")).scalar_one()
    assert site.timezone == "America/Halifax"
    assert events("site_created")[0].actor == "cli"


@pytest.mark.parametrize(("args", "message"), [
    (["north", "--name", "North", "--timezone", "Atlantis/Deep"], "not a known time zone"),
    (["North!", "--name", "North", "--timezone", "UTC"], "lower-case letters"),
    (["east", "--name", "North", "--timezone", "UTC"], "already the slug of East"),
])
def test_cli_site_create_refuses_with_a_clear_message(runner, app, args, message):
    make_site(name="East", slug="east")
    result = runner.invoke(args=["srs", "site", "create", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert db.session.execute(db.select(db.func.count(Site.id))).scalar() == 1


def test_cli_user_create_org_admin_needs_no_site(runner, app, client, auth):
    result = runner.invoke(args=["srs", "user", "create", "olu", "--org-admin"])
    assert result.exit_code == 0, result.output
    assert "Created olu (organisation admin)." in result.output
    password = result.output.split("Password (shown once): ")[1].strip()
    staff = auth_staff("olu")
    assert staff.org_admin and not staff.roles
    assert auth.login("olu", password).status_code == 302
    assert client.get("/admin/sites").status_code == 200


def test_cli_user_create_wants_a_role_and_site_or_the_flag(runner, app):
    make_site(slug="east")
    for args in (["nina"], ["nina", "--role", "nurse"], ["nina", "--site", "east"]):
        result = runner.invoke(args=["srs", "user", "create", *args])
        assert result.exit_code != 0
        assert "--role and --site" in result.output
    both = runner.invoke(args=["srs", "user", "create", "nina", "--role", "admin", "--site",
                               "east", "--org-admin"])
    assert "Created nina (admin at east, organisation admin)." in both.output


def auth_staff(username: str) -> Staff:
    return db.session.execute(db.select(Staff).filter_by(username=username)).scalar_one()


# --- The API ----------------------------------------------------------------------------------

CREATE = {"name": "North", "slug": "north", "timezone": "America/Winnipeg",
          "booths": {"injection": 2, "inhalation": 1},
          "admin": {"username": "nadia", "display_name": "Nadia K"}}


def test_api_create_site_answers_the_first_admins_sign_in_once(app, client, auth):
    headers = bearer(make_org_admin())
    response = client.post("/api/v1/sites", json=CREATE, headers=headers)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["site"]["slug"] == "north"
    assert body["admin"]["username"] == "nadia" and body["admin"]["roles"] == ["admin"]
    assert auth.login("nadia", body["password"]).status_code == 302
    listed = client.get("/api/v1/sites", headers=headers).get_json()
    assert [s["slug"] for s in listed] == ["north"]  # every site, though no role at it
    again = client.post("/api/v1/sites", json={**CREATE, "admin": {"username": "other"}},
                        headers=headers)
    assert "already the slug of North" in assert_api_error(again, 422, "slug")["errors"][
        "slug"][0]


def test_api_create_site_says_which_admin_field_is_wrong(app, client):
    make_staff(username="nadia")
    response = client.post("/api/v1/sites", json=CREATE, headers=bearer(make_org_admin()))
    assert assert_api_error(response, 422, "admin")["errors"]["admin"] == [
        "username: 'nadia' is already taken."]


def test_api_sites_are_for_organisation_admins_only(app, client):
    site = make_site(name="East", slug="east")
    admin = make_staff(site, role=Role.ADMIN)
    headers = bearer(admin)
    assert_api_error(client.post("/api/v1/sites", json=CREATE, headers=headers), 403)
    assert_api_error(client.patch(f"/api/v1/sites/{site.id}", json={"name": "Mine"},
                                  headers=headers), 403)
    assert site.name == "East"
    assert [s["slug"] for s in client.get("/api/v1/sites", headers=headers).get_json()] == [
        "east"]


def test_api_update_site_renames_and_moves_the_clock(app, client):
    site = make_site(name="East", slug="east")
    response = client.patch(f"/api/v1/sites/{site.id}",
                            json={"name": "East End", "timezone": "America/Vancouver"},
                            headers=bearer(make_org_admin()))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["timezone"] == "America/Vancouver"
    assert events("site_updated")[0].detail["name"] == {"from": "East", "to": "East End"}
    bad = client.patch(f"/api/v1/sites/{site.id}", json={"timezone": "Nowhere/Town"},
                       headers=bearer(make_org_admin("ola")))
    assert_api_error(bad, 422, "timezone")


def test_api_passes_the_flag_on_but_not_ones_own(app, client):
    olu = make_org_admin()
    nina = make_staff(username="nina")
    headers = bearer(olu)
    granted = client.put(f"/api/v1/org-admins/{nina.id}", headers=headers)
    assert granted.status_code == 200 and granted.get_json()["org_admin"] is True
    listed = client.get("/api/v1/org-admins", headers=headers).get_json()
    assert sorted(p["username"] for p in listed) == ["nina", "olu"]
    own = client.delete(f"/api/v1/org-admins/{olu.id}", headers=headers)
    assert "your own" in assert_api_error(own, 409)["message"]
    removed = client.delete(f"/api/v1/org-admins/{nina.id}", headers=headers)
    assert removed.status_code == 200 and removed.get_json()["org_admin"] is False
    assert_api_error(client.put(f"/api/v1/org-admins/{olu.id}", headers=bearer(nina)), 403)
    assert [e.actor for e in events("org_admin_removed")] == ["olu"]


# --- The pages --------------------------------------------------------------------------------

def test_an_org_admin_creates_a_site_on_the_page_and_its_admin_signs_in(app, client, auth):
    make_org_admin()
    assert auth.login("olu").status_code == 302
    form = {"name": "North", "slug": "North", "timezone": "America/Winnipeg",
            "injection_booths": "4", "inhalation_booths": "x", "admin_display_name": "Nadia K",
            "admin_username": "nadia"}
    refused = auth.post("/admin/sites", form)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "lower-case letters" in page and "Give 0 to 50 inhalation booths." in page
    assert 'value="Nadia K"' in page and 'value="North"' in page  # nothing typed is lost
    assert '<option value="America/Winnipeg" selected>' in page
    made = auth.post("/admin/sites", {**form, "slug": "north", "inhalation_booths": "1",
                                      "add_me": "true"})
    page = made.get_data(as_text=True)
    assert made.status_code == 200
    password = re.search(r'data-testid="admin-password">([^<]+)<', page).group(1)
    pin = re.search(r'data-testid="admin-pin">([0-9]{6})<', page).group(1)
    site = db.session.execute(db.select(Site).filter_by(slug="north")).scalar_one()
    assert auth_staff("olu").roles_at(site.id) == {"admin"}  # "make me an admin too"
    listing = client.get("/admin/sites").get_data(as_text=True)
    assert 'data-slug="north"' in listing and "4 injection, 1 inhalation" in listing
    assert password not in listing and pin not in listing  # shown once
    auth.logout()
    assert auth.login("nadia", password).status_code == 302
    assert client.get("/sites/north/admin/staff").status_code == 200


def test_an_org_admin_renames_a_site_and_a_bad_zone_keeps_the_name_typed(app, client, auth):
    make_site(name="East", slug="east")
    make_org_admin()
    auth.login("olu")
    bad = auth.post("/admin/sites/east", {"name": "East End", "timezone": "Nowhere"})
    assert bad.status_code == 422
    assert "not a known time zone" in bad.get_data(as_text=True)
    assert 'value="East End"' in bad.get_data(as_text=True)
    saved = auth.post("/admin/sites/east", {"name": "East End", "timezone": "Europe/Dublin"})
    assert saved.status_code == 200 and "East End is saved." in saved.get_data(as_text=True)
    site = db.session.execute(db.select(Site).filter_by(slug="east")).scalar_one()
    assert (site.name, site.timezone) == ("East End", "Europe/Dublin")


def test_a_zone_the_list_lacks_stays_chosen_on_the_edit_page(app, client, auth):
    site = make_site(name="East", slug="east")
    site.timezone = "Etc/GMT+5"  # as the settings API may set it
    make_org_admin()
    auth.login("olu")
    page = client.get("/admin/sites/east").get_data(as_text=True)
    assert '<option value="Etc/GMT+5" selected>' in page
    assert auth.post("/admin/sites/east", {"name": "East End", "timezone": "Etc/GMT+5"}
                     ).status_code == 200
    assert db.session.execute(db.select(Site.timezone).filter_by(slug="east")).scalar_one() \
        == "Etc/GMT+5"


def test_org_admins_are_listed_granted_and_removed_on_their_page(app, client, auth):
    olu = make_org_admin()
    make_staff(username="nina")
    auth.login("olu")
    page = client.get("/admin/org-admins").get_data(as_text=True)
    assert 'data-username="olu"' in page and "remove-org-admin" not in page  # not oneself
    unknown = auth.post("/admin/org-admins", {"username": "ghost"})
    assert unknown.status_code == 404
    assert "Nobody has the username" in unknown.get_data(as_text=True)
    granted = auth.post("/admin/org-admins", {"username": "nina"})
    assert "nina is an organisation admin." in granted.get_data(as_text=True)
    nina = auth_staff("nina")
    assert nina.org_admin
    own = auth.post(f"/admin/org-admins/{olu.id}/remove")
    assert own.status_code == 409 and auth_staff("olu").org_admin
    removed = auth.post(f"/admin/org-admins/{nina.id}/remove")
    assert removed.status_code == 200 and not auth_staff("nina").org_admin


def test_a_site_admin_does_not_reach_the_organisation_pages(app, client, auth):
    site = make_site(name="East", slug="east")
    make_staff(site, role=Role.ADMIN, username="sam")
    auth.login("sam")
    assert client.get("/admin/sites").status_code == 403
    response = client.post("/admin/sites", data={"csrf_token": csrf_token(client),
                                                 "name": "Mine", "slug": "mine",
                                                 "timezone": "UTC", "injection_booths": "1",
                                                 "inhalation_booths": "0",
                                                 "admin_username": "mine"})
    assert response.status_code == 403
    assert db.session.execute(db.select(Site).filter_by(slug="mine")).first() is None


def test_a_new_site_is_on_the_dashboard_of_a_supervisor_of_both(app, client, auth):
    east = make_site(name="East", slug="east")
    north = new_site().site
    make_staff(roles=[(east, "supervisor"), (north, "supervisor")], username="sup")
    auth.login("sup")
    page = client.get("/supervise").get_data(as_text=True)
    assert "East" in page and "North" in page
    assert "S2" in page  # the new site's board


def test_an_org_admin_without_a_site_finds_the_organisation_pages_from_home(app, client,
                                                                            auth):
    make_org_admin()
    auth.login("olu")
    home = client.get("/").get_data(as_text=True)
    assert 'href="/admin/sites"' in home and 'href="/admin/org-admins"' in home
    for href in ("/admin/sites", "/admin/org-admins"):
        assert client.get(href).status_code == 200


def test_a_supervisor_of_one_site_is_given_a_role_at_a_new_one_and_sees_both(app, client, auth):
    east = make_site(name="East", slug="east")
    north = new_site().site
    make_staff(east, role=Role.SUPERVISOR, username="sup")
    make_org_admin()
    auth.login("olu")
    unknown = auth.post(f"/admin/sites/{north.slug}/roles", {"username": "ghost",
                                                             "role": "supervisor"})
    assert unknown.status_code == 404 and 'value="ghost"' in unknown.get_data(as_text=True)
    given = auth.post(f"/admin/sites/{north.slug}/roles", {"username": "sup",
                                                           "role": "supervisor"})
    assert given.status_code == 200
    assert "is now supervisor at North" in given.get_data(as_text=True)
    again = auth.post(f"/admin/sites/{north.slug}/roles", {"username": "sup",
                                                           "role": "supervisor"})
    assert again.status_code == 409 and "already supervisor" in again.get_data(as_text=True)
    sup = auth_staff("sup")
    assert sup.roles_at(east.id) == {"supervisor"} and sup.roles_at(north.id) == {"supervisor"}
    (added,) = db.session.execute(db.select(AuditEvent).filter_by(
        action="role_added", entity_id=str(sup.id), site_id=north.id)).scalars()
    assert added.detail == {"role": "supervisor"}
    auth.logout()
    auth.login("sup")
    page = client.get("/supervise").get_data(as_text=True)
    assert "East" in page and "North" in page
