"""Helpers for tests against the real server: sign in through the form, call the API, watch
a page's console."""

import requests
from factories import ACTOR, PASSWORD
from playwright.sync_api import Page, expect

from srs.auth.service import issue_token

# The longest a test waits for the server or a screen before it fails.
WAIT_SECONDS = 5


def sign_in(page: Page, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Open the login page and sign in through the form."""
    page.goto(f"{base_url}/login")
    submit_login_form(page, username, password)


def submit_login_form(page: Page, username: str, password: str = PASSWORD) -> None:
    """Type a username and password into the login form on screen and tap Sign in."""
    page.get_by_label("Username").fill("")
    page.get_by_label("Username").type(username)
    page.get_by_label("Password").type(password)
    sign_in_button = page.get_by_role("button", name="Sign in")
    if page.evaluate("() => navigator.maxTouchPoints > 0"):
        sign_in_button.tap()  # a wall tablet
    else:
        sign_in_button.click()
    expect(page.get_by_label("Username")).to_have_count(0, timeout=WAIT_SECONDS * 1000)


def api_token(staff) -> str:
    """A bearer token for ``staff``, as `flask srs token create` would make."""
    return issue_token(staff, actor=ACTOR)


def set_out_of_service(base_url: str, token: str, booth, reason: str | None) -> dict:
    """Take ``booth`` out of service (or back in with None) through the JSON API."""
    response = requests.put(
        f"{base_url}/api/v1/sites/{booth.site_id}/booths/{booth.id}/out-of-service",
        json={"reason": reason}, headers={"Authorization": f"Bearer {token}"},
        timeout=WAIT_SECONDS)
    assert response.status_code == 200, response.text
    return response.json()


class ConsoleWatch:
    """Collect what a page reports: console errors (CSP violations among them) and JS errors."""

    def __init__(self, page: Page):
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")
