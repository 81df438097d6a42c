"""Scaled out: two instances on one database, Redis as the message queue.

A change committed through one instance reaches a screen connected to the
other, and a logout on one cuts that person's socket on the other.
"""

import pytest
from conftest import BESIDE_A_SERVER, LiveServer, app_config
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
    first, second, screens = two_instances
    site = make_site(booths=2)
    nurse = make_staff(site, role="nurse")
    on_second = Screen(second.url).connect(cookie=WebSession(second.url, nurse.username).cookie)
    screens.append(on_second)

    set_out_of_service(first.url, api_token(nurse), site.booths[0], "Needle bin full")

    assert on_second.wait_for_changes(1) == [{"topic": "board", "site_id": site.id}]


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
