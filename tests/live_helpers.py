"""Helpers for tests against the real server: sign in through the form, call the API, watch
a page's console."""

import re
import threading

import pytest
import requests
import socketio
from factories import ACTOR, PASSWORD
from playwright.sync_api import Page, expect

from srs.auth.service import issue_token

# The longest a test waits for the server or a screen before it fails.
WAIT_SECONDS = 5
TIMEOUT_MS = WAIT_SECONDS * 1000
RECONNECT_TIMEOUT_MS = 15_000  # Socket.IO's back-off after a failed attempt, plus jitter
# What Chromium logs while a test holds a screen offline on purpose.
OFFLINE_NOISE = "net::ERR_INTERNET_DISCONNECTED"
# What htmx logs for a request the browser could not send (a screen offline): each such
# request logs both, with the element that made it.
OFFLINE_SENDS = frozenset({"console: htmx:afterRequest", "console: htmx:sendError"})
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


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
    page.wait_for_load_state("load")  # the next page as shown: stylesheet and scripts in


def tap_pin(page: Page, digits: str) -> None:
    """Tap digits on the lock screen's keypad; the sixth digit of the PIN submits it."""
    # The keypad works once srs.js has run (deferred scripts run before DOMContentLoaded).
    page.wait_for_load_state("domcontentloaded")
    pin_field = page.locator("#pin")
    keypad = page.locator(".keypad")
    expected = pin_field.input_value() + digits
    for digit in digits[:-1]:
        keypad.get_by_role("button", name=digit, exact=True).tap()
    expect(pin_field).to_have_value(expected[:-1])  # every tap counted
    keypad.get_by_role("button", name=digits[-1], exact=True).tap()


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


class Screen:
    """A Socket.IO client that records what the server tells it and how the connection ends."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.client = socketio.Client(reconnection=False)
        self.changed: list[dict] = []  # topic and site of each change heard
        self.hints: list[dict] = []  # each plain ``changed`` hint whole (version, pushed)
        self.fragments: list[dict] = []
        self.session_ended: list[dict] = []
        self.refusals: list = []
        self.disconnect_reason: str | None = None
        self._changed = threading.Condition()
        self.disconnected = threading.Event()
        self.client.on("changed", self._on_changed)
        self.client.on("fragments", self._on_fragments)
        self.client.on("session_ended", self.session_ended.append)
        self.client.on("connect_error", self.refusals.append)
        self.client.on("disconnect", self._on_disconnect)

    def _on_changed(self, message):
        with self._changed:
            self.hints.append(message)
            self.changed.append({"topic": message["topic"], "site_id": message["site_id"]})
            self._changed.notify_all()

    def _on_fragments(self, message):
        """A screen hears a change's topics with its fragments (one message per change)."""
        with self._changed:
            self.fragments.append(message)
            for topic in message["topics"]:
                self.changed.append({"topic": topic, "site_id": message["site_id"]})
            self._changed.notify_all()

    def wait_for_fragments(self, count: int) -> list[dict]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.fragments) >= count, timeout=WAIT_SECONDS)
            return list(self.fragments)

    def _on_disconnect(self, reason=None):
        self.disconnect_reason = reason
        self.disconnected.set()

    def connect(self, *, cookie: str | None = None, auth: dict | None = None) -> "Screen":
        headers = {"Cookie": cookie} if cookie else {}
        self.client.connect(self.base_url, headers=headers, auth=auth,
                            transports=["websocket"], wait_timeout=WAIT_SECONDS)
        return self

    def refused(self, *, cookie: str | None = None, auth: dict | None = None) -> str:
        """Try to connect; return the server's reason for refusing (fail if admitted)."""
        with pytest.raises(socketio.exceptions.ConnectionError):
            self.connect(cookie=cookie, auth=auth)
        assert not self.client.connected
        assert self.refusals, "the server said why it refused"
        return self.refusals[-1]["message"]

    def wait_for_changes(self, count: int, topic: str = "board") -> list[dict]:
        """The first ``count`` changes heard on ``topic`` (the scheduler's own jobs, such as
        the stock check run at start, may announce other topics in between)."""
        def heard():
            return [change for change in self.changed if change["topic"] == topic]

        with self._changed:
            self._changed.wait_for(lambda: len(heard()) >= count, timeout=WAIT_SECONDS)
            return heard()

    def close(self):
        if self.client.connected:
            self.client.disconnect()


class WebSession:
    """A requests session signed in through the login form, as a browser would be."""

    def __init__(self, base_url: str, username: str):
        self.base_url = base_url
        self.http = requests.Session()
        response = self.post("/login", {"username": username, "password": PASSWORD})
        assert response.status_code == 302, response.text

    def csrf_token(self) -> str:
        page = self.http.get(f"{self.base_url}/login", timeout=WAIT_SECONDS)
        return _CSRF_META.search(page.text).group(1)

    def post(self, path: str, data: dict | None = None) -> requests.Response:
        return self.http.post(f"{self.base_url}{path}",
                              data={"csrf_token": self.csrf_token(), **(data or {})},
                              allow_redirects=False, timeout=WAIT_SECONDS)

    @property
    def cookie(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.http.cookies.items())


class LiveScreen:
    """A page with a live socket: wait until it is live, tell whether it reloaded."""

    def __init__(self, page: Page):
        self.page = page
        self.console = ConsoleWatch(page)

    def wait_until_live(self) -> None:
        """Wait for the page's socket to connect, so the next change comes as a live hint."""
        self.page.wait_for_function("() => window.srsSocket && window.srsSocket.connected",
                                    timeout=TIMEOUT_MS)
        # Anything set on window survives only as long as this page is not reloaded.
        self.page.evaluate("() => { window.srsNotReloaded = true; }")

    def was_not_reloaded(self) -> bool:
        return self.page.evaluate("() => window.srsNotReloaded === true")

    def unexpected_console(self) -> list[str]:
        return [e for e in self.console.errors if OFFLINE_NOISE not in e]

    def unexpected_console_besides_offline_sends(self) -> list[str]:
        """For a screen that was taken offline: what it logged besides the requests it could
        not send meanwhile (a status poll, a re-fetch that fell in the offline moment)."""
        return [e for e in self.unexpected_console() if e.split(",")[0] not in OFFLINE_SENDS]


class FloorScreen(LiveScreen):
    """A live page of one site's floor or dashboard: its booth tiles and fragments."""

    def __init__(self, page: Page, site):
        super().__init__(page)
        self.site = site
        page.set_default_timeout(TIMEOUT_MS)

    def tile(self, label: str):
        booth = next(b for b in self.site.booths if b.label == label)
        return self.page.locator(f'.tile[data-booth-id="{booth.id}"]')

    def fragment(self, name: str):
        return self.page.locator(f"#{name}-{self.site.id}")


def tap(locator) -> None:
    locator.tap()


def shot(page: Page, path, *, full_page: bool = False) -> None:
    # caret="initial": hiding the caret takes an inline style, which the CSP refuses.
    page.screenshot(path=path, full_page=full_page, caret="initial")


def check_in(tablet: FloorScreen, code: str, handle: str | None = None) -> None:
    """Check a code in on the tablet's form and wait for the panel as it stays."""
    page = tablet.page
    page.get_by_label("Client code").fill(code)
    if handle:
        page.get_by_label("Handle").fill(handle)
    tap(page.get_by_test_id("checkin-submit"))
    expect(page.get_by_test_id("checkin-done")).to_contain_text(code)
    # The referral offers load into their line in the check-in panel after it: wait for them,
    # so that what a test looks at next is the panel as it stays.
    expect(page.locator('#checkin [hx-trigger="load"]')).to_have_count(0)


def assign(tablet: FloorScreen, code: str, booth: str) -> None:
    """Tap a waiting client, then a free booth's Assign here."""
    page = tablet.page
    tap(tablet.fragment("queue").locator(f'[data-code="{code}"]'))
    expect(page.locator("[data-assign-hint]")).to_contain_text(code)
    tap(tablet.tile(booth).get_by_role("button", name="Assign here"))
    expect(tablet.tile(booth)).to_have_class("tile tile--occupied")
