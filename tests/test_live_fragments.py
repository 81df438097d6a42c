"""Live fragments: each change is rendered once and pushed, as the bytes a GET answers;
reads never queue behind a writer on SQLite; today's figures are counted by the database."""

import re
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from factories import ACTOR, make_booth, make_site, make_staff
from routes import bearer
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from srs import live
from srs.booths import service
from srs.booths import views as booth_views
from srs.booths.models import Booth, Visit
from srs.extensions import db

# The publisher renders on its own thread beside the test's taps, and a read is tried beside
# a second connection's writer: real commits, not one rolled-back connection.
pytestmark = pytest.mark.commits

HTMX = {"HX-Request": "true"}
# One moment for the push and the GET alike: their countdowns are then the same bytes.
FIXED_NOW = datetime(2026, 3, 2, 15, 30, 12, 345000, tzinfo=UTC)


@pytest.fixture
def floor(app, client, auth, monkeypatch):
    monkeypatch.setattr(booth_views, "utcnow", lambda: FIXED_NOW)
    site = make_site(name="East Side", slug="east")
    for n, label in enumerate(("B1", "B2")):
        make_booth(site, label=label, position=n)
    nurse = make_staff(site, role="nurse", username="nina")
    assert auth.login(nurse.username).status_code == 302
    return site


def _pushed(socket) -> dict:
    """The html of the last ``fragments`` message this socket received."""
    messages = [m for m in socket.get_received() if m["name"] == "fragments"]
    assert messages, "the change's fragments were pushed"
    return messages[-1]["args"][0]


_VERSION = re.compile(r' data-version="\d*"')


def test_a_screen_that_only_applies_pushes_shows_what_a_get_answers(floor, client, auth,
                                                                    socket_client):
    """Each floor action pushes only the fragments it changed; a tablet and a dashboard
    that swap in nothing but those pushes show, after every step, the bytes a fresh GET
    answers (their version aside: an untouched fragment keeps the version it came with)."""
    tablet = socket_client(auth={"view": "floor"})
    watcher = socket_client(auth={"view": "watch"})
    shown = {}
    for prefix in ("/floor", ""):
        for name in ("board", "queue", "aftercare"):
            shown[prefix, name] = client.get(f"/sites/{floor.slug}{prefix}/{name}",
                                             headers=HTMX).get_data(as_text=True)
    tablet.get_received(), watcher.get_received()
    booth = db.session.execute(
        db.select(Booth).filter_by(site_id=floor.id, label="B1")).scalar_one()
    steps = [
        ("check in", lambda: auth.post(f"/sites/{floor.slug}/floor/check-in", headers=HTMX,
                                       data={"code": "F-ABCD-1984", "handle": "Sparrow"}),
         {"queue"}),
        ("assign", lambda visit: auth.post(
            f"/sites/{floor.slug}/floor/visits/{visit}/booth/{booth.id}", headers=HTMX),
         {"queue", "board"}),
        ("record use", lambda visit: auth.post(
            f"/sites/{floor.slug}/floor/visits/{visit}/consumption", headers=HTMX,
            data={"substances": "fentanyl", "route": "injects", "fentanyl_strip": "positive",
                  "benzo_strip": "not_done"}),
         {"board"}),
        ("leaves booth", lambda visit: auth.post(
            f"/sites/{floor.slug}/floor/visits/{visit}/observation", headers=HTMX),
         {"board", "aftercare"}),
        ("cleaned", lambda visit: auth.post(
            f"/sites/{floor.slug}/floor/booths/{booth.id}/clean", headers=HTMX), {"board"}),
        ("discharge", lambda visit: auth.post(
            f"/sites/{floor.slug}/floor/visits/{visit}/discharge", headers=HTMX,
            data={"reason": "declined_aftercare"}),  # before minimum observation ends
         {"aftercare"}),
    ]
    visit = None
    for step, act, changed in steps:
        response = act() if visit is None else act(visit)
        assert response.status_code == 200, (step, response.get_data(as_text=True)[:300])
        response.close()  # a real server closes the response once sent: then the push goes
        assert live.wait_until_published()
        if visit is None:
            visit = db.session.execute(db.select(Visit.id)).scalar_one()
        for prefix, socket in (("/floor", tablet), ("", watcher)):
            received = socket.get_received()
            # One message per change and screen: the fragments it touched, and its topics.
            assert [m["name"] for m in received] == ["fragments"], step
            pushes = [m["args"][0] for m in received]
            assert changed <= set(pushes[0]["topics"]), step
            assert {key.rsplit("-", 1)[0] for key in pushes[0]["html"]} == changed, step
            for key, html in pushes[0]["html"].items():
                shown[prefix, key.rsplit("-", 1)[0]] = html
            for name in ("board", "queue", "aftercare"):
                got = client.get(f"/sites/{floor.slug}{prefix}/{name}", headers=HTMX)
                assert (_VERSION.sub("", shown[prefix, name])
                        == _VERSION.sub("", got.get_data(as_text=True))), (step, prefix, name)
            if step == "leaves booth":
                assert "F-ABCD-1984" in shown[prefix, "aftercare"]
                assert 'data-state="needs_cleaning"' in shown[prefix, "board"]
    assert "Nobody in after-care." in shown["", "aftercare"]
    assert "Nobody is waiting." in shown["", "queue"]


def test_a_pushed_fragment_is_what_the_get_answers_for_that_screen(floor, client, auth,
                                                                    socket_client):
    tablet = socket_client(auth={"view": "floor"})
    watcher = socket_client(auth={"view": "watch"})
    tablet.get_received(), watcher.get_received()

    response = auth.post(f"/sites/{floor.slug}/floor/check-in",
                         data={"code": "F-ABCD-1984", "handle": "Sparrow"}, headers=HTMX)
    assert response.status_code == 200
    response.close()  # a real server closes the response once sent: then the push goes
    assert live.wait_until_published()
    pushed = {"/floor": _pushed(tablet), "": _pushed(watcher)}
    for prefix, message in pushed.items():
        assert set(message["html"]) == {f"queue-{floor.id}"}  # a check-in moves nothing else
        assert "F-ABCD-1984" in message["html"][f"queue-{floor.id}"]
        got = client.get(f"/sites/{floor.slug}{prefix}/queue", headers=HTMX)
        assert got.get_data(as_text=True) == message["html"][f"queue-{floor.id}"]
        assert f'data-version="{message["version"]}"' in got.get_data(as_text=True)

    # The tablet's variant has the floor's actions; the watcher's is read-only.
    queue = f"queue-{floor.id}"
    assert 'data-testid="left-queue"' in pushed["/floor"]["html"][queue]
    assert 'data-testid="left-queue"' not in pushed[""]["html"][queue]


def test_a_change_no_fragment_shows_brings_its_topic_and_nothing_to_fetch(
        floor, socket_client):
    watcher = socket_client(auth={"view": "watch"})
    integration = socket_client()  # names no view, shows no fragments: plain hints
    watcher.get_received(), integration.get_received()
    live.announce(floor.id, "stock")
    db.session.commit()  # an announcement goes out with its change's commit
    received = watcher.get_received()
    assert [m["name"] for m in received] == ["fragments"]
    assert received[0]["args"][0]["topics"] == ["stock"]  # the stock page re-fetches on it
    assert received[0]["args"][0]["html"] == {}  # nothing on the board changed
    hints = integration.get_received()
    assert [(m["name"], m["args"][0]["topic"], m["args"][0]["pushed"]) for m in hints] == [
        ("changed", "stock", True)]


def test_an_instance_says_in_redis_which_kinds_of_screen_it_holds_until_the_last_leaves(
        app_with):
    """Every instance renders a site's floor fragments only while a floor tablet is open on
    some instance: each says so in Redis when the first of a kind joins and unsays it when
    the last leaves (here two tablets' sockets joining and leaving the site's floor room, as
    the Socket.IO server moves them)."""
    redis_url = "redis://127.0.0.1:6379/0"
    app = app_with(SRS_REDIS_URL=redis_url, RATELIMIT_STORAGE_URI=redis_url)
    manager = app.extensions[live.LIVE_CHANNEL]
    site = make_site(slug="east")
    store = redis.Redis.from_url(redis_url, decode_responses=True)

    def said() -> set[str]:  # what another instance reads
        hash_key = f"{manager.channel}:screens:{site.id}"
        return {field.partition("|")[0] for field in store.hgetall(hash_key)}

    tablets = [manager.connect(f"tablet-{n}", "/") for n in range(2)]
    try:
        for sid in tablets:
            manager.enter_room(sid, "/", f"site:{site.id}:floor")
        assert "floor" in said()
        assert "floor" in manager.screens_open(site.id)
        manager.basic_disconnect(tablets[0], "/")
        assert "floor" in said()  # the other tablet is still open
        manager.basic_disconnect(tablets[1], "/")
        assert "floor" not in said()
        assert "floor" not in manager.screens_open(site.id)
    finally:
        for sid in tablets:
            if manager.is_connected(sid, "/"):
                manager.basic_disconnect(sid, "/")


def test_a_change_rolled_back_is_never_announced(floor, socket_client, monkeypatch):
    """A refused or failed unit of work tells no screen about what did not happen."""
    watcher = socket_client(auth={"view": "watch"})
    integration = socket_client()
    watcher.get_received(), integration.get_received()
    live.announce(floor.id, "stock")
    live.alarm({"id": 1, "kind": "unresponsive"}, site_id=floor.id)
    db.session.rollback()
    # A refusal inside the service rolls back its announcement with its change.
    monkeypatch.setattr(service, "record", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("the audit write failed")))
    with pytest.raises(RuntimeError):
        service.check_in(floor, code="F-ABCD-1984", handle=None, actor=ACTOR,
                         actor_roles={"nurse"}, now=FIXED_NOW)
    db.session.rollback()
    db.session.commit()  # a later commit does not send what was rolled back
    assert live.wait_until_published()
    assert watcher.get_received() == [] and integration.get_received() == []
    assert db.session.scalar(db.select(db.func.count(Visit.id))) == 0


def test_each_push_carries_a_higher_version(floor, socket_client):
    watcher = socket_client(auth={"view": "watch"})  # the nurse: no figures for her
    watcher.get_received()
    first = service.check_in(floor, code="F-ABCD-1984", handle=None, actor=ACTOR,
                             actor_roles={"nurse"}, now=FIXED_NOW)
    service.leave_queue(first, reason="left", actor=ACTOR, now=FIXED_NOW)
    pushed = [m["args"][0] for m in watcher.get_received() if m["name"] == "fragments"]
    assert len(pushed) == 2 and pushed[0]["version"] < pushed[1]["version"]
    assert all(f"today-{floor.id}" not in message["html"] for message in pushed)


def test_a_supervisors_dashboard_gets_todays_figures_as_its_get_answers(
        app, client, auth, socket_client, monkeypatch):
    monkeypatch.setattr(booth_views, "utcnow", lambda: FIXED_NOW)
    site = make_site(slug="west")
    supervisor = make_staff(site, role="supervisor", username="sue")
    assert auth.login(supervisor.username).status_code == 302
    dashboard = socket_client(auth={"view": "watch"})
    dashboard.get_received()
    service.check_in(site, code="M-WXYZ-1990", handle=None, actor=ACTOR,
                     actor_roles={"nurse"}, now=FIXED_NOW)
    received = dashboard.get_received()
    assert [m["name"] for m in received] == ["fragments"]  # the queue and figures, together
    pushed = received[0]["args"][0]["html"]
    assert set(pushed) == {f"queue-{site.id}", f"today-{site.id}"}
    today = pushed[f"today-{site.id}"]
    assert today == client.get(f"/sites/{site.slug}/today",
                               headers=HTMX).get_data(as_text=True)
    assert 'data-testid="figure-visits">1<' in today


def test_a_failed_render_still_sends_the_hint(floor, socket_client, monkeypatch):
    watcher = socket_client(auth={"view": "watch"})
    watcher.get_received()

    def broken(_template, **_context):
        raise RuntimeError("template broke")

    monkeypatch.setattr(booth_views, "render_template", broken)
    service.check_in(floor, code="F-ABCD-1984", handle=None, actor=ACTOR,
                     actor_roles={"nurse"}, now=FIXED_NOW)
    received = watcher.get_received()
    assert [m["name"] for m in received] == ["changed"]
    assert received[0]["args"][0]["pushed"] is False


def test_a_read_does_not_wait_for_a_writer(floor, client, app):
    """A screen's board read goes through while another tablet's write transaction holds
    the write lock (SQLite) or locks the visits and booths against writers (PostgreSQL)."""
    holding, release = threading.Event(), threading.Event()
    gave_up = []
    url = f"/sites/{floor.slug}/floor/board"
    database = db.engine.url
    db.session.commit()  # this test's own session holds nothing either

    def writer():  # another tablet's transaction, mid-way
        engine = None
        if database.get_backend_name() == "sqlite":
            conn = sqlite3.connect(database.database, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
        else:
            engine = create_engine(database, poolclass=NullPool)
            conn = engine.raw_connection()  # psycopg opens the transaction itself
            conn.cursor().execute("LOCK TABLE visit, booth IN EXCLUSIVE MODE")
        try:
            holding.set()
            if not release.wait(20):
                gave_up.append(True)  # the read never came back while the lock was held
        finally:
            conn.close()  # closing a connection rolls its transaction back
            if engine is not None:
                engine.dispose()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(5)
        response = client.get(url, headers={**HTMX, "X-SRS-Background": "1"})
        # A read queued behind the writer would have failed (SQLite's busy timeout, 5 s,
        # "database is locked") or waited until the writer gave up.
        assert response.status_code == 200
        assert not gave_up and not release.is_set()
    finally:
        release.set()
        thread.join()


def test_todays_figures_match_a_hand_count(app):
    site = make_site(slug="count", booths=0)
    booths = [make_booth(site, label=f"B{n}", position=n) for n in range(3)]
    now = datetime.now(UTC).replace(microsecond=0)
    start = service._start_of_day(site, now)
    # Yesterday's visit counts for nothing today.
    old = service.check_in(site, code="F-OLDS-1970", handle=None, actor=ACTOR,
                           actor_roles={"nurse"}, now=start - timedelta(hours=2))
    service.leave_queue(old, reason="left", actor=ACTOR, now=start - timedelta(hours=1))
    t0 = max(start + timedelta(seconds=1), now - timedelta(minutes=50))
    waits = []
    a = service.check_in(site, code="F-AAAA-1980", handle=None, actor=ACTOR,
                         actor_roles={"nurse"}, now=t0)
    service.assign_booth(a, booths[0], actor=ACTOR, now=t0 + timedelta(minutes=4))
    waits.append(4 * 60)
    b = service.check_in(site, code="F-BBBB-1980", handle=None, actor=ACTOR,
                         actor_roles={"nurse"}, now=t0 + timedelta(minutes=1))
    service.assign_booth(b, booths[1], actor=ACTOR, now=t0 + timedelta(minutes=11, seconds=40))
    waits.append(10 * 60 + 40)
    service.start_observation(b, actor=ACTOR, now=t0 + timedelta(minutes=20))
    service.discharge(b, reason=None, actor=ACTOR, now=t0 + timedelta(minutes=30))
    # The same client again later: two visits, one client.
    b2 = service.check_in(site, code="F-BBBB-1980", handle=None, actor=ACTOR,
                          actor_roles={"nurse"}, now=t0 + timedelta(minutes=31))
    service.check_in(site, code="F-CCCC-1980", handle=None, actor=ACTOR,
                     actor_roles={"nurse"}, now=t0 + timedelta(minutes=32))
    service.leave_queue(b2, reason="left", actor=ACTOR, now=t0 + timedelta(minutes=33))

    board = service.site_board(site, now=t0 + timedelta(minutes=40))
    assert board["today"] == {
        "visits": 4, "unique_clients": 3, "waiting_now": 1,
        "average_wait_minutes": round(sum(waits) / len(waits) / 60, 1),
        "booths_in_use": 1, "booths_total": 3}


def test_screens_hear_a_change_once_the_running_tap_is_answered(floor, app, socket_client,
                                                                monkeypatch):
    """The publisher leaves the worker to a tap being answered: another change reaches the
    screens once that tap is done, or after TAP_WAIT_SECONDS should taps never stop."""
    watcher = socket_client(auth={"view": "watch"})
    watcher.get_received()
    inside, release = threading.Event(), threading.Event()
    check_in = service.check_in

    def slow_check_in(*args, **kwargs):
        inside.set()
        release.wait(20)
        return check_in(*args, **kwargs)

    monkeypatch.setattr(service, "check_in", slow_check_in)
    headers = bearer(make_staff(floor, role="nurse", username="tess"))
    site_id, answers = floor.id, []
    db.session.commit()  # this test's own session holds no lock while the tablets tap

    def tap():
        response = app.test_client().post(f"/api/v1/sites/{site_id}/visits", headers=headers,
                                          json={"code": "F-WXYZ-1990"})
        answers.append(response.status_code)
        response.close()

    def another_tablets_change():
        with app.app_context():
            live.announce(site_id, "board")

    def pushed() -> list[dict]:
        return [m["args"][0] for m in watcher.get_received() if m["name"] == "fragments"]

    monkeypatch.setattr(live, "TAP_WAIT_SECONDS", 30.0)
    tablet = threading.Thread(target=tap)
    tablet.start()
    try:
        assert inside.wait(10)
        other = threading.Thread(target=another_tablets_change)
        other.start()  # another tablet's change, announced while the tap runs
        time.sleep(0.5)
        assert pushed() == [], "the screens waited for the tap"
    finally:
        release.set()
    tablet.join(10)
    other.join(10)
    assert answers == [201]
    assert live.wait_until_published()
    assert any("board" in message["topics"] for message in pushed())

    # A tap that never ends holds the screens back no longer than TAP_WAIT_SECONDS.
    monkeypatch.setattr(live, "TAP_WAIT_SECONDS", 0.3)
    inside.clear(), release.clear()
    tablet = threading.Thread(target=tap)
    tablet.start()
    try:
        assert inside.wait(10)
        started = time.monotonic()
        live.announce(site_id, "board")
        waited = time.monotonic() - started
        assert 0.25 <= waited < 10
        assert [message["topics"] for message in pushed()] == [["board"]]
    finally:
        release.set()
        tablet.join(10)
