"""Socket.IO on the real server: who may connect, who hears a site's changes, and when the
server cuts a socket (logout, lock)."""

import pytest
from factories import make_site, make_staff
from live_helpers import WAIT_SECONDS, Screen, WebSession, api_token, set_out_of_service

pytestmark = pytest.mark.live


@pytest.fixture
def screens(live_server):
    """Make Socket.IO clients of the live server; each is closed after the test."""
    made = []

    def make() -> Screen:
        screen = Screen(live_server.url)
        made.append(screen)
        return screen

    yield make
    for screen in made:
        screen.close()


def test_anonymous_socket_is_refused(live_server, screens):
    assert screens().refused() == "unauthorized"


def test_signed_in_screen_hears_its_site_change(live_server, screens):
    site = make_site(booths=2)
    booth = site.booths[0]
    nurse = make_staff(site, role="nurse")
    screen = screens().connect(cookie=WebSession(live_server.url, nurse.username).cookie)

    booth_after = set_out_of_service(live_server.url, api_token(nurse), booth, "Needle bin full")

    assert booth_after["out_of_service_reason"] == "Needle bin full"
    assert screen.wait_for_changes(1) == [{"topic": "board", "site_id": site.id}]


def test_staff_of_another_site_does_not_hear_it(live_server, screens):
    here, there = make_site(booths=1), make_site(booths=1)
    nurse_here = make_staff(here, role="nurse")
    nurse_there = make_staff(there, role="nurse")
    screen_here = screens().connect(cookie=WebSession(live_server.url, nurse_here.username).cookie)
    screen_there = screens().connect(
        cookie=WebSession(live_server.url, nurse_there.username).cookie)

    set_out_of_service(live_server.url, api_token(nurse_here), here.booths[0], "Broken light")
    assert screen_here.wait_for_changes(1) == [{"topic": "board", "site_id": here.id}]
    # A later change at its own site reaches the other screen; one socket delivers in order,
    # so had the first change been sent to it, it would have arrived before this one.
    set_out_of_service(live_server.url, api_token(nurse_there), there.booths[0], "Flooded")
    assert screen_there.wait_for_changes(1) == [{"topic": "board", "site_id": there.id}]
    assert {change["site_id"] for change in screen_here.changed} == {here.id}
    assert screen_here.wait_for_changes(1) == [{"topic": "board", "site_id": here.id}]


def test_bearer_token_is_accepted_and_hears_its_sites(live_server, screens):
    site = make_site(booths=1)
    integration = make_staff(site, role="supervisor")
    token = api_token(integration)
    screen = screens().connect(auth={"token": token})

    set_out_of_service(live_server.url, token, site.booths[0], "Sensor fault")

    assert screen.wait_for_changes(1) == [{"topic": "board", "site_id": site.id}]


def test_bad_bearer_token_is_refused(live_server, screens):
    site = make_site()
    api_token(make_staff(site, role="supervisor"))
    assert screens().refused(auth={"token": "srs_not-a-real-token"}) == "unauthorized"


def test_logout_cuts_the_socket_and_the_old_cookie_stays_out(live_server, screens):
    site = make_site()
    nurse = make_staff(site, role="nurse")
    web = WebSession(live_server.url, nurse.username)
    old_cookie = web.cookie
    screen = screens().connect(cookie=old_cookie)

    assert web.post("/logout").status_code == 302

    assert screen.disconnected.wait(WAIT_SECONDS), "the server cut the socket"
    assert screen.disconnect_reason == screen.client.reason.SERVER_DISCONNECT
    assert screen.session_ended == [{"why": "logout"}]
    assert screens().refused(cookie=old_cookie) == "unauthorized"


def test_lock_cuts_the_socket_and_a_locked_screen_cannot_reconnect(live_server, screens):
    site = make_site()
    nurse = make_staff(site, role="nurse")
    web = WebSession(live_server.url, nurse.username)
    screen = screens().connect(cookie=web.cookie)

    response = web.post("/lock")
    assert response.status_code == 302
    assert "/lock" in response.headers["Location"]

    assert screen.disconnected.wait(WAIT_SECONDS), "the server cut the socket"
    assert screen.disconnect_reason == screen.client.reason.SERVER_DISCONNECT
    assert screen.session_ended == [{"why": "locked"}]
    assert screens().refused(cookie=web.cookie) == "locked"
