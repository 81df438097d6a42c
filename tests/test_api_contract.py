"""What /api/v1/openapi.json promises an integrator, held against what the API does: the
error body as sent, every error an operation can give documented with that body, who may
call each operation, 405's Allow, a required body that is required, and a site the caller
holds no role at that looks like no site at all."""

import ast
import re

import pytest
from conftest import ROOT
from factories import make_site, make_staff
from routes import API_BODIES, OTHER_SITE, Route, api_body, assert_api_error, bearer, routes, url_of

from srs.api.access import GATEWAY, PUBLIC
from srs.auth.access import ANY_STAFF, ORG_ADMIN
from srs.auth.models import Role
from srs.errors import DomainError
from srs.extensions import db
from srs.incidents.models import Incident

ERROR_REF = {"$ref": "#/components/schemas/Error"}
API_ROUTES = [r for r in routes() if r.is_api and r.method not in {"HEAD", "OPTIONS"}
              and r.endpoint != "api-docs.openapi_json"]


@pytest.fixture
def document(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def spec_path(route: Route) -> str:
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", route.rule)


def operation_of(document: dict, route: Route) -> dict:
    operation = document["paths"].get(spec_path(route), {}).get(route.method.lower())
    assert operation is not None, f"{route} is missing from the document"
    return operation


# --- The Error schema -------------------------------------------------------------------------

def test_the_error_schema_says_what_is_sent(document):
    error = document["components"]["schemas"]["Error"]
    members = error["properties"]
    assert members["code"]["type"] == "string"
    assert members["status"]["type"] == "integer"
    assert members["message"]["type"] == "string"
    assert members["errors"]["type"] == "object"
    assert members["errors"]["additionalProperties"] == {
        "type": "array", "items": {"type": "string"}}
    assert set(error["required"]) == {"code", "status", "message", "errors"}
    assert error["additionalProperties"] is False  # every other member is listed


def _domain_errors(trees) -> set[str]:
    """The names of DomainError and of every class in srs/ that derives from it."""
    bases = {node.name: {getattr(base, "id", None) or getattr(base, "attr", None)
                         for base in node.bases}
             for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    found = {DomainError.__name__}
    while grown := {name for name, of in bases.items() if of & found} - found:
        found |= grown
    return found


def test_every_member_a_conflict_adds_is_documented(document):
    """A service adds members to an error body by keyword (``Conflict(..., visit_id=...)``):
    each keyword any raise site in srs/ uses is a documented member of Error."""
    trees = {path: ast.parse(path.read_text(), str(path))
             for path in sorted((ROOT / "srs").rglob("*.py"))}
    error_classes = _domain_errors(trees.values())
    assert {"Conflict", "BoothTaken", "IncidentStageConflict"} <= error_classes
    documented = set(document["components"]["schemas"]["Error"]["properties"])
    undocumented = set()
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in error_classes:
                undocumented |= {f"{kw.arg} ({path.name}:{node.lineno})" for kw in node.keywords
                                 if kw.arg not in (None, "errors")
                                 and kw.arg not in documented}
    assert not undocumented, sorted(undocumented)


def test_a_conflict_sends_the_documented_members(client, document):
    site = make_site()
    reviewer, nurse = make_staff(site, role="reviewer"), make_staff(site, role="nurse")
    created = client.post(f"/api/v1/sites/{site.id}/incidents", json={"type": "other"},
                          headers=bearer(nurse)).get_json()
    response = client.post(f"/api/v1/sites/{site.id}/incidents/{created['id']}/review",
                           json={"decision": "approve"}, headers=bearer(reviewer))
    body = assert_api_error(response, 409)
    assert body["current_stage"] == "draft"
    assert set(body) <= set(document["components"]["schemas"]["Error"]["properties"])


# --- Each operation's errors, roles and body --------------------------------------------------

@pytest.mark.parametrize("route", API_ROUTES, ids=str)
def test_every_error_an_operation_can_give_is_documented(app, document, route):
    operation = operation_of(document, route)
    view = app.view_functions[route.endpoint]
    responses = operation["responses"]
    inputs = "requestBody" in operation or bool(operation.get("parameters"))
    expected = set() if view.srs_roles == PUBLIC else {"401"}
    if isinstance(view.srs_roles, frozenset) or view.srs_roles in (ORG_ADMIN, GATEWAY):
        expected.add("403")
    if getattr(view, "srs_rate_limited", False):
        expected.add("429")
    if route.arguments:
        expected.add("404")
    if getattr(view, "srs_idempotent", False):
        expected.add("409")
        assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])
    if inputs:
        expected.add("422")
    if "requestBody" in operation:
        expected.add("400")
    errors = {status for status in responses if status.startswith(("4", "5"))}
    assert "default" not in responses, "a catch-all lets any status pass for documented"
    assert expected <= errors, f"undocumented: {sorted(expected - errors)}"
    # Beside those, only what a blueprint declares its service raises: a 409 (a state that
    # refuses), a 404 (a record a query or body names).
    assert errors <= expected | {"404", "409"}, f"cannot happen: {sorted(errors - expected)}"
    for status in errors:
        assert responses[status]["content"]["application/json"]["schema"] == ERROR_REF, status
    if "401" in expected:
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
    else:  # a public operation: no token, so none required
        assert operation["security"] == []


@pytest.mark.parametrize("route", API_ROUTES, ids=str)
def test_the_roles_an_operation_allows_are_documented(app, document, route):
    operation = operation_of(document, route)
    declared = app.view_functions[route.endpoint].srs_roles
    if declared == ANY_STAFF:
        assert operation["x-srs-roles"] == ANY_STAFF
        assert "Any staff member" in operation["description"]
        return
    if declared == ORG_ADMIN:
        assert operation["x-srs-roles"] == ORG_ADMIN
        assert "Organisation admins only" in operation["description"]
        return
    if declared == PUBLIC:
        assert operation["x-srs-roles"] == PUBLIC
        assert "Anyone: no token" in operation["description"]
        return
    if declared == GATEWAY:
        assert operation["x-srs-roles"] == GATEWAY
        assert "The SMS gateway only" in operation["description"]
        return
    assert sorted(operation["x-srs-roles"]) == sorted(declared)
    order = [role.value for role in Role]
    assert operation["x-srs-roles"] == sorted(declared, key=order.index)
    for role in declared:
        assert role in operation["description"], role
    assert "404" in operation["description"]


# The operations that read a body (tests/routes.py gives each a valid one).
BODY_ROUTES = [r for r in API_ROUTES if r.changes_state and API_BODIES.get(r.endpoint) is not None]


@pytest.mark.parametrize("route", BODY_ROUTES, ids=str)
def test_a_required_body_is_required(kept_floor, app, client, document, route):
    assert operation_of(document, route)["requestBody"]["required"] is True
    gateway = app.view_functions[route.endpoint].srs_roles == GATEWAY
    response = client.open(url_of(route, kept_floor.load()), method=route.method,
                           headers=kept_floor.gateway_token if gateway
                           else kept_floor.everyone_token)
    assert_api_error(response, 422, "_body")


def test_an_incident_without_a_body_is_not_created(client):
    site = make_site()
    nurse = make_staff(site, role="nurse")
    response = client.post(f"/api/v1/sites/{site.id}/incidents", headers=bearer(nurse))
    body = assert_api_error(response, 422, "_body")
    assert "JSON" in body["errors"]["_body"][0]
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(Incident.id)).filter_by(
        site_id=site.id)) == 0


# --- 405, and sites one holds no role at --------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/api/v1/sites", {"GET", "HEAD", "OPTIONS", "POST"}),
    ("PUT", "/login", {"GET", "HEAD", "OPTIONS", "POST"}),
])
def test_a_method_not_allowed_says_which_are(client, method, path, allowed):
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == allowed
    if path.startswith("/api/"):
        assert_api_error(response, 405)


@pytest.mark.parametrize("route", [r for r in API_ROUTES if "site_id" in r.arguments],
                         ids=str)
def test_a_site_without_a_role_there_looks_like_no_site(kept_floor, client, route):
    """A token whose owner holds every role, but at another site, learns nothing of this
    one: the answer is the unknown site's, byte for byte."""
    floor = kept_floor.load()
    headers = kept_floor.tokens[OTHER_SITE]
    body = api_body(route, floor)
    unknown_id = floor.site.id + floor.other_site.id + 1000
    url = url_of(route, floor)
    no_role = client.open(url, method=route.method, headers=headers, json=body)
    unknown = client.open(url.replace(f"/sites/{floor.site.id}", f"/sites/{unknown_id}", 1),
                          method=route.method, headers=headers, json=body)
    assert_api_error(no_role, 404)
    assert (no_role.status_code, no_role.get_data()) == (unknown.status_code, unknown.get_data())
    assert no_role.headers.get("Content-Type") == unknown.headers.get("Content-Type")
