"""Security headers, a CSP with no inline script, cookie flags, and production's stricter rules."""

import re
from pathlib import Path

import pytest
from conftest import ROOT
from cryptography.fernet import Fernet
from factories import make_staff
from routes import bearer, make_floor, routes, url_of

from srs import create_app
from srs.auth.models import Role
from srs.config import ConfigError
from srs.extensions import db

TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))
# Every page a person opens; /health is the load balancers' JSON (tests/test_health.py).
PAGES = [r for r in routes() if r.method == "GET" and not r.is_api
         and r.endpoint not in ("static", "health.health")]

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
HX_ON = re.compile(r"hx-on", re.IGNORECASE)
ONE_YEAR = 365 * 24 * 3600
DOWNLOADS = {".csv": "text/csv", ".pdf": "application/pdf"}  # pages that are files


def csp(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = (d.split() for d in header.split(";") if d.strip())
    return {d[0].lower(): d[1:] for d in directives}


def assert_security_headers(response) -> None:
    policy = csp(response)
    assert policy.get("script-src") == ["'self'"], policy
    header = response.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header, header
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def cookie_attributes(response, name: str = "session") -> set[str]:
    """The attributes of the Set-Cookie for ``name``, as lower-case ``key`` or ``key=value``."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return {part.strip().lower() for part in header.split(";")[1:]}
    raise AssertionError(f"no {name} cookie in {response.headers.getlist('Set-Cookie')}")


def template_problems(text: str) -> list[str]:
    """What in a template would need 'unsafe-inline' or 'unsafe-eval' to run."""
    return [match.group(0).strip()
            for pattern in (INLINE_SCRIPT, EVENT_HANDLER, HX_ON)
            for match in pattern.finditer(text)]


# --- Every HTML page ----------------------------------------------------------------------

@pytest.mark.parametrize("route", PAGES, ids=str)
def test_every_page_sends_the_security_headers(client, auth, route):
    floor = make_floor()
    staff = make_staff(roles=[(floor.site, role.value) for role in Role])
    staff.org_admin = True  # the organisation's pages too
    db.session.commit()
    assert auth.login(staff.username).status_code == 302
    response = client.get(url_of(route, floor), follow_redirects=True)
    assert response.status_code == 200
    if route.endpoint != "auth.login":
        # Signed in: the page itself, not the sign-in page its guard sends strangers to.
        assert response.request.path != "/login", f"{route} ended on the sign-in page"
    assert response.mimetype == DOWNLOADS.get(Path(route.rule).suffix, "text/html")
    assert_security_headers(response)
    # Client records, downloaded files (CSV, PDF) included, never stay in a cache.
    assert response.headers["Cache-Control"] == "no-store"


def test_the_apis_csv_export_is_not_kept_in_a_cache(client):
    floor = make_floor()
    reviewer = make_staff(floor.site, role=Role.REVIEWER)
    response = client.get(f"/api/v1/sites/{floor.site.id}/incidents.csv",
                          headers=bearer(reviewer))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"


def _login_page(client, auth, floor):
    return client.get("/login")


def _lock_screen(client, auth, floor):
    auth.login(make_staff(floor.site, role=Role.NURSE).username)
    auth.post("/lock")
    return client.get("/lock")


def _not_allowed(client, auth, floor):
    auth.login(make_staff(floor.site, role=Role.REVIEWER).username)
    return client.get(f"/sites/{floor.site.slug}/floor")


def _not_found(client, auth, floor):
    auth.login(make_staff(floor.site, role=Role.NURSE).username)
    return client.get("/sites/nowhere/floor")


def _refused_post(client, auth, floor):
    return client.post("/login", data={"username": "x", "password": "y"})


@pytest.mark.parametrize("open_page, status", [
    (_login_page, 200), (_lock_screen, 200), (_not_allowed, 403), (_not_found, 404),
    (_refused_post, 400),
], ids=["login", "lock screen", "403 page", "404 page", "CSRF refusal"])
def test_sign_in_lock_and_error_pages_send_the_security_headers(client, auth, open_page,
                                                                 status):
    response = open_page(client, auth, make_floor())
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert_security_headers(response)


# --- Templates: nothing the CSP would have to allow ----------------------------------------

def test_there_are_templates_to_scan():
    assert len(TEMPLATES) >= 5


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_has_inline_script_or_event_handlers(template: Path):
    assert template_problems(template.read_text()) == []


@pytest.mark.parametrize("snippet, found", [
    ("<script>alert(1)</script>", True),
    ('<SCRIPT type="module">go()</SCRIPT>', True),
    ('<button onclick="go()">', True),
    ('<body\n  onload="go()">', True),
    ('<div hx-on:click="go()">', True),
    ('<div data-hx-on::after-request="go()">', True),
    ('<script src="/static/srs.js" defer></script>', False),
    ('<button data-busy-label="Signing on…" class="btn">', False),
], ids=repr)
def test_the_template_scan_finds_what_it_looks_for(snippet, found):
    assert bool(template_problems(snippet)) is found


# --- Cookies, development and production ----------------------------------------------------

def test_the_session_cookie_is_http_only_and_same_site_lax(client, auth):
    floor = make_floor()
    first = client.get("/login")
    signed_in = auth.login(make_staff(floor.site, role=Role.NURSE).username)
    for response in (first, signed_in):
        attributes = cookie_attributes(response)
        assert "httponly" in attributes
        assert "samesite=lax" in attributes


@pytest.fixture
def production(monkeypatch, tmp_path):
    """The process environment of a production server (SRS_SECRET_KEY left to each test)."""
    for name in ("SRS_REDIS_URL", "SRS_HOST", "SRS_PORT", "SRS_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SRS_ENV", "production")
    monkeypatch.setenv("SRS_IDENTITY_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("SRS_SCHEDULER", "off")
    monkeypatch.setenv("SRS_DATABASE_URL", f"sqlite:///{tmp_path / 'production.sqlite3'}")
    return monkeypatch


def test_production_sends_secure_cookies_and_hsts(production):
    production.setenv("SRS_SECRET_KEY", "a-long-random-value-kept-across-restarts")
    app = create_app()
    assert app.config["SECRET_KEY"] == "a-long-random-value-kept-across-restarts"
    response = app.test_client().get("/login")
    assert response.status_code == 200
    attributes = cookie_attributes(response)
    assert {"secure", "httponly", "samesite=lax"} <= attributes
    hsts = response.headers["Strict-Transport-Security"]
    max_age = re.search(r"max-age=(\d+)", hsts)
    assert max_age and int(max_age.group(1)) >= ONE_YEAR, hsts
    assert_security_headers(response)


@pytest.mark.parametrize("key", [None, ""], ids=["unset", "empty"])
def test_production_refuses_to_start_without_a_secret_key(production, key):
    if key is not None:
        production.setenv("SRS_SECRET_KEY", key)
    with pytest.raises(ConfigError, match="SRS_SECRET_KEY"):
        create_app()
