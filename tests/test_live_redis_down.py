"""Redis down: sign-in, PIN unlock and taps go on, rate limits count in this process, and
the dashboards and ``/health`` say the live channel is degraded.

"Down" is a Redis URL where nothing listens (refused at once), or a server that accepts a
connection and never answers (each wait bounded by the Redis timeouts).
"""

import logging
import socket
import threading
import time

import pytest
from conftest import AuthActions
from factories import PIN, make_booth, make_site, make_staff

from srs import live
from srs.common import utcnow
from srs.config import REDIS_TIMEOUTS
from srs.jobs import heartbeat

# Nothing listens on port 1: every connection is refused at once.
DEAD_REDIS = "redis://127.0.0.1:1/0"
FLOOR = "/sites/east/floor"
LIMITER_FELL_BACK = "Rate limit storage unreachable"


def on_redis(url: str) -> dict:
    """What ``SRS_REDIS_URL=url`` in the environment sets: the live channel and the rate
    limits' storage (the app derives the second from the first when it is not given)."""
    return {"SRS_REDIS_URL": url, "RATELIMIT_STORAGE_URI": url}


@pytest.fixture
def redis_down(app_with):
    """The app with its Redis down, and a signed-out browser on it."""
    app = app_with(**on_redis(DEAD_REDIS), SRS_LOGIN_RATE_LIMIT="3 per minute")
    return app, app.test_client()


@pytest.fixture
def east():
    site = make_site(slug="east")
    make_booth(site, label="B1")
    return site, make_staff(site, role="nurse", username="nina")


def test_sign_in_pin_unlock_and_taps_work_while_redis_is_down(redis_down, east):
    app, client = redis_down
    auth = AuthActions(client)

    assert auth.login("nina").headers["Location"] == "/start"
    assert auth.post("/lock", {"next": FLOOR}).status_code == 302  # cuts the screen's sockets
    unlocked = auth.post("/unlock", {"pin": PIN, "next": FLOOR})
    assert unlocked.status_code == 302
    assert unlocked.headers["Location"] == FLOOR
    assert client.get(FLOOR).status_code == 200
    tap = auth.post(f"{FLOOR}/check-in", {"code": "F-ABCD-1984"},
                    headers={"HX-Request": "true", "Idempotency-Key": "redis-down-1"})
    assert tap.status_code == 200
    assert "F-ABCD-1984" in tap.get_data(as_text=True)
    assert live.wait_until_published()  # its announcement went out (to this instance) too


def test_rate_limits_count_in_this_process_and_say_so_once(redis_down, east, caplog):
    _app, client = redis_down
    auth = AuthActions(client)
    caplog.set_level(logging.WARNING)

    tries = [auth.login("nina", password="wrong").status_code for _ in range(4)]

    assert tries == [401, 401, 401, 429]  # 3 per minute, counted without Redis
    said = [r for r in caplog.records if LIMITER_FELL_BACK in r.getMessage()]
    assert len(said) == 1


def test_health_and_the_dashboard_say_the_live_channel_is_degraded(redis_down, east):
    _app, client = redis_down
    site, _nina = east
    make_staff(site, role="supervisor", username="sue")
    heartbeat(now=utcnow())

    answer = client.get("/health")
    assert answer.status_code == 503
    assert answer.get_json() == {"status": "degraded", "components": {
        "database": {"status": "ok"}, "redis": {"status": "down"},
        "scheduler": answer.get_json()["components"]["scheduler"]}}
    assert answer.get_json()["components"]["scheduler"]["status"] == "ok"

    AuthActions(client).login("sue")
    page = client.get("/supervise").get_data(as_text=True)
    assert 'data-testid="live-channel-degraded"' in page
    assert 'data-testid="scheduler-down"' not in page
    # Asked again in the background: the banner stays, and the page re-reads the floor.
    status = client.get("/supervise/status?was=degraded",
                        headers={"HX-Request": "true", "X-SRS-Background": "1"})
    assert 'data-testid="live-channel-degraded"' in status.get_data(as_text=True)
    assert status.headers["HX-Trigger"] == "srs:resync"


def test_without_redis_there_is_no_live_channel_to_lose(client, auth):
    site = make_site(slug="east")
    make_staff(site, role="supervisor", username="sue")
    heartbeat(now=utcnow())

    health = client.get("/health").get_json()
    assert health["status"] == "ok" and "redis" not in health["components"]

    auth.login("sue")
    page = client.get("/supervise").get_data(as_text=True)
    assert 'data-testid="live-channel-degraded"' not in page
    # Asked every few seconds, as a background refresh: it never keeps a screen unlocked.
    assert 'hx-trigger="every 10s"' in page and '{"X-SRS-Background": "1"}' in page
    status = client.get("/supervise/status", headers={"HX-Request": "true"})
    assert "HX-Trigger" not in status.headers
    # The first answer after an outage ends makes the page re-read once.
    assert client.get("/supervise/status?was=degraded").headers["HX-Trigger"] == "srs:resync"


@pytest.fixture(scope="module")
def silent_redis():
    """A server that accepts connections and never answers: a Redis that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:  # closed: the module is done
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()
    for connection in accepted:  # anything still waiting on it gets its answer: gone
        connection.close()


def _timed(request) -> tuple[float, object]:
    """Run ``request`` in a thread; how long it took (None if it is still waiting after 5 s)."""
    result = {}

    def run():
        start = time.monotonic()
        result["response"] = request()
        result["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    return result.get("seconds"), result.get("response")


@pytest.fixture
def redis_hangs(app_with, silent_redis):
    return app_with(**on_redis(silent_redis))


def test_a_redis_that_hangs_holds_a_sign_in_or_a_lock_for_a_second_at_most(redis_hangs, east):
    auth = AuthActions(redis_hangs.test_client())
    bound = 2 * REDIS_TIMEOUTS["socket_timeout"] + 1  # two attempts, and the request itself

    seconds, response = _timed(lambda: auth.login("nina"))  # the limiter asks Redis
    assert seconds is not None and seconds < bound, "the sign-in waited on Redis"
    assert response.status_code == 302
    seconds, response = _timed(lambda: auth.post("/lock", {"next": FLOOR}))  # publishes
    assert seconds is not None and seconds < bound, "the lock waited on Redis"
    assert response.status_code == 302
