"""The home page links to every page a person may use, site by site, and to nothing they
may not open.

The pages come from the app's routes and what each declares (``srs_roles``, as in
tests/test_authz_matrix.py): a page added for a role without a line on the home page fails
here. A page is a GET that names at most its site, is no download, and answers a whole HTML
document.
"""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from factories import make_site, make_staff
from routes import PUBLIC, declared_roles, may_call, routes

from srs.auth.models import Role

HOME = "dashboard.home"


class _Links(HTMLParser):
    """The home page's links (each carries a data-testid) and the group each sits in."""

    def __init__(self):
        super().__init__()
        self.links: list[dict] = []
        self._site = None
        self._group = None
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("data-testid") == "site-card":
            self._site = attrs["data-site"]
        elif tag == "h3" and "link-group__title" in (attrs.get("class") or ""):
            self._in_title = True
        elif tag == "a" and attrs.get("data-testid") and attrs["data-testid"] != "home-link":
            self.links.append({"href": attrs["href"], "testid": attrs["data-testid"],
                               "site": self._site, "group": self._group})

    def handle_data(self, data):
        if self._in_title:
            self._group = data.strip()
            self._in_title = False

    def handle_endtag(self, tag):
        if tag == "article":
            self._site = None


def home_links(client) -> list[dict]:
    page = client.get("/")
    assert page.status_code == 200, page.headers.get("Location")
    parser = _Links()
    parser.feed(page.get_data(as_text=True))
    return parser.links


def pages_for(app, client, role: str, slugs) -> set[str]:
    """Every page ``role`` may open at the sites ``slugs`` (URL paths), by what the routes
    declare and what they answer."""
    found = set()
    for route in routes():
        if route.method != "GET" or route.is_api or route.endpoint == HOME:
            continue
        if not route.arguments <= {"slug"} or "." in route.rule.rsplit("/", 1)[-1]:
            continue  # names a record, or a download (CSV, PDF)
        declared = declared_roles(app, route.endpoint)
        if declared == PUBLIC or not may_call(declared, role, route):
            continue
        for slug in slugs if "slug" in route.arguments else [None]:
            url = route.rule.replace("<slug>", slug) if slug else route.rule
            answer = client.get(url)
            if answer.status_code == 200 and answer.mimetype == "text/html" and \
                    answer.get_data(as_text=True).lstrip().lower().startswith("<!doctype html"):
                found.add(url)
    return found


@pytest.fixture
def two_sites(app):
    return make_site(name="East Side", slug="east"), make_site(name="West End", slug="west")


@pytest.mark.parametrize("role", [role.value for role in Role])
def test_home_links_every_page_a_role_may_open_and_each_link_opens(
        app, client, auth, two_sites, role):
    east, west = two_sites
    # At two sites: a nurse with one site goes straight to its floor, past the home page.
    person = make_staff(roles=[(east, role), (west, role)])
    auth.login(person.username)

    links = home_links(client)
    for link in links:
        answer = client.get(link["href"])
        assert answer.status_code == 200, f"{role}: {link['testid']} {link['href']}"
    linked = {urlsplit(link["href"]).path for link in links}
    missing = pages_for(app, client, role, ["east", "west"]) - linked
    assert not missing, f"pages a {role} may open that the home page does not link: {missing}"


def test_an_admin_finds_the_administration_group_at_their_site_only(
        app, client, auth, two_sites):
    east, west = two_sites
    make_staff(username="ada", roles=[(east, Role.ADMIN), (west, Role.SUPERVISOR)])
    auth.login("ada")

    links = home_links(client)
    admin = {link["testid"] for link in links
             if link["site"] == "east" and link["group"] == "Administration"}
    assert {"booths-link", "staff-link", "displays-link", "site-tokens-link", "rules-link",
            "services-link", "naloxone-link", "factors-link"} <= admin
    at_west = [link for link in links if link["site"] == "west"]
    assert "Administration" not in {link["group"] for link in at_west}
    assert {"floor-link", "naloxone-link"} <= {link["testid"] for link in at_west}
    # The naloxone page is no administration for a supervisor: it sits under another title.
    assert {link["group"] for link in at_west if link["testid"] == "naloxone-link"} == \
        {"Stock and records"}
    # Everyone's own tokens, whatever their roles, once above the sites.
    assert [link["href"] for link in links if link["testid"] == "tokens-link"] == \
        ["/account/tokens"]
    assert {link["href"] for link in links if link["testid"] == "dashboard-link"} == \
        {"/supervise#site-east", "/supervise#site-west"}

