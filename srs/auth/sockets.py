"""Who may open a socket: a signed-in, unlocked screen, a wall display, or a bearer token.

Admitted sockets join their rooms through ``srs.live.join_rooms``; ``srs.live`` knows
nothing of staff or sessions beyond what it is handed.
"""

import logging

from flask import g, request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError

from srs import live
from srs.auth import service
from srs.common import utcnow
from srs.extensions import db, socketio

log = logging.getLogger(__name__)


def _bearer(auth) -> str | None:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return auth["token"]
    return service.bearer_token(request.headers.get("Authorization"))


@socketio.on("connect")
def on_connect(auth=None):
    """Admit a signed-in, unlocked screen, a wall display or a bearer token; refuse anyone
    else."""
    raw = _bearer(auth)
    login = token = None
    if raw:
        token = service.token_for(raw, now=utcnow())
        if token is None:
            raise ConnectionRefusedError("unauthorized")
        staff = token.staff
    else:
        if not current_user.is_authenticated:
            raise ConnectionRefusedError("unauthorized")
        if current_user.is_display:
            return _admit_display(current_user)
        login = g.get("login_session")
        # A screen idle past its limit is locked now, not admitted.
        if login is None or service.note_activity(login, now=utcnow(), user_initiated=False):
            raise ConnectionRefusedError("locked")
        staff = current_user
    view = auth.get("view") if isinstance(auth, dict) else None
    staff_id = staff.id
    # Cut with what admitted it (logout, lock, a revoked token) and with its person
    # (deactivated, deleted, a role removed).
    admitted_by = service.token_socket_key(token.id) if token else login.key
    site_ids = live.join_rooms(staff, view=view,
                               login_keys=(admitted_by, service.staff_socket_key(staff_id)))
    if not service.admission_stands(staff_id=staff_id, login_key=login.key if login else None,
                                    token_id=token.id if token else None):
        raise ConnectionRefusedError("unauthorized" if token else "locked")
    log.info("socket connected staff=%s sites=%s", staff_id, site_ids)
    return True


def _admit_display(display):
    """A wall display watches its site as the dashboard does, never idles out, and has a
    room of its own so that revoking it cuts its sockets."""
    live.join_rooms(display, view="watch", login_keys=(service.display_socket_key(display),),
                    personal=False)
    # A revocation that landed between the loader and the joins would have missed it.
    db.session.refresh(display)
    if display.revoked_at is not None:
        raise ConnectionRefusedError("unauthorized")
    log.info("socket connected display=%s site=%s", display.id, display.site_id)
    return True
