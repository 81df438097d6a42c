"""Scaled out: two instances on one database, Redis as the message queue.

A change committed through one instance reaches a screen connected to the
other, and a logout on one, a token revoked or a person deactivated, cuts that
person's sockets on the other.
"""

import time

import pytest
import requests
from conftest import BESIDE_A_SERVER, LiveServer, app_config, flask_cli, server_env
from factories import make_site, make_staff
from live_helpers import WAIT_SECONDS, Screen, WebSession, api_token, set_out_of_service

from srs import create_app
from srs.extensions import db

pytestmark = pytest.mark.live
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def two_instances(databases, tmp_path):
    url = databases.new_migrated("scale")
    # One runs the scheduler, as a deployment would run it once.
    first = LiveServer(url, tmp_path / "first.log", SRS_REDIS_URL=REDIS_URL, SRS_SCHEDULER="on")
    second = LiveServer(url, tmp_path / "second.log", SRS_REDIS_URL=REDIS_URL,
                        SRS_SCHEDULER="off")
    app = create_app(app_config(url, **BESIDE_A_SERVER))
    screens = []
    with app.app_context():
        first.start()
        second.start()
        yield first, second, screens
        for screen in screens:
            screen.close()
        first.stop()
        second.stop()
        db.session.remove()
        db.engine.dispose()


def test_a_change_on_one_instance_reaches_screens_on_the_other(two_instances):
    """Every kind of screen on the other instance hears it, a floor tablet that connected
    after the first change too: each instance says in Redis which screens it holds, and the
    one that made the change renders each kind's fragments for them."""
    first, second, screens = two_instances
    site = make_site(booths=2)
    nurse = make_staff(site, role="nurse")
    supervisor = make_staff(site, role="supervisor")
    on_second = Screen(second.url).connect(cookie=WebSession(second.url, nurse.username).cookie)
    watching = Screen(second.url).connect(
        cookie=WebSession(second.url, supervisor.username).cookie, auth={"view": "watch"})
    screens += [on_second, watching]
    token = api_token(nurse)

    set_out_of_service(first.url, token, site.booths[0], "Needle bin full")

    assert on_second.wait_for_changes(1) == [{"topic": "board", "site_id": site.id}]
    board = f"board-{site.id}"
    [pushed] = watching.wait_for_fragments(1)
    assert "Needle bin full" in pushed["html"][board]
    assert f"/sites/{site.slug}/floor/" not in pushed["html"][board]  # no tablet's actions

    tablet = Screen(second.url).connect(cookie=WebSession(second.url, nurse.username).cookie,
                                        auth={"view": "floor"})
    screens.append(tablet)
    set_out_of_service(first.url, token, site.booths[0], None)

    [pushed] = tablet.wait_for_fragments(1)
    assert f"/sites/{site.slug}/floor/board" in pushed["html"][board]
    assert "Needle bin full" not in pushed["html"][board]


def test_logout_on_one_instance_ends_the_screen_on_the_other(two_instances):
    first, second, screens = two_instances
    site = make_site()
    nurse = make_staff(site, role="nurse")
    web = WebSession(first.url, nurse.username)
    # The same browser's socket landed on the other instance (no sticky proxy here).
    on_second = Screen(second.url).connect(cookie=web.cookie)
    screens.append(on_second)

    assert web.post("/logout").status_code == 302

    assert on_second.disconnected.wait(WAIT_SECONDS), "the other instance cut the socket"
    assert on_second.session_ended == [{"why": "logout"}]


# How soon taking access away must reach a socket open on another instance.
CUT_WITHIN_SECONDS = 2.0


def cut_since(screen, started: float) -> float:
    """Wait until ``screen`` is cut, at most CUT_WITHIN_SECONDS after ``started``
    (time.monotonic()); return how long after ``started`` that was."""
    left = max(0.0, started + CUT_WITHIN_SECONDS - time.monotonic())
    assert screen.disconnected.wait(left), "the other instance cut the socket in time"
    return time.monotonic() - started


def test_a_token_revoked_or_a_person_deactivated_on_one_instance_is_cut_on_the_other(
        two_instances):
    first, second, screens = two_instances
    site = make_site()
    integrator = make_staff(site, role="nurse")
    nurse = make_staff(site, role="nurse")
    token = api_token(integrator)
    integration = Screen(second.url).connect(auth={"token": token})
    # Her tablet signed in through one instance, its socket on the other; her token's too.
    tablet = Screen(second.url).connect(cookie=WebSession(first.url, nurse.username).cookie)
    nurses_integration = Screen(second.url).connect(auth={"token": api_token(nurse)})
    screens.extend([integration, tablet, nurses_integration])
    headers = {"Authorization": f"Bearer {token}"}
    (listed,) = requests.get(f"{first.url}/api/v1/tokens", headers=headers,
                             timeout=WAIT_SECONDS).json()

    started = time.monotonic()
    revoked = requests.post(f"{first.url}/api/v1/tokens/{listed['id']}/revoke",
                            headers=headers, timeout=WAIT_SECONDS)
    assert revoked.status_code == 200, revoked.text

    assert cut_since(integration, started) < CUT_WITHIN_SECONDS
    assert integration.session_ended == [{"why": "revoked"}]
    assert not tablet.disconnected.is_set() and not nurses_integration.disconnected.is_set()

    # An admin deactivates her from the command line, configured as the instances are: the
    # command commits, cuts and exits (it takes seconds to start, none of them counted).
    deactivated = flask_cli(["srs", "user", "deactivate", nurse.username],
                            server_env(first.database_url, SRS_REDIS_URL=REDIS_URL))
    finished = time.monotonic()
    assert deactivated.returncode == 0, deactivated.stderr

    assert cut_since(tablet, finished) < CUT_WITHIN_SECONDS
    assert cut_since(nurses_integration, finished) < CUT_WITHIN_SECONDS
    assert tablet.session_ended == [{"why": "deactivated"}]
