"""Idempotency keys: a repeated tap or retried call returns the first answer.

Every state-changing form renders a fresh key in a hidden ``idempotency_key``
field (``new_idempotency_key()`` in templates); API callers send an
``Idempotency-Key`` header. The first request with a key is recorded, in the
transaction of what it records, with its answer; a repeat with the same key gets
that answer back and changes nothing.

The key, the action and the answer commit together, once. A crash between the
action's commit and a separate commit of its answer would leave a key that is
recorded but has no answer to give: its caller could never learn what was made
(the visit id of a check-in). So while a keyed request runs, the services'
commits are held (``UnitSession.holding_commits`` in ``srs.extensions``, the
session class given to Flask-SQLAlchemy): each ``commit()`` releases a
savepoint and each ``rollback()`` returns to the last one, the decorator renders
the answer, writes it onto the claimed row and commits once. A session class
rather than a flag each service checks: the services keep committing their own
operation as they do alone (from jobs, the CLI, unkeyed requests), a refusal
that commits its audit trail or a lockout count before it raises still keeps it
(the savepoint stays, the error's answer is stored beside it), and nothing a
service calls can commit early by forgetting a flag. Announcements and alarms
wait for that one real commit (``srs.live.after_commit`` ignores savepoints), and
a server error rolls back all of it, key included, so the retry is a first try.

A repeat of a request still running waits on the key's unique index (SQLite: on
the write lock) until the first commits, then replays its answer. A streamed
answer (a download) cannot be stored: its key is dropped, and the action
committed without it.
"""

import uuid
from datetime import datetime, timedelta
from functools import wraps

from flask import g, make_response, request
from flask_login import current_user
from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, exc, inspect, update
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.exceptions import HTTPException

from srs.common import UTCDateTime, utcnow
from srs.errors import Conflict, DomainError, Invalid, handle_domain_error, handle_http_exception
from srs.extensions import db

MAX_KEY_LENGTH = 80


class IdempotentRequest(db.Model):
    __tablename__ = "idempotent_request"
    __table_args__ = (UniqueConstraint("staff_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status_code: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[str | None] = mapped_column(Text)


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def _key() -> str | None:
    key = request.headers.get("Idempotency-Key") or request.form.get("idempotency_key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Invalid("Bad idempotency key.", {"Idempotency-Key": [
            f"Send 1 to {MAX_KEY_LENGTH} characters, new for each action."]})
    return key


def _staff_id() -> int | None:
    staff = g.get("api_staff")
    if staff is not None:
        return staff.id
    return current_user.id if current_user.is_authenticated else None


def _replay(row: IdempotentRequest):
    if row.method != request.method or row.path != request.path:
        raise Invalid("This idempotency key was used for another action.", {
            "Idempotency-Key": ["Send a new key for each action."]})
    if row.status_code is None:
        # Only an older version of SRS committed a key before its answer: the action is
        # recorded and its answer was lost. Never again.
        raise Conflict("This action is already recorded; its answer is not ready. Reload to "
                       "see where things are now.")
    response = make_response(row.body or "", row.status_code)
    if row.content_type:
        response.headers["Content-Type"] = row.content_type
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _row(staff_id: int, key: str, now: datetime) -> IdempotentRequest:
    return IdempotentRequest(staff_id=staff_id, key=key, method=request.method,
                             path=request.path, created_at=now)


def _claim(staff_id: int, key: str, now: datetime):
    """Claim the key in the transaction the action will commit: return ``(the claimed row,
    None)``, or ``(None, the earlier request)`` if the key is taken.

    A new key (nearly every tap) costs one INSERT and no commit of its own. A repeat
    arriving meanwhile waits on the unique key (SQLite: on the write lock) until the
    first commits with its answer, then finds it.
    """
    for _attempt in range(2):
        claim = _row(staff_id, key, now)
        db.session.add(claim)
        try:
            db.session.flush()
            return claim, None
        except exc.IntegrityError:
            db.session.rollback()
        earlier = db.session.execute(db.select(IdempotentRequest).filter_by(
            staff_id=staff_id, key=key)).scalar_one_or_none()
        if earlier is not None:
            return None, earlier
        # Forgotten in between (a streamed answer, or the hourly clean-up of old keys):
        # claim it again.
    raise Conflict("This action is being tried again elsewhere; wait a moment.")


def _answer(view, args, kwargs):
    """The view's answer, a refusal's included; a refusal first undoes what the view left
    uncommitted (what it committed, an audited read before the refusal, stays)."""
    try:
        return make_response(view(*args, **kwargs))
    except DomainError as error:
        db.session.rollback()
        return make_response(handle_domain_error(error))
    except HTTPException as error:
        db.session.rollback()
        return make_response(handle_http_exception(error))


def idempotent(view):
    """Make a state-changing view answer a repeated key with its first answer.

    The view's commits are held: its action, its key and its answer commit together.
    """

    @wraps(view)
    def wrapped(*args, **kwargs):
        key, staff_id = _key(), _staff_id()
        if key is None or staff_id is None:
            return view(*args, **kwargs)
        now = utcnow()
        claim, earlier = _claim(staff_id, key, now)
        if earlier is not None:
            return _replay(earlier)
        try:
            with db.session().holding_commits():
                response = _answer(view, args, kwargs)
            if response.status_code >= 500:
                db.session.rollback()
                return response
            if response.direct_passthrough:  # a streamed answer cannot be kept
                db.session.delete(claim)
            else:
                # By its key, in one statement: the claim was expired by the held commits,
                # and setting its attributes would read it back first.
                db.session.execute(
                    update(IdempotentRequest)
                    .where(IdempotentRequest.id == inspect(claim).identity[0])
                    .values(status_code=response.status_code,
                            content_type=response.headers.get("Content-Type"),
                            body=response.get_data(as_text=True))
                    .execution_options(synchronize_session=False))
            db.session.commit()  # the one real commit: action, key and answer
        except BaseException:
            # Nothing is recorded: the key is free again with the rest.
            db.session.rollback()
            raise
        return response

    # Read by the OpenAPI document: such an operation takes the header and may answer 409.
    wrapped.srs_idempotent = True
    return wrapped


def forget_older_than(*, now: datetime, age: timedelta = timedelta(days=2)) -> int:
    """Drop kept answers nobody will repeat any more (a scheduled job)."""
    result = db.session.execute(db.delete(IdempotentRequest).where(
        IdempotentRequest.created_at < now - age))
    db.session.commit()
    return result.rowcount


def init_app(app) -> None:
    app.jinja_env.globals["new_idempotency_key"] = new_idempotency_key
