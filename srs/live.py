"""All Socket.IO wiring: who may connect, which rooms they join, what is announced.

Sockets carry hints, never records: ``changed {"topic", "site_id"}`` tells a
screen to re-fetch over authenticated HTTP. Rooms: ``site:<id>`` for every
site the person has a role at, ``login:<key>`` for one login session so that
logout and lock can cut exactly that screen's sockets.
"""

import hashlib
import logging

import socketio as socketio_pkg
from flask import g, request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, join_room
from sqlalchemy import make_url

from srs.common import utcnow
from srs.extensions import db, socketio

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


class SharedRedisManager(socketio_pkg.RedisManager):
    """Several instances: a login room closed on one disconnects its sockets on all of them.

    python-socketio can disconnect one socket across instances only by its id;
    the close-room message reaches every instance, and each cuts its own.
    """

    def _handle_close_room(self, message):
        room = message.get("room") or ""
        if room.startswith(LOGIN_ROOM_PREFIX):
            _cut_participants(self, room, message.get("namespace") or "/")
        super()._handle_close_room(message)


def init_app(app) -> None:
    redis_url = app.config.get("SRS_REDIS_URL")
    channel = message_channel(app.config["SQLALCHEMY_DATABASE_URI"])
    manager = SharedRedisManager(redis_url, channel=channel) if redis_url else LocalManager()
    socketio.init_app(
        app,
        async_mode="threading",
        client_manager=manager,
        # The handshake reads the Flask session; the socket never writes it.
        manage_session=False,
        logger=False,
        engineio_logger=False,
    )


def _site_room(site_id: int) -> str:
    return f"site:{site_id}"


def _login_room(key: str) -> str:
    return f"{LOGIN_ROOM_PREFIX}{key}"


def _bearer(auth) -> str | None:
    from srs.auth.service import bearer_token

    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return auth["token"]
    return bearer_token(request.headers.get("Authorization"))


@socketio.on("connect")
def on_connect(auth=None):
    """Admit a signed-in, unlocked screen or a bearer token; refuse anyone else."""
    from srs.auth import service

    token = _bearer(auth)
    login = None
    if token:
        staff = service.staff_for_token(token, now=utcnow())
        if staff is None:
            raise ConnectionRefusedError("unauthorized")
    else:
        if not current_user.is_authenticated:
            raise ConnectionRefusedError("unauthorized")
        login = g.get("login_session")
        # A screen idle past its limit is locked now, not admitted.
        if login is None or service.note_activity(login, now=utcnow(), user_initiated=False):
            raise ConnectionRefusedError("locked")
        staff = current_user
        join_room(_login_room(login.key))
    site_ids = sorted(staff.site_ids)
    for site_id in site_ids:
        join_room(_site_room(site_id))
    if login is not None:
        # A lock that landed between the check and the joins would have missed this socket.
        db.session.refresh(login)
        if login.locked_at is not None or login.ended_at is not None:
            raise ConnectionRefusedError("locked")
    log.info("socket connected staff=%s sites=%s", staff.id, site_ids)
    return True


def announce(site_id: int, topic: str) -> None:
    """Tell every screen of a site that ``topic`` changed. Call after commit."""
    socketio.emit("changed", {"topic": topic, "site_id": site_id}, to=_site_room(site_id))


def end_login_sockets(key: str, *, why: str) -> None:
    """Cut the sockets of one login session (logout, lock, replaced by another person).

    ``session_ended`` tells the screen why; closing the room disconnects its
    sockets on this instance and, through the message queue, on every other.
    """
    room = _login_room(key)
    socketio.emit("session_ended", {"why": why}, to=room)
    if socketio.server is not None:
        socketio.close_room(room, namespace="/")
    log.info("sockets of a login session ended why=%s", why)
