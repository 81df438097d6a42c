"""Who may call what: every route and method, for anonymous, for every role and for a wall
display.

The expected answer comes from what each view declares (``srs_roles``), so a new
route is in the matrix as soon as it exists, and one that declares nothing fails.
The route table and the floor come from tests/routes.py.
"""

import pytest
from conftest import csrf_token
from routes import (
    ALSO_ANSWERS,
    ANONYMOUS,
    ORG_ADMIN_ONLY,
    OTHER_SITE,
    PRINCIPALS,
    PUBLIC,
    UNDECLARED_PUBLIC,
    WALL_DISPLAY,
    api_body,
    assert_api_error,
    declared_roles,
    may_call,
    page_form,
    redirect_path,
    routes,
    url_of,
)

from srs.api.access import GATEWAY
from srs.auth.access import ANY_STAFF, ORG_ADMIN
from srs.auth.models import DISPLAY, Role

# Flask answers OPTIONS itself, without running the view or its access check: nothing of SRS's.
MATRIX_ROUTES = [r for r in routes() if r.method != "OPTIONS"]


def test_every_endpoint_declares_who_may_call_it(app):
    allowed_roles = {role.value for role in Role} | {DISPLAY}
    for endpoint, view in app.view_functions.items():
        if endpoint in UNDECLARED_PUBLIC:
            continue
        declared = getattr(view, "srs_roles", None)
        assert declared is not None, f"{endpoint} declares no srs_roles"
        if isinstance(declared, frozenset):
            assert declared, f"{endpoint} declares an empty set of roles"
            assert declared <= allowed_roles, f"{endpoint} declares unknown roles {declared}"
        else:
            assert declared in {PUBLIC, ANY_STAFF, ORG_ADMIN, GATEWAY}, \
                f"{endpoint}: srs_roles={declared!r}"


def test_no_view_answers_options_itself(app):
    """What keeps OPTIONS out of the matrix honest: a view of SRS's own would need checking."""
    for rule in app.url_map.iter_rules():
        if "OPTIONS" in rule.methods:
            assert rule.provide_automatic_options, f"{rule.endpoint} handles OPTIONS itself"


def test_the_openapi_document_is_public(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["paths"]


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("route", MATRIX_ROUTES, ids=str)
def test_authorization_matrix(kept_floor, app, client, auth, route, principal):
    floor = kept_floor.load(principal)
    staff = floor.principal
    declared = declared_roles(app, route.endpoint)
    allowed = may_call(declared, principal, route)
    url = url_of(route, floor)

    if route.is_api:
        headers = kept_floor.tokens[principal]
        response = client.open(url, method=route.method, headers=headers,
                               json=api_body(route, floor))
    else:
        if staff:
            assert auth.login(staff.username).status_code == 302
        elif principal == WALL_DISPLAY:
            assert client.get(f"/display/{kept_floor.display_token}").status_code == 302
        data = None
        if route.changes_state:
            data = {"csrf_token": csrf_token(client), **page_form(route, floor)}
        response = client.open(url, method=route.method, data=data)
    response.close()
    status = response.status_code
    where = f"{route} as {principal} (declared: {declared})"

    if route.is_api and allowed:
        assert 200 <= status < 300, f"{where}: {status} {response.get_data(as_text=True)}"
    elif route.is_api:
        if principal in (ANONYMOUS, WALL_DISPLAY):
            expected = 401
        elif principal in (OTHER_SITE, ORG_ADMIN_ONLY) and route.at_one_site:
            # No role at the site: the answer of a site that does not exist (ids not probed).
            expected = 404
        else:
            expected = 403
        if route.method == "HEAD":
            assert status == expected, where
        else:
            assert_api_error(response, expected)
        if expected == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), where
    elif allowed:
        assert status in {200, 204, 302, 303, *ALSO_ANSWERS.get(route.endpoint, ())}, \
            f"{where}: {status}"
        if status in (302, 303) and declared != PUBLIC:
            # The route's own redirect, not a bounce to the login page.
            assert redirect_path(response) != "/login", where
    elif principal == ANONYMOUS:
        assert status == 302, f"{where}: {status}"
        assert redirect_path(response) == "/login", where
    else:
        assert status == 403, f"{where}: {status}"


def test_a_role_at_another_site_shows_nothing_of_this_site(kept_floor, client, auth):
    outsider = kept_floor.load(OTHER_SITE).principal
    auth.login(outsider.username)
    page = client.get("/supervise")
    assert page.status_code == 200
    assert b"West" in page.data
    assert b"East" not in page.data
    sites = client.get("/api/v1/sites", headers=kept_floor.tokens[OTHER_SITE]).get_json()
    assert [s["slug"] for s in sites] == ["west"]
