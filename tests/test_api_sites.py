"""The sites API: listing, the board, settings with their ranges, booth housekeeping, tokens."""

import base64
import json

import pytest
from factories import ACTOR, PASSWORD, make_booth, make_site, make_staff
from routes import api_body, assert_api_error, bearer, make_floor, routes, url_of

from srs.auth.models import ApiToken, AuditEvent, Role
from srs.auth.service import issue_token
from srs.booths.models import Booth
from srs.common import utcnow
from srs.extensions import db
from srs.sites.models import COMPASSION_SETTINGS, HAT_SETTINGS, TIMER_SETTINGS, Site

OPERATIONS = {"listSites", "getSiteBoard", "getSiteSettings", "updateSiteSettings",
              "setBoothOutOfService"}


@pytest.fixture
def site(app):
    return make_site(name="East", slug="east")


@pytest.fixture
def admin(site):
    return make_staff(site, role=Role.ADMIN)


def settings_url(site) -> str:
    return f"/api/v1/sites/{site.id}/settings"


def out_of_service_url(site, booth) -> str:
    return f"/api/v1/sites/{site.id}/booths/{booth.id}/out-of-service"


def stored(model, id_):
    """The row as the database has it now, after the requests' own commits."""
    db.session.rollback()
    return db.session.get(model, id_)


# --- listSites, getSiteBoard ----------------------------------------------------------------

def test_list_sites_shows_only_the_token_owners_sites(client):
    north, south = make_site(name="North"), make_site(name="South")
    make_site(name="Elsewhere")
    staff = make_staff(roles=[(south, Role.NURSE), (north, Role.ADMIN), (north, Role.NURSE)])
    response = client.get("/api/v1/sites", headers=bearer(staff))
    assert response.status_code == 200
    assert [(s["id"], s["name"]) for s in response.get_json()] == [
        (north.id, "North"), (south.id, "South")]


def test_list_sites_is_empty_for_staff_without_a_role(client, site):
    response = client.get("/api/v1/sites", headers=bearer(make_staff()))
    assert response.status_code == 200
    assert response.get_json() == []


def test_board_lists_booths_in_floor_order_with_their_state(client, site):
    make_booth(site, label="B3", position=2)
    make_booth(site, label="B1", position=0, out_of_service_reason="Needle bin full")
    make_booth(site, label="S1", position=1, kind="inhalation")
    make_booth(make_site(), label="B9", position=0)  # another site's booth
    response = client.get(f"/api/v1/sites/{site.id}/board",
                          headers=bearer(make_staff(site, role=Role.NURSE)))
    assert response.status_code == 200, response.get_data(as_text=True)
    board = response.get_json()
    assert board["site"]["slug"] == "east"
    assert [(b["label"], b["kind"], b["state"], b["out_of_service_reason"])
            for b in board["booths"]] == [
        ("B1", "injection", "out_of_service", "Needle bin full"),
        ("S1", "inhalation", "available", None),
        ("B3", "injection", "available", None),
    ]


# --- getSiteSettings, updateSiteSettings ----------------------------------------------------

def test_an_admin_reads_every_setting(client, site, admin):
    response = client.get(settings_url(site), headers=bearer(admin))
    assert response.status_code == 200
    settings = response.get_json()
    for setting in TIMER_SETTINGS:
        assert settings[setting.name] == setting.default
    assert settings["timezone"] == "America/Toronto"
    assert settings["client_code_pattern"]


@pytest.mark.parametrize("role", [r for r in Role if r != Role.ADMIN])
def test_settings_are_for_admins_only(client, site, role):
    headers = bearer(make_staff(site, role=role))
    assert_api_error(client.get(settings_url(site), headers=headers), 403)
    refused = client.patch(settings_url(site), headers=headers, json={"lock_after_seconds": 60})
    assert_api_error(refused, 403)
    assert stored(Site, site.id).lock_after_seconds == 300


@pytest.mark.parametrize("setting", TIMER_SETTINGS, ids=lambda s: s.name)
@pytest.mark.parametrize("side", ["below the minimum", "above the maximum"])
def test_a_timer_outside_its_range_is_refused(client, site, admin, setting, side):
    value = setting.minimum - 1 if side == "below the minimum" else setting.maximum + 1
    response = client.patch(settings_url(site), headers=bearer(admin),
                            json={setting.name: value})
    body = assert_api_error(response, 422, setting.name)
    assert f"between {setting.minimum} and {setting.maximum}" in body["errors"][setting.name][0]
    assert getattr(stored(Site, site.id), setting.name) == setting.default


@pytest.mark.parametrize("setting", TIMER_SETTINGS, ids=lambda s: s.name)
@pytest.mark.parametrize("limit", ["minimum", "maximum"])
def test_a_timer_accepts_exactly_its_limits(client, site, admin, setting, limit):
    value = getattr(setting, limit)
    response = client.patch(settings_url(site), headers=bearer(admin),
                            json={setting.name: value})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()[setting.name] == value
    assert getattr(stored(Site, site.id), setting.name) == value


@pytest.mark.parametrize("setting", TIMER_SETTINGS, ids=lambda s: s.name)
@pytest.mark.parametrize("value", [300.5, 300.0, "300", True, None, [300]], ids=repr)
def test_a_timer_takes_only_a_whole_number(client, site, admin, setting, value):
    response = client.patch(settings_url(site), headers=bearer(admin),
                            json={setting.name: value})
    assert_api_error(response, 422, setting.name)
    assert getattr(stored(Site, site.id), setting.name) == setting.default


def test_an_unknown_field_is_refused_by_name_and_nothing_changes(client, site, admin):
    response = client.patch(settings_url(site), headers=bearer(admin),
                            json={"lock_after_seconds": 600, "lock_after_minutes": 10})
    assert_api_error(response, 422, "lock_after_minutes")
    assert stored(Site, site.id).lock_after_seconds == 300


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"json": {}}, "_schema", "Give at least one setting to change."),
    # The body is required (the document says so): none at all is refused on the body.
    ({}, "_body", "Send a JSON object"),
    ({"data": "", "content_type": "application/json"}, "_body", "Send a JSON object"),
], ids=["empty object", "no body", "empty json"])
def test_an_empty_change_is_refused(client, site, admin, body, field, message):
    response = client.patch(settings_url(site), headers=bearer(admin), **body)
    errors = assert_api_error(response, 422, field)["errors"]
    assert message in json.dumps(errors)
    assert stored(Site, site.id).lock_after_seconds == 300


@pytest.mark.parametrize("field, value", [
    ("timezone", "Mars/Olympus_Mons"),
    ("timezone", ""),
    ("client_code_pattern", "([A-Z]{4}"),
    ("client_code_pattern", "[A-Z"),
    ("client_code_pattern", ""),
])
def test_a_bad_timezone_or_pattern_is_refused_on_its_field(client, site, admin, field, value):
    response = client.patch(settings_url(site), headers=bearer(admin), json={field: value})
    assert_api_error(response, 422, field)
    assert getattr(stored(Site, site.id), field) == getattr(site, field)


def test_an_update_persists_and_is_audited_with_from_and_to(client, site, admin):
    headers = bearer(admin)
    response = client.patch(settings_url(site), headers=headers, json={
        "lock_after_seconds": 600, "timezone": "America/Vancouver",
        "min_observation_seconds": 900})  # unchanged: not in the audit detail
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["lock_after_seconds"] == 600

    again = client.get(settings_url(site), headers=headers).get_json()
    assert (again["lock_after_seconds"], again["timezone"]) == (600, "America/Vancouver")
    events = db.session.execute(db.select(AuditEvent).filter_by(
        action="settings_updated")).scalars().all()
    assert len(events) == 1
    event = events[0]
    assert (event.staff_id, event.entity, event.entity_id, event.site_id) == (
        admin.id, "site", str(site.id), site.id)
    assert event.detail == {
        "lock_after_seconds": {"from": 300, "to": 600},
        "timezone": {"from": "America/Toronto", "to": "America/Vancouver"},
    }


# The HAT dosing-session settings (migration 0019): the API takes them with HAT_SETTINGS'
# ranges, the take-home switch as true or false, and keeps the pairs that bound each other
# in order.
SESSION_SETTINGS = ("hat_injection_window_minutes", "hat_aftercare_minutes",
                    "hat_aftercare_titration_minutes", "hat_poss_withhold", "hat_poss_console",
                    "hat_missed_hold_days", "hat_missed_retitrate_days",
                    "hat_take_home_max_days")


def test_the_hat_session_settings_are_read_and_changed_and_audited(client, site, admin):
    headers = bearer(admin)
    settings = client.get(settings_url(site), headers=headers).get_json()
    assert {name: settings[name] for name in SESSION_SETTINGS} == {
        name: HAT_SETTINGS[name][0] for name in SESSION_SETTINGS}
    assert settings["hat_take_home_allowed"] is False
    change = {"hat_injection_window_minutes": 10, "hat_aftercare_minutes": 120,
              "hat_aftercare_titration_minutes": 5, "hat_poss_withhold": 2,
              "hat_poss_console": 2, "hat_missed_hold_days": 1,
              "hat_missed_retitrate_days": 60, "hat_take_home_max_days": 7,
              "hat_take_home_allowed": True}
    response = client.patch(settings_url(site), headers=headers, json=change)
    assert response.status_code == 200, response.get_json()
    assert {name: response.get_json()[name] for name in change} == change
    event = db.session.execute(db.select(AuditEvent).filter_by(
        action="settings_updated")).scalar_one()
    assert event.detail == {name: {"from": settings[name], "to": value}
                            for name, value in change.items()}


@pytest.mark.parametrize("name", SESSION_SETTINGS)
@pytest.mark.parametrize("side", ["below", "above"])
def test_a_hat_session_setting_outside_its_range_is_refused(client, site, admin, name, side):
    default, low, high = HAT_SETTINGS[name]
    response = client.patch(settings_url(site), headers=bearer(admin),
                            json={name: low - 1 if side == "below" else high + 1})
    body = assert_api_error(response, 422, name)
    assert f"between {low} and {high}" in body["errors"][name][0]
    assert getattr(stored(Site, site.id), name) == default


@pytest.mark.parametrize("value", ["true", "yes", 1, None], ids=repr)
def test_take_home_is_true_or_false_only(client, site, admin, value):
    response = client.patch(settings_url(site), headers=bearer(admin),
                            json={"hat_take_home_allowed": value})
    assert_api_error(response, 422, "hat_take_home_allowed")
    assert stored(Site, site.id).hat_take_home_allowed is False


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"hat_poss_withhold": 3, "hat_poss_console": 2}, "hat_poss_console",
     "Must be at least the POSS score that withholds a dose (3)"),
    ({"hat_poss_console": 2}, "hat_poss_console",
     "Must be at least the POSS score that withholds a dose (3)"),
    ({"hat_poss_withhold": 4, "hat_poss_console": 3}, "hat_poss_console",
     "Must be at least the POSS score that withholds a dose (4)"),
    ({"hat_missed_hold_days": 6}, "hat_missed_retitrate_days",
     "Must be at least the missed days that hold dosing (6)"),
    ({"hat_missed_hold_days": 2, "hat_missed_retitrate_days": 1}, "hat_missed_retitrate_days",
     "Must be at least the missed days that hold dosing (2)"),
], ids=["both given", "console alone under the saved withhold", "both raised out of order",
        "hold alone over the saved re-titration", "re-titrate before hold"])
def test_settings_that_bound_each_other_must_stay_in_order(client, site, admin, change, field,
                                                           message):
    response = client.patch(settings_url(site), headers=bearer(admin), json=change)
    body = assert_api_error(response, 422, field)
    assert body["errors"][field][0].startswith(message)
    saved = stored(Site, site.id)
    assert (saved.hat_poss_withhold, saved.hat_poss_console, saved.hat_missed_hold_days,
            saved.hat_missed_retitrate_days) == (3, 4, 3, 5)


def test_the_drug_alert_settings_keep_their_ranges(client, site, admin):
    headers = bearer(admin)
    refused = client.patch(settings_url(site), headers=headers,
                           json={"cluster_trend_factor": 0.5, "cluster_window_seconds": 599})
    body = assert_api_error(refused, 422, "cluster_trend_factor", "cluster_window_seconds")
    assert body["errors"]["cluster_window_seconds"] == [
        "Must be between 600 and 604800 seconds."]
    accepted = client.patch(settings_url(site), headers=headers,
                            json={"cluster_trend_factor": 1.5, "alert_valid_for_days": 30})
    assert accepted.status_code == 200, accepted.get_json()
    assert (stored(Site, site.id).cluster_trend_factor,
            stored(Site, site.id).alert_valid_for_days) == (1.5, 30)


# --- Unknown sites, tokens, schemes ---------------------------------------------------------

@pytest.mark.parametrize("route", [r for r in routes() if r.is_api and "site_id" in r.arguments
                                   and r.method not in {"HEAD", "OPTIONS"}], ids=str)
def test_an_unknown_site_is_a_json_404(client, route):
    floor = make_floor()
    staff = make_staff(roles=[(floor.site, role.value) for role in Role])
    response = client.open(url_of(route, floor, site_id=9999), method=route.method,
                           headers=bearer(staff), json=api_body(route, floor))
    assert assert_api_error(response, 404)["code"] == "not_found"


@pytest.mark.parametrize("kind", ["revoked", "unknown"])
def test_a_revoked_or_unknown_token_is_refused(client, site, admin, kind):
    raw = issue_token(admin, actor=ACTOR)
    assert client.get("/api/v1/sites", headers={"Authorization": f"Bearer {raw}"}
                      ).status_code == 200
    if kind == "revoked":
        token = db.session.execute(db.select(ApiToken).filter_by(staff_id=admin.id)).scalar_one()
        token.revoked_at = utcnow()
        db.session.commit()
    else:
        raw = "srs_" + "A" * 43
    response = client.get("/api/v1/sites", headers={"Authorization": f"Bearer {raw}"})
    assert_api_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("scheme", ["Basic", "Token", "Bare token", "Bearer without a token",
                                    "Token in the query string"])
def test_only_the_bearer_scheme_is_accepted(client, site, admin, scheme):
    raw = issue_token(admin, actor=ACTOR)
    basic = base64.b64encode(f"{admin.username}:{PASSWORD}".encode()).decode()
    url, headers = "/api/v1/sites", {
        "Basic": {"Authorization": f"Basic {basic}"},
        "Token": {"Authorization": f"Token {raw}"},
        "Bare token": {"Authorization": raw},
        "Bearer without a token": {"Authorization": "Bearer "},
        "Token in the query string": {},
    }[scheme]
    if scheme == "Token in the query string":
        url += f"?access_token={raw}"
    assert_api_error(client.get(url, headers=headers), 401)


# --- setBoothOutOfService -------------------------------------------------------------------

@pytest.fixture
def nurse(site):
    return make_staff(site, role=Role.NURSE)


def test_a_reason_takes_a_booth_out_and_null_puts_it_back(client, site, nurse):
    booth = make_booth(site, label="B1")
    headers = bearer(nurse)
    out = client.put(out_of_service_url(site, booth), headers=headers,
                     json={"reason": "  Needle bin full "})
    assert out.status_code == 200, out.get_data(as_text=True)
    assert (out.get_json()["state"], out.get_json()["out_of_service_reason"]) == (
        "out_of_service", "Needle bin full")
    assert stored(Booth, booth.id).out_of_service_since is not None

    back = client.put(out_of_service_url(site, booth), headers=headers, json={"reason": None})
    assert back.status_code == 200
    assert (back.get_json()["state"], back.get_json()["out_of_service_reason"]) == (
        "available", None)
    assert stored(Booth, booth.id).out_of_service_since is None
    actions = db.session.execute(db.select(AuditEvent.action).filter_by(
        entity="booth", entity_id=str(booth.id), staff_id=nurse.id)).scalars().all()
    assert actions == ["booth_out_of_service", "booth_back_in_service"]


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 201},
                                  {"reason": 7}],
                         ids=["no reason", "empty", "blank", "too long", "not text"])
def test_a_booth_needs_a_real_reason(client, site, nurse, body):
    booth = make_booth(site, label="B1")
    response = client.put(out_of_service_url(site, booth), headers=bearer(nurse), json=body)
    assert_api_error(response, 422, "reason")
    assert stored(Booth, booth.id).out_of_service_reason is None


def test_an_unknown_field_beside_the_reason_is_refused(client, site, nurse):
    booth = make_booth(site, label="B1")
    response = client.put(out_of_service_url(site, booth), headers=bearer(nurse),
                          json={"reason": "Broken light", "until": "tomorrow"})
    assert_api_error(response, 422, "until")
    assert stored(Booth, booth.id).out_of_service_reason is None


def test_an_unknown_booth_is_a_404(client, site, nurse):
    response = client.put(f"/api/v1/sites/{site.id}/booths/9999/out-of-service",
                          headers=bearer(nurse), json={"reason": "Broken light"})
    assert assert_api_error(response, 404)["code"] == "not_found"


def test_a_booth_of_another_site_is_a_404(client, site):
    west = make_site(slug="west")
    west_booth = make_booth(west, label="W1")
    staff = make_staff(roles=[(site, Role.NURSE), (west, Role.NURSE)])
    response = client.put(out_of_service_url(site, west_booth), headers=bearer(staff),
                          json={"reason": "Broken light"})
    assert assert_api_error(response, 404)["code"] == "not_found"
    assert stored(Booth, west_booth.id).out_of_service_reason is None


# --- The OpenAPI document -------------------------------------------------------------------

HTTP_METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture
def spec(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return json.loads(response.get_data(as_text=True))


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield f"{method.upper()} {path}", operation


def test_the_openapi_document_names_the_operations(spec):
    ids = [op.get("operationId") for _, op in operations(spec)]
    assert OPERATIONS <= set(ids)
    assert len(ids) == len(set(ids)), "operationIds are unique"


def test_the_openapi_document_declares_bearer_auth_on_every_operation(spec):
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer"}
    for where, operation in operations(spec):
        # An operation open to the public (an anonymous drug report) says so: no security.
        expected = [] if operation.get("x-srs-roles") == "public" else [{"bearerAuth": []}]
        assert operation.get("security") == expected, where


def test_every_api_route_is_in_the_openapi_document(spec):
    documented = {where for where, _ in operations(spec)}
    for route in routes():
        if route.is_api and route.endpoint != "api-docs.openapi_json" and \
                route.method not in {"HEAD", "OPTIONS"}:
            path = route.rule.replace("<int:", "{").replace(">", "}")
            assert f"{route.method} {path}" in documented, f"{route} is not documented"



# --- The compassion club's settings -----------------------------------------------------------

CLUB_CHANGE = {
    "compassion_weekly_limit_mg": 10500, "compassion_daily_limit_mg": 3000,
    "compassion_pickups_per_day": 2, "compassion_linkage_review_days": 30,
    "compassion_survey_days": 120, "compassion_take_home_allowed": True,
    "compassion_rollover_allowed": True,
    "compassion_pickup_windows": ["09:00-11:00", "14:00-16:00"],
    "compassion_waived_steps": ["naloxone_training"],
    "compassion_eligibility": [{"key": "current_use", "label": "Uses heroin now"}],
    "compassion_substance_limits_mg": {"heroin": 7000}}


def test_the_club_settings_are_read_changed_and_audited(client, site, admin):
    headers = bearer(admin)
    before = client.get(settings_url(site), headers=headers).get_json()
    assert {name: before[name] for name in COMPASSION_SETTINGS} == {
        name: default for name, (default, _low, _high) in COMPASSION_SETTINGS.items()}
    assert (before["compassion_take_home_allowed"], before["compassion_pickup_windows"],
            before["compassion_eligibility"]) == (False, None, None)
    response = client.patch(settings_url(site), headers=headers, json=CLUB_CHANGE)
    assert response.status_code == 200, response.get_json()
    assert {name: response.get_json()[name] for name in CLUB_CHANGE} == CLUB_CHANGE
    saved = stored(Site, site.id)
    assert saved.compassion_eligibility == [["current_use", "Uses heroin now"]]
    event = db.session.execute(db.select(AuditEvent).filter_by(
        action="settings_updated")).scalar_one()
    assert set(event.detail) == set(CLUB_CHANGE)
    assert event.detail["compassion_weekly_limit_mg"] == {"from": 14000, "to": 10500}
    assert event.detail["compassion_pickup_windows"] == {
        "from": None, "to": ["09:00-11:00", "14:00-16:00"]}


@pytest.mark.parametrize(("change", "message"), [
    ({"compassion_weekly_limit_mg": 99}, "Must be between 100 and 100000 mg in 7 days."),
    ({"compassion_daily_limit_mg": -1}, "Must be between 0 and 100000 mg a day."),
    ({"compassion_pickups_per_day": 25}, "Must be between 1 and 24 pickups."),
    ({"compassion_linkage_review_days": 6}, "Must be between 7 and 365 days."),
    ({"compassion_survey_days": 366}, "Must be between 7 and 365 days."),
    ({"compassion_take_home_allowed": "yes"}, "Not a valid boolean."),
    ({"compassion_rollover_allowed": 1}, "Not a valid boolean."),
    ({"compassion_pickup_windows": ["09:00-11:00", "10:59-12:00"]},
     "09:00-11:00 and 10:59-12:00 overlap: windows may not overlap."),
    ({"compassion_pickup_windows": ["12:00-12:00"]},
     "12:00-12:00: the start must come before the end."),
    ({"compassion_pickup_windows": ["25:00-26:00"]}, "\"25:00-26:00\" is not a window"),
    ({"compassion_pickup_windows": ["20:00-24:00"]}, "\"20:00-24:00\" is not a window"),
    ({"compassion_waived_steps": ["screening", "screening"]}, "Each step once."),
    ({"compassion_waived_steps": ["payment"]}, "A step is one of: screening, risk_consent"),
    ({"compassion_eligibility": []}, "Give 1 to 20 items."),
    ({"compassion_eligibility": [{"key": "a", "label": "A"}, {"key": "a", "label": "B"}]},
     "Each item once: two items have the same key."),
    ({"compassion_eligibility": [{"key": "Not A Key", "label": "A"}]},
     "A key is 1 to 40 small letters, digits or _."),
    ({"compassion_substance_limits_mg": {"heroin": 100001}},
     "A cap is between 1 and 100000 mg in 7 days."),
    ({"compassion_substance_limits_mg": {"heroin": 1, "Heroin": 2}},
     "Each substance once, with a name."),
], ids=lambda value: next(iter(value)) if isinstance(value, dict) else None)
def test_a_bad_club_setting_is_refused_with_its_message(client, site, admin, change, message):
    response = client.patch(settings_url(site), headers=bearer(admin), json=change)
    [field] = change
    body = assert_api_error(response, 422, field)
    assert any(message in said for said in body["errors"][field]), body["errors"]
    saved = stored(Site, site.id)
    assert (saved.compassion_weekly_limit_mg, saved.compassion_pickup_windows,
            saved.compassion_eligibility, saved.compassion_waived_steps) == (
        14000, None, None, None)
    assert db.session.execute(db.select(AuditEvent).filter_by(
        action="settings_updated")).first() is None
