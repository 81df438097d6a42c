"""Input no column can hold is refused, never a server error: an id too large for the
database is an unknown record (404) or an invalid field (422), and text with a NUL or half a
character pair a 422 on its field; in a URL, a JSON body, a query and an HTML form, on both
databases."""

import sys

import pytest
from factories import make_booth, make_site, make_staff
from marshmallow import Schema, fields, validate
from routes import api_body, assert_api_error, bearer, page_form, routes, url_of

from srs.common import MAX_ID
from srs.forms import Form

HTMX = {"HX-Request": "true"}
HUGE = 2**63  # past every integer column, and past SQLite's own 64 bits


@pytest.fixture
def site(app):
    site = make_site(slug="east")
    make_booth(site, label="B1")
    return site


@pytest.mark.parametrize("too_big", [MAX_ID + 1, HUGE, 10**20])
def test_an_id_past_the_columns_in_a_url_is_not_found(client, auth, site, too_big):
    make_staff(site, role="nurse", username="nina")
    assert auth.login("nina").status_code == 302
    assert client.get(f"/sites/east/overdose/{too_big}").status_code == 404
    headers = bearer(make_staff(site, role="supervisor"))
    assert_api_error(client.get(f"/api/v1/sites/{too_big}/board", headers=headers), 404)
    assert_api_error(client.post(f"/api/v1/sites/{site.id}/visits/{too_big}/observation",
                                 headers=headers), 404)


def test_an_id_past_the_columns_in_a_body_or_query_is_refused_on_its_field(client, auth, site):
    headers = bearer(make_staff(site, role="nurse"))
    visit = client.post(f"/api/v1/sites/{site.id}/visits", json={"code": "F-ABCD-1984"},
                        headers=headers).get_json()
    assigned = client.post(f"/api/v1/sites/{site.id}/visits/{visit['id']}/booth",
                           json={"booth_id": HUGE}, headers=headers)
    assert_api_error(assigned, 422, "booth_id")
    reviewer = bearer(make_staff(site, role="reviewer"))
    listed = client.get(f"/api/v1/sites/{site.id}/incidents?page={HUGE}", headers=reviewer)
    assert_api_error(listed, 422, "page")
    make_staff(site, role="nurse", username="nina")
    assert auth.login("nina").status_code == 302
    started = auth.post("/sites/east/overdose/start",
                        {"kind": "opioid", "visit_id": str(HUGE)}, headers=HTMX)
    assert started.status_code == 422 and "No such record" in started.get_data(as_text=True)


@pytest.mark.parametrize("text", ["Spar\x00row", "Spar\ud800row"])
def test_text_no_column_can_store_is_refused_on_its_field(client, auth, site, text):
    headers = bearer(make_staff(site, role="nurse"))
    answer = client.post(f"/api/v1/sites/{site.id}/visits",
                         json={"code": "F-ABCD-1984", "handle": text}, headers=headers)
    assert_api_error(answer, 422, "handle")
    if "\x00" not in text:
        return  # a browser sends half a pair as U+FFFD: only JSON can carry one
    make_staff(site, role="nurse", username="nina")
    assert auth.login("nina").status_code == 302
    form = auth.post("/sites/east/floor/check-in", {"code": "F-ABCD-1984", "handle": text},
                     headers=HTMX)
    assert form.status_code == 422 and "invisible control character" in form.get_data(
        as_text=True)


def test_weeks_and_months_outside_the_calendar_fall_back_or_are_refused(client, auth, site):
    make_staff(site, role="reviewer", username="rita")
    assert auth.login("rita").status_code == 302
    for path in ("/sites/east/incidents/week?week=0001-01-01",
                 "/sites/east/incidents/week?week=9999-12-31",
                 "/sites/east/reports/monthly?month=0000-01"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert 'data-testid="report-notice"' in page.get_data(as_text=True), path
    headers = bearer(make_staff(site, role="reviewer"))
    for month in ("0000-01", "9999-12"):
        answer = client.get(f"/api/v1/sites/{site.id}/reports/monthly?month={month}",
                            headers=headers)
        assert_api_error(answer, 422, "month")


def test_nested_field_errors_are_answered_and_what_was_typed_is_never_logged(app_with, caplog):
    """marshmallow keys a list item's message by its int index beside text keys: the 422
    still answers (``{field: [messages]}``), and no log line quotes the input."""
    app = app_with(PROPAGATE_EXCEPTIONS=False)  # as served: a failure is logged, not raised
    site = make_site(slug="east")
    headers = bearer(make_staff(site, role="admin"))
    caplog.set_level("DEBUG")
    answer = app.test_client().patch(
        f"/api/v1/sites/{site.id}/settings", headers=headers,
        json={"timezone": "Mars/Olympus_Mons", "overdose_locations": ["Stairs", 1, "Stairs"]})
    body = assert_api_error(answer, 422, "timezone", "overdose_locations")
    assert body["errors"]["overdose_locations"] == ["Item 2: Not a valid string.",
                                                    "Each place once, with a name."]
    assert all(isinstance(m, str) for messages in body["errors"].values() for m in messages)
    assert "Olympus" not in caplog.text and "Stairs" not in caplog.text
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_an_unhandled_error_is_logged_by_type_and_stack_only(app, caplog):
    """Flask logs an error that escapes every handler itself: by type and stack, never the
    exception's text, which can quote what was typed."""
    typed = "-".join(("F", "ABCD", "1984"))  # the stack shows this line, not the value
    with app.test_request_context("/api/v1/sites", method="POST"):
        try:
            raise ValueError(f"Key (code)=({typed}) already exists")
        except ValueError:
            app.log_exception(sys.exc_info())
    assert "ValueError" in caplog.text
    assert "F-ABCD-1984" not in caplog.text


# --- Ids past the columns wherever an id is taken ---------------------------------------------

def _route(endpoint: str):
    return next(r for r in routes() if r.endpoint == endpoint and r.method == "POST")


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/v1/sites/{huge}/booths"),  # beside GET on the same path
    ("GET", "/api/v1/sites/{huge}/displays"),  # beside POST
    ("POST", "/sites/east/floor/visits/{huge}/leave"),
])
@pytest.mark.parametrize("too_big", [MAX_ID + 1, 10**20])
def test_an_id_past_the_columns_is_not_found_whatever_else_the_path_allows(
        client, auth, site, method, path, too_big):
    """Not 405: another method's route on the same path does not make the record exist."""
    make_staff(site, role="admin", username="ada")
    assert auth.login("ada").status_code == 302
    headers = bearer(make_staff(site, role="admin"))
    url = path.format(huge=too_big)
    answer = (client.open(url, method=method, headers=headers, json={}) if "/api/" in url
              else auth.post(url, {"reason": "left"}, headers=HTMX))
    assert answer.status_code == 404
    assert "Allow" not in answer.headers
    if "/api/" in url:
        assert_api_error(answer, 404)


@pytest.mark.parametrize(("endpoint", "field"), [
    ("api_naloxone.add_naloxone_kits", "lot_id"),
    ("api_hat.record_dose", "drug_id"),
    ("api_hat.record_dose", "witness_id"),
    ("api_overdose.record_intervention", "amends_id"),
])
def test_an_id_past_the_columns_in_any_api_body_is_refused_on_its_field(
        kept_floor, client, endpoint, field):
    floor = kept_floor.load()
    route = _route(endpoint)
    body = {**api_body(route, floor), field: HUGE}
    answer = client.post(url_of(route, floor), json=body, headers=kept_floor.everyone_token)
    assert_api_error(answer, 422, field)


@pytest.mark.parametrize(("endpoint", "field"), [
    ("naloxone.add_kits", "lot_id"),
    ("controlled.receive", "drug_id"),
    ("controlled.count", "second_id"),
    ("controlled.waste", "witness_id"),
    ("hat_dosing.dose", "drug_id"),
    ("club_supply.link_check", "drug_check_id"),
])
def test_an_id_past_the_columns_in_any_page_form_is_refused_on_its_field(
        kept_floor, client, auth, endpoint, field):
    floor = kept_floor.load()
    assert auth.login(floor.everyone.username).status_code == 302
    route = _route(endpoint)
    form = {**page_form(route, floor), field: str(HUGE)}
    answer = auth.post(url_of(route, floor), form, headers=HTMX)
    assert answer.status_code == 422
    assert "No such record" in answer.get_data(as_text=True)


def _input_schemas(app) -> set[type]:
    """Every schema a request is read with: each API operation's arguments and every page
    form, with the schemas nested in them."""
    found = {p["schema"] if isinstance(p["schema"], type) else type(p["schema"])
             for view in app.view_functions.values()
             for p in getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", [])}

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    found |= {form for form in subclasses(Form) if form.__module__.startswith("srs.")}
    found |= {schema for schema in subclasses(Schema) if schema.__module__.startswith("srs.")
              and "Input" in schema.__name__}
    queue = list(found)
    while queue:
        for field in queue.pop()().fields.values():
            inner = field.inner if isinstance(field, fields.List) else field
            if isinstance(inner, fields.Nested) and isinstance(inner.nested, type):
                if inner.nested not in found:
                    found.add(inner.nested)
                    queue.append(inner.nested)
    return found


def test_every_id_a_body_or_a_form_takes_is_bounded_like_a_path_id(app):
    schemas = _input_schemas(app)
    assert len(schemas) > 100  # the API's bodies and queries, and the pages' forms
    unbounded = []
    for schema in schemas:
        for name, field in schema().fields.items():
            inner = field.inner if isinstance(field, fields.List) else field
            if field.dump_only or not name.endswith(("_id", "_ids")) \
                    or not isinstance(inner, fields.Integer):
                continue
            if not any(isinstance(rule, validate.Range) and rule.max is not None
                       and rule.max <= MAX_ID for rule in inner.validators):
                unbounded.append(f"{schema.__module__}.{schema.__name__}.{name}")
    assert not unbounded, sorted(unbounded)


def test_days_and_months_outside_the_calendar_on_the_register_and_training_pages(
        client, auth):
    """The day after 9999-12-31 and the month after 9999-12 do not exist: a refusal on the
    field, or this month's page, never a server error."""
    site = make_site(slug="north")  # beside the module's floor, whose site is East
    make_staff(site, role="admin", username="ada")
    assert auth.login("ada").status_code == 302
    for query in ("start=9999-12-31&end=9999-12-31", "start=0001-01-01&end=0001-01-02"):
        answer = client.get(f"/sites/north/controlled/register.csv?{query}")
        assert answer.status_code == 422, query
        assert "first and last day" in answer.get_data(as_text=True), query
    for month in ("9999-12", "0001-01"):
        page = client.get(f"/sites/north/naloxone/training/sessions?month={month}")
        assert page.status_code == 200, month
        assert f'name="month" value="{month}"' not in page.get_data(as_text=True)
