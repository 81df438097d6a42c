"""All Socket.IO wiring: who may connect, which rooms they join, what is announced.

Sockets carry hints and the fragments a screen would GET, never more:
``fragments {"site_id", "version", "html", "topics"}`` tells a screen what
changed and brings the rendered fragments of that change that it shows (one
message per change and screen); ``changed {"topic", "site_id", "version",
"pushed"}`` tells a socket that shows no fragments (an integration), and every
socket when rendering failed (``pushed`` false: a screen then re-fetches over
authenticated HTTP, as it does on reconnect). Rooms: ``site:<id>`` for every
site the person has a role at, ``site:<id>:<kind>`` for one kind of screen,
``login:<key>`` for one login session so that logout and lock can cut exactly
that screen's sockets (a wall display's key is ``display:<id>``, an API token's
``token:<id>`` and a person's, every socket of theirs, ``staff:<id>``, so that revoking a
display or a token, or deactivating or removing a person, cuts their sockets the same way),
``staff:<id>`` so that a level-3 alarm reaches the on-call supervisor. ``alert`` events
carry what a screen needs to sound its alarm at once; the alert list itself is re-fetched.
"""

import hashlib
import logging
import queue
import threading
import time

import redis
import socketio as socketio_pkg
from flask import current_app, g, has_request_context, request
from flask_socketio import join_room
from sqlalchemy import event, make_url
from sqlalchemy.orm import Session

from srs.config import REDIS_TIMEOUTS
from srs.extensions import READ_METHODS, db, socketio

log = logging.getLogger(__name__)


def message_channel(database_url: str) -> str:
    """The Redis channel of one deployment: instances sharing a database share it.

    Built from the database's backend, host, port and name only (no driver, user
    or password), so instances that spell the URL differently still meet, and
    two deployments on one Redis (a training copy beside the live one) never
    hear each other's changes.
    """
    url = make_url(database_url)
    where = f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}/{url.database or ''}"
    return "srs-" + hashlib.sha256(where.encode()).hexdigest()[:16]


LOGIN_ROOM_PREFIX = "login:"


def _cut_participants(manager, room: str, namespace: str) -> None:
    for participant in list(manager.get_participants(namespace, room)):
        sid = participant[0] if isinstance(participant, tuple) else participant
        manager.server.disconnect(sid, namespace=namespace, ignore_queue=True)


class LocalManager(socketio_pkg.Manager):
    """One process: closing a login room disconnects its sockets."""

    def close_room(self, room, namespace=None):
        if room.startswith(LOGIN_ROOM_PREFIX):
            _cut_participants(self, room, namespace or "/")
        super().close_room(room, namespace)


# After Redis failed to answer, nothing asks it again for this long: a tap, an alarm or a
# sign-out never waits on a Redis that is down, and it is heard again within seconds of its
# return.
REDIS_RETRY_SECONDS = 2.0
# python-socketio logs every failed publish and every failed subscribe, seconds apart for as
# long as Redis is down; the manager below says it once when the channel degrades and once
# when it is back.
_quiet_log = logging.getLogger(f"{__name__}.redis")
_quiet_log.setLevel(logging.CRITICAL)


class SharedRedisManager(socketio_pkg.RedisManager):
    """Several instances: a login room closed on one disconnects its sockets on all of them.

    python-socketio can disconnect one socket across instances only by its id;
    the close-room message reaches every instance, and each cuts its own.

    When Redis is down, the instance goes on alone: python-socketio delivers every emit to
    this instance's own sockets before publishing it, so its screens still hear its own
    changes; what goes to or comes from the other instances is lost until Redis is back.
    The live channel is then *degraded* (``degraded()``), logged once when it goes down
    and once when it comes back, and shown on the dashboards.
    """

    def __init__(self, url: str, *, channel: str):
        super().__init__(url, channel=channel, redis_options=dict(REDIS_TIMEOUTS),
                         logger=_quiet_log)
        self._state_lock = threading.Lock()
        self._reachable = True
        self._asked_at = float("-inf")  # time.monotonic() of the last exchange with Redis
        self._listening = None  # None until the first socket starts the listener
        self._said_degraded = False
        self._probe = None
        # The screen rooms with a socket on this instance, as (site id, kind), as Redis was
        # last told them.
        self._presence_lock = threading.Lock()
        self._local_screens: set[tuple[int, str]] = set()
        self._presence = None  # the Redis client that reads and writes them
        self._presence_stale = False  # a write failed: the heartbeat says them all again
        self._heartbeat: threading.Thread | None = None

    def _publish(self, data):
        if self._failed_a_moment_ago():
            return None  # don't make this emit wait on it again
        result = super()._publish(data)  # None when both of its attempts failed
        self._note(reachable=result is not None)
        return result

    def _failed_a_moment_ago(self) -> bool:
        """Whether Redis failed to answer within REDIS_RETRY_SECONDS: nothing waits on it
        again until then."""
        return not self._reachable and time.monotonic() - self._asked_at < REDIS_RETRY_SECONDS

    def _redis_listen_with_retries(self):
        """python-socketio's loop, noting whether this instance hears the others, and
        subscribing again every REDIS_RETRY_SECONDS (its own waits up to a minute)."""
        while True:
            try:
                self._redis_connect()
                self.pubsub.subscribe(self.channel)
                self._note(listening=True)
                yield from self.pubsub.listen()
            except Exception:  # Redis is down or went away: the state says so, once
                self._note(listening=False)
                time.sleep(REDIS_RETRY_SECONDS)

    def degraded(self) -> bool:
        """Whether this instance cannot reach Redis, or does not hear the other instances.

        Asks Redis (a PING, bounded by REDIS_TIMEOUTS) when nothing did for
        REDIS_RETRY_SECONDS, so a health check every second costs at most one round trip
        every two seconds.
        """
        if time.monotonic() - self._asked_at >= REDIS_RETRY_SECONDS:
            if self._probe is None:
                self._probe = redis.Redis.from_url(self.redis_url, **REDIS_TIMEOUTS)
            try:
                reachable = bool(self._probe.ping())
            except Exception:  # any failure to answer is Redis being down for us
                reachable = False
            self._note(reachable=reachable)
        with self._state_lock:
            return not self._reachable or self._listening is False

    def _note(self, *, reachable: bool | None = None, listening: bool | None = None) -> None:
        with self._state_lock:
            if reachable is not None:
                self._reachable = reachable
                self._asked_at = time.monotonic()
            if listening is not None:
                self._listening = listening
            degraded = not self._reachable or self._listening is False
            changed, self._said_degraded = degraded != self._said_degraded, degraded
        if changed and degraded:
            log.warning("live channel degraded: Redis does not answer; screens on this "
                        "instance hear only its own changes until it does")
        elif changed:
            log.info("live channel back: Redis answers again")

    # --- Which screens are open, on every instance ------------------------------------------
    #
    # Rendering a change's fragments for a kind of screen costs milliseconds, and each send
    # crosses Redis to every instance; a site with no floor tablet connected anywhere needs
    # no floor fragments. Each instance keeps, in one Redis hash per site, a field per kind
    # of screen room it has a socket in (``<kind>|<instance>``), its value the time until
    # which it stands (PRESENCE_TTL_SECONDS, renewed every PRESENCE_REFRESH_SECONDS), so a
    # crashed instance's screens stop counting on their own. A room is written when its first
    # socket joins, before the connect is answered: a screen re-fetches everything once
    # connected, so a change committed before its room was written reaches it by that fetch,
    # and one committed after is rendered for it. When Redis cannot say, every kind counts.

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._screen_room_changed(namespace, room)

    def basic_leave_room(self, sid, namespace, room):
        super().basic_leave_room(sid, namespace, room)
        self._screen_room_changed(namespace, room)

    def _presence_client(self):
        if self._presence is None:
            self._presence = redis.Redis.from_url(self.redis_url, decode_responses=True,
                                                  **REDIS_TIMEOUTS)
        return self._presence

    def _screen_room_changed(self, namespace, room) -> None:
        where = _parse_screen_room(room)
        if where is None:
            return
        with self._presence_lock:
            present = bool(self.rooms.get(namespace or "/", {}).get(room))
            if present == (where in self._local_screens):
                return
            (self._local_screens.add if present else self._local_screens.discard)(where)
            if self._heartbeat is None:
                self._heartbeat = threading.Thread(target=self._beat, name="srs-screens",
                                                   daemon=True)
                self._heartbeat.start()
            if self._failed_a_moment_ago():
                self._presence_stale = True  # down a moment ago: the heartbeat retries
                return
            try:
                client = self._presence_client()
                if present:
                    self._say_present(client.pipeline(transaction=False), {where}).execute()
                else:
                    client.hdel(_presence_key(self.channel, where[0]), self._field(where[1]))
            except Exception:  # Redis is down: every kind counts until it answers again
                self._presence_stale = True
                self._note(reachable=False)

    def _field(self, kind: str) -> str:
        """This instance's field in a site's hash for one kind of screen room."""
        return f"{kind}|{self.host_id}"

    def _say_present(self, pipe, screens):
        until = time.time() + PRESENCE_TTL_SECONDS
        for site_id, kind in screens:
            key = _presence_key(self.channel, site_id)
            pipe.hset(key, self._field(kind), f"{until:.3f}")
            pipe.expire(key, int(2 * PRESENCE_TTL_SECONDS))
        return pipe

    def _beat(self) -> None:
        while True:
            time.sleep(1.0 if self._presence_stale else PRESENCE_REFRESH_SECONDS)
            with self._presence_lock:
                screens = set(self._local_screens)
            try:
                self._say_present(self._presence_client().pipeline(transaction=False),
                                  screens).execute()
                self._presence_stale = False
            except Exception:  # said again on the next beat
                self._presence_stale = True

    def screens_open(self, site_id: int) -> set[str] | None:
        """The kinds of screen room of a site with a socket on any instance (``floor``,
        ``dashboard``, ``watch``, ``hints``); None when Redis cannot say."""
        if self._failed_a_moment_ago():
            return None
        try:
            fields = self._presence_client().hgetall(_presence_key(self.channel, site_id))
        except Exception:
            self._note(reachable=False)
            return None
        now = time.time()
        kinds = {field.partition("|")[0] for field, until in fields.items()
                 if float(until) > now}
        with self._presence_lock:  # this instance's own, exactly
            kinds |= {kind for site, kind in self._local_screens if site == site_id}
        return kinds

    def _handle_close_room(self, message):
        room = message.get("room") or ""
        if room.startswith(LOGIN_ROOM_PREFIX):
            _cut_participants(self, room, message.get("namespace") or "/")
        super()._handle_close_room(message)


LIVE_CHANNEL = "srs_live_channel"
# How long an instance's word that it holds a kind of screen stands, and how often it says it.
PRESENCE_TTL_SECONDS = 30.0
PRESENCE_REFRESH_SECONDS = 10.0


def _presence_key(channel: str, site_id: int) -> str:
    return f"{channel}:screens:{site_id}"


def _parse_screen_room(room) -> tuple[int, str] | None:
    """``(site id, kind)`` of a screen room (``site:<id>:<kind>``), else None."""
    if not isinstance(room, str) or not room.startswith("site:"):
        return None
    _site, site_id, kind = (room.split(":") + ["", ""])[:3]
    if not kind or not site_id.isdigit():
        return None
    return int(site_id), kind


def init_app(app) -> None:
    redis_url = app.config.get("SRS_REDIS_URL")
    channel = message_channel(app.config["SQLALCHEMY_DATABASE_URI"])
    manager = SharedRedisManager(redis_url, channel=channel) if redis_url else LocalManager()
    app.extensions[LIVE_CHANNEL] = manager
    socketio.init_app(
        app,
        async_mode="threading",
        client_manager=manager,
        # The handshake reads the Flask session; the socket never writes it.
        manage_session=False,
        logger=False,
        engineio_logger=False,
    )
    app.before_request(_tap_started)
    app.after_request(_announce_after_response)
    app.teardown_request(_announce_at_teardown)


def channel_status() -> str | None:
    """The live channel between this app's instances: ``"ok"``, ``"degraded"`` (Redis is
    down: screens hear only this instance's changes), or None with no Redis (one process)."""
    manager = current_app.extensions.get(LIVE_CHANNEL)
    if not isinstance(manager, SharedRedisManager):
        return None
    return "degraded" if manager.degraded() else "ok"


def _site_room(site_id: int) -> str:
    return f"site:{site_id}"


def _staff_room(staff_id: int) -> str:
    return f"staff:{staff_id}"


def _screen_room(site_id: int, kind: str) -> str:
    return f"site:{site_id}:{kind}"


def _login_room(key: str) -> str:
    return f"{LOGIN_ROOM_PREFIX}{key}"


def join_rooms(staff, *, view: str | None, login_keys: tuple[str, ...],
               personal: bool = True) -> list[int]:
    """Put a socket just admitted (``srs.auth.sockets``) in its rooms: a login room for each
    of ``login_keys`` (what admitted it: a login session, a token or a display, and the
    person behind it), each site of ``staff`` and, per site, the screen room its ``view``
    may join (else the plain hints), and, when ``personal``, the staff member's own (a wall
    display is nobody's: ``personal=False``). Return the sites.
    """
    for key in login_keys:
        join_room(_login_room(key))
    site_ids = sorted(staff.site_ids)
    for site_id in site_ids:
        join_room(_site_room(site_id))
        # One screen room per site: the first this view may join, else the plain hints.
        kind = next((kind for kind in _VIEW_SCREENS.get(view, ())
                     if kind in _screens and staff.has_role(site_id, *_screens[kind][1])),
                    HINTS)
        join_room(_screen_room(site_id, kind))
    # A level-3 alarm reaches the on-call supervisor by name, on whatever screen they have.
    if personal:
        join_room(_staff_room(staff.id))
    return site_ids


# --- What a screen shows, versioned ----------------------------------------------------------
#
# A site's screens receive, with each change, the fragments they show rendered once, in one
# ``fragments`` message per screen with the change's topics: each screen is in one room of
# its site by the kind of screen (``site:<id>:floor`` for floor tablets, ``site:<id>:watch``
# for read-only screens, ``site:<id>:dashboard`` for read-only screens that also show today's
# figures), and each fragment is the bytes the GET of that fragment answers. A socket that
# shows no fragments (an integration) is in ``site:<id>:hints`` and hears ``changed`` per
# topic. Every read of the floor takes the site's next version under the site's lock, so a
# higher version is never an older state; the browser keeps the highest it has and drops
# the rest.

HINTS = "hints"
# Which screen rooms a view may join, in order of preference (the first its role allows).
# A socket that names no view (an integration) hears the plain hints.
_VIEW_SCREENS = {"floor": ("floor",), "watch": ("dashboard", "watch")}

class _Feed:
    """One site's version counter and read lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.version = 0


_feeds: dict[int, _Feed] = {}
_feeds_lock = threading.Lock()
_clock_lock = threading.Lock()
_last_version = 0
# Renders a site's fragments for every audience: set by the package that owns them.
_renderer = None
# Each screen room: (the audiences whose fragments it receives, the roles that may join).
_screens: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _feed(site_id: int) -> _Feed:
    with _feeds_lock:
        feed = _feeds.get(site_id)
        if feed is None:
            feed = _feeds[site_id] = _Feed()
        return feed


def _next_version() -> int:
    """Microseconds since 1970, strictly increasing in this process: a restarted server,
    or another instance, carries on above what screens already hold."""
    global _last_version
    with _clock_lock:
        _last_version = max(_last_version + 1, time.time_ns() // 1000)
        return _last_version


def versioned_read(site_id: int, read, *, new: bool = False):
    """Read a site's floor under its lock; return ``(version, what read returned)``.

    ``read`` must load everything the fragments show (no lazy loads after it returns).
    A GET carries the version of the last push (``new=False``): its state is at least
    that push's and older than any later one. A push takes a new version (``new=True``).
    """
    feed = _feed(site_id)
    with feed.lock:
        if new or not feed.version:
            feed.version = _next_version()
        return feed.version, read()


def register_fragments(renderer, screens: dict[str, tuple[tuple[str, ...], tuple]]) -> None:
    """``renderer(site_id, topics, audiences) -> (version, {audience: {element id: html}})``
    renders, once for each of those audiences, a site's live fragments that the topics
    changed, from a ``versioned_read(..., new=True)``; ``(None, {})`` when none.
    ``screens``: each kind of screen (``floor``, ``watch``, ``dashboard``), the audiences
    whose fragments it receives and the roles that may join it."""
    global _renderer, _screens
    _renderer = renderer
    _screens = dict(screens)


# --- After the unit of work -------------------------------------------------------------------
#
# What screens hear about a change waits for the change to commit: an announcement or an alarm
# made while the database session has a transaction open is kept on the session and sent by
# its commit; a rollback (or a session closed without a commit) drops it. So a caller may
# announce as soon as it has made its change, and a refused or failed operation never tells a
# screen about something that did not happen. A savepoint is not a commit: what was announced
# inside one waits for the commit of the transaction around it when the savepoint is released,
# and is dropped with it when it is rolled back (a unit of work whose commits are held,
# ``UnitSession.holding_commits``, is made of such savepoints).

_AFTER_COMMIT = "srs_after_commit"


def after_commit(callback) -> None:
    """Run ``callback()`` once the session's open transaction commits; never if it rolls
    back. With no transaction open (everything is committed), run it at once."""
    session = db.session()
    if session.in_transaction():
        # Kept with the savepoint it was made in (None: the transaction itself).
        session.info.setdefault(_AFTER_COMMIT, []).append(
            [session.get_nested_transaction(), callback])
    else:
        callback()


def _enclosing_savepoint(transaction):
    parent = transaction.parent
    return parent if parent is not None and parent.nested else None


@event.listens_for(Session, "after_commit")
def _run_after_commit(session) -> None:
    released = session.get_nested_transaction()
    if released is not None:  # a savepoint released: its callbacks wait for the commit
        for pending in session.info.get(_AFTER_COMMIT, ()):
            if pending[0] is released:
                pending[0] = _enclosing_savepoint(released)
        return
    for _made_in, callback in session.info.pop(_AFTER_COMMIT, ()):
        try:
            callback()
        except Exception:  # the change is committed: its answer stands; screens re-fetch
            log.exception("telling the screens about a committed change failed")


@event.listens_for(Session, "after_transaction_end")
def _drop_uncommitted(session, transaction) -> None:
    if transaction.parent is None:  # the unit of work itself
        session.info.pop(_AFTER_COMMIT, None)
    elif transaction.nested and _AFTER_COMMIT in session.info:
        # A savepoint ended: what is still kept with it was rolled back with it.
        session.info[_AFTER_COMMIT] = [pending for pending in session.info[_AFTER_COMMIT]
                                       if pending[0] is not transaction]


# A topic that more than one package hears: an overdose response marks its booth tile and
# after-care row, so the floor re-renders those when a response changes.
TOPIC_RESPONSES = "responses"


def announce(site_id: int, topic: str) -> None:
    """Tell every screen of a site that ``topic`` changed, once the change commits.

    Inside a request the screens hear it once the response has gone out (the
    acting screen gets its answer first, and the idempotency record is kept
    before anyone re-fetches); elsewhere (the scheduler, the CLI) at the commit.
    """
    after_commit(lambda: _announce_now(site_id, topic))


def _announce_now(site_id: int, topic: str) -> None:
    if has_request_context():
        pending = g.get("srs_announcements")
        if pending is None:
            pending = g.srs_announcements = []
        if (site_id, topic) not in pending:
            pending.append((site_id, topic))
        return
    _publish(current_app._get_current_object(), [(site_id, topic)], script_root="")


def _watched(site_id: int) -> tuple[str, ...]:
    """The screen rooms of a site with a socket in them (rendering their fragments costs
    milliseconds), the plain hints' among them.

    With one process every socket is in this process's rooms; with several (Redis) each
    instance says in Redis which it holds (``SharedRedisManager.screens_open``), and every
    room counts when Redis cannot say.
    """
    server = socketio.server
    if server is None:
        return ()
    kinds = (*_screens, HINTS)
    manager = server.manager
    if isinstance(manager, SharedRedisManager):
        open_kinds = manager.screens_open(site_id)
        if open_kinds is None:
            return kinds
        return tuple(kind for kind in kinds if kind in open_kinds)
    rooms = manager.rooms.get("/", {})
    return tuple(kind for kind in kinds if rooms.get(_screen_room(site_id, kind)))


def _publish(app, announcements: list[tuple[int, str]], *, script_root: str) -> None:
    """Render once per site the fragments its announced topics changed and send each screen
    room one ``fragments`` message (its fragments, maybe none, and the topics); sockets
    showing no fragments hear one ``changed`` per topic.

    A failed render sends every socket of the site the plain hints instead (``pushed``
    false): the screens then re-fetch over HTTP.
    """
    by_site: dict[int, list[str]] = {}
    for site_id, topic in announcements:
        topics = by_site.setdefault(site_id, [])
        if topic not in topics:
            topics.append(topic)
    for site_id, topics in by_site.items():
        version, fragments = None, {}
        watched = _watched(site_id)
        kinds = tuple(k for k in watched if k != HINTS) if _renderer is not None else ()
        audiences = tuple(dict.fromkeys(a for kind in kinds for a in _screens[kind][0]))
        deadline = time.monotonic() + TAP_WAIT_SECONDS
        if audiences:
            _after_taps(deadline)
            try:
                # Its own app context (and so its own database session), read-only (GET).
                with app.app_context(), app.test_request_context(
                        "/", base_url=f"http://srs.local{script_root}"):
                    version, fragments = _renderer(site_id, topics, audiences)
            except Exception:  # the hints below still go out; screens re-fetch
                log.exception("rendering live fragments failed site=%s", site_id)
                fragments = None
        try:
            _after_taps(deadline)
            if version is None:
                version = _feed(site_id).version or None
            if fragments is None:
                for topic in topics:
                    socketio.emit("changed", {"topic": topic, "site_id": site_id,
                                              "version": version, "pushed": False},
                                  to=_site_room(site_id))
                continue
            for kind in kinds:
                html = {}
                for audience in _screens[kind][0]:
                    html.update(fragments.get(audience, {}))
                socketio.emit("fragments", {"site_id": site_id, "version": version,
                                            "html": html, "topics": topics},
                              to=_screen_room(site_id, kind))
            for topic in topics if HINTS in watched else ():
                socketio.emit("changed", {"topic": topic, "site_id": site_id,
                                          "version": version, "pushed": True},
                              to=_screen_room(site_id, HINTS))
        except Exception:  # screens re-fetch everything when their socket comes back
            log.exception("announcing a change failed site=%s", site_id)


# Taps come before screens. A worker runs one Python thread at a time: a tap answered while
# the publisher renders shares the interpreter with it and takes twice as long. So the
# publisher waits, before it reads and renders and again before it sends, until no write
# request is running (at most TAP_WAIT_SECONDS per site, so that a stream of taps never
# starves the screens).
TAP_WAIT_SECONDS = 0.05
_taps_done = threading.Condition()  # notified when the last running tap ends
_taps_running = 0


def _is_tap() -> bool:
    return request.method not in READ_METHODS and not request.path.startswith("/socket.io")


def _tap_started() -> None:
    global _taps_running
    if _is_tap():
        with _taps_done:
            _taps_running += 1
        g.srs_tap = True


def _tap_ended() -> None:
    global _taps_running
    if g.pop("srs_tap", False):
        with _taps_done:
            _taps_running -= 1
            if not _taps_running:
                _taps_done.notify_all()


def _after_taps(deadline: float) -> None:
    """Wait until no tap is running, or until ``deadline`` (time.monotonic())."""
    with _taps_done:
        _taps_done.wait_for(lambda: not _taps_running,
                            timeout=max(0.0, deadline - time.monotonic()))


# Requests hand their announcements to one publisher thread: a request thread (and the
# connection it serves) is free as soon as its answer is sent, and a burst of changes
# waiting in the queue is rendered once per site, not once per change.
_outbox: queue.SimpleQueue = queue.SimpleQueue()
_publisher_lock = threading.Lock()
_publisher: threading.Thread | None = None
_unsent = 0  # announcements handed over and not yet sent


def _enqueue(app, announcements, script_root: str) -> None:
    global _publisher, _unsent
    with _publisher_lock:
        _unsent += 1
        _outbox.put((app, list(announcements), script_root))
        if _publisher is None or not _publisher.is_alive():
            _publisher = threading.Thread(target=_publish_forever, name="srs-live",
                                          daemon=True)
            _publisher.start()


def _publish_forever() -> None:
    while True:
        batch = [_outbox.get()]
        while True:
            try:
                batch.append(_outbox.get_nowait())
            except queue.Empty:
                break
        grouped: dict[tuple, list] = {}
        for app, announcements, script_root in batch:
            grouped.setdefault((app, script_root), []).extend(announcements)
        for (app, script_root), announcements in grouped.items():
            _publish_safely(app, announcements, script_root)
        _sent(len(batch))


def _sent(count: int) -> None:
    global _unsent
    with _publisher_lock:
        _unsent -= count


def wait_until_published(timeout: float = 5.0) -> bool:
    """Block until the publisher has sent what was handed to it (tests, shutdown)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _publisher_lock:
            if not _unsent:
                return True
        time.sleep(0.005)
    return False


def _announce_after_response(response):
    """Hand this request's announcements to the response, to go out once it is sent."""
    pending = g.pop("srs_announcements", None)
    if pending:
        app = current_app._get_current_object()
        root = request.script_root
        response.call_on_close(lambda: _enqueue(app, pending, root))
    return response


def _announce_at_teardown(_error=None):
    """A request that ended without a response still announces what it committed."""
    _tap_ended()
    pending = g.pop("srs_announcements", None)
    if pending:
        _enqueue(current_app._get_current_object(), pending, request.script_root)


def _publish_safely(app, announcements, script_root: str) -> None:
    try:
        _publish(app, announcements, script_root=script_root)
    except Exception:  # a screen missing a hint re-fetches on reconnect; the answer stands
        log.exception("announcing a change failed")


def alarm(payload: dict, *, site_id: int, on_call_staff_id: int | None = None) -> None:
    """Send an ``alert`` event to every screen of a site (and the on-call's), once the
    change that raised it commits."""
    after_commit(lambda: _sound_now(payload, site_id, on_call_staff_id))


def _sound_now(payload: dict, site_id: int, on_call_staff_id: int | None) -> None:
    socketio.emit("alert", payload, to=_site_room(site_id))
    if on_call_staff_id is not None:
        socketio.emit("alert", {**payload, "on_call": True}, to=_staff_room(on_call_staff_id))


def send_to_sites(event: str, payload: dict, *, site_ids) -> None:
    """Send ``event`` to every screen of each of ``site_ids``, once the change commits (a
    published drug alert reaches every site it covers). No client detail in ``payload``."""
    rooms = [_site_room(site_id) for site_id in site_ids]
    after_commit(lambda: [socketio.emit(event, payload, to=room) for room in rooms])


def end_login_sockets(key: str, *, why: str) -> None:
    """Cut the sockets joined under one login key: a login session's (logout, lock, replaced
    by another person), a display's or a token's (revoked), a person's (deactivated, deleted,
    a role removed).

    ``session_ended`` tells the screen why; closing the room disconnects its
    sockets on this instance and, through the message queue, on every other.
    """
    room = _login_room(key)
    socketio.emit("session_ended", {"why": why}, to=room)
    if socketio.server is not None:
        socketio.close_room(room, namespace="/")
    log.info("sockets of a login session ended why=%s", why)
