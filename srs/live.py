"""All Socket.IO wiring: who may connect, which rooms they join, what is announced.

Sockets carry hints, never records: ``changed {"topic", "site_id"}`` tells a
screen to re-fetch over authenticated HTTP. Rooms: ``site:<id>`` for every
site the person has a role at, ``login:<key>`` for one login session so that
logout and lock can cut exactly that screen's sockets.
"""

import logging

from flask import g, request, session
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, join_room

from srs.common import utcnow
from srs.extensions import socketio

log = logging.getLogger(__name__)


def init_app(app) -> None:
    socketio.init_app(
        app,
        async_mode="threading",
        message_queue=app.config.get("SRS_REDIS_URL"),
        # The handshake reads the Flask session; the socket never writes it.
        manage_session=False,
        logger=False,
        engineio_logger=False,
    )


def _site_room(site_id: int) -> str:
    return f"site:{site_id}"


def _login_room(key: str) -> str:
    return f"login:{key}"


def _bearer(auth) -> str | None:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return auth["token"]
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):]
    return None


@socketio.on("connect")
def on_connect(auth=None):
    """Admit a signed-in, unlocked screen or a bearer token; refuse anyone else."""
    from srs.auth import service

    token = _bearer(auth)
    if token:
        staff = service.staff_for_token(token, now=utcnow())
        if staff is None:
            raise ConnectionRefusedError("unauthorized")
    else:
        if not current_user.is_authenticated:
            raise ConnectionRefusedError("unauthorized")
        login = g.get("login_session")
        if login is None or login.locked_at is not None:
            raise ConnectionRefusedError("locked")
        staff = current_user
        join_room(_login_room(session["login_key"]))
    site_ids = sorted(staff.site_ids)
    for site_id in site_ids:
        join_room(_site_room(site_id))
    log.info("socket connected staff=%s sites=%s", staff.id, site_ids)
    return True


def announce(site_id: int, topic: str) -> None:
    """Tell every screen of a site that ``topic`` changed. Call after commit."""
    socketio.emit("changed", {"topic": topic, "site_id": site_id}, to=_site_room(site_id))


def end_login_sockets(key: str, *, why: str) -> None:
    """Cut the sockets of one login session (logout, lock, replaced by another person).

    Sockets held by this process are disconnected here; ``session_ended`` goes
    through the message queue so that screens connected to another instance
    drop their socket too.
    """
    room = _login_room(key)
    socketio.emit("session_ended", {"why": why}, to=room)
    server = socketio.server
    if server is None:
        return
    for participant in list(server.manager.get_participants("/", room)):
        sid = participant[0] if isinstance(participant, tuple) else participant
        try:
            server.disconnect(sid, namespace="/")
        except (KeyError, ValueError):  # already gone
            continue
    log.info("sockets of a login session ended why=%s", why)
