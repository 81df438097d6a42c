"""Idempotency keys: a repeated tap or retried call returns the first answer.

Every state-changing form renders a fresh key in a hidden ``idempotency_key``
field (``new_idempotency_key()`` in templates); API callers send an
``Idempotency-Key`` header. The first request with a key is recorded, in the
transaction of what it records, and its answer kept; a repeat with the same
key gets that answer back and changes nothing.
"""

import uuid
from datetime import datetime, timedelta
from functools import wraps

from flask import g, make_response, request
from flask_login import current_user
from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, exc, update
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
        # The key is claimed in the action's own transaction: the action is recorded, and its
        # answer is being kept (or never was, if the server stopped in between). Never again.
        raise Conflict("This action is already recorded; its answer is not ready. Reload to "
                       "see where things are now.")
    response = make_response(row.body or "", row.status_code)
    if row.content_type:
        response.headers["Content-Type"] = row.content_type
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _row(staff_id: int, key: str, now: datetime, **answer) -> IdempotentRequest:
    return IdempotentRequest(staff_id=staff_id, key=key, method=request.method,
                             path=request.path, created_at=now, **answer)


def _claim(staff_id: int, key: str, now: datetime) -> IdempotentRequest | None:
    """Claim the key in the transaction the action will commit; return the earlier request
    if the key is taken.

    A new key (nearly every tap) costs one INSERT and no commit of its own: the claim and
    what the action records commit together, so a claimed key always means a recorded
    action. A repeat arriving meanwhile waits on the unique key (SQLite: on the write
    lock) until the first commits, then finds it.
    """
    for _attempt in range(2):
        db.session.add(_row(staff_id, key, now))
        try:
            db.session.flush()
            return None
        except exc.IntegrityError:
            db.session.rollback()
        earlier = db.session.execute(db.select(IdempotentRequest).filter_by(
            staff_id=staff_id, key=key)).scalar_one_or_none()
        if earlier is not None:
            return earlier
        # Forgotten in between (a streamed answer, or the hourly clean-up of old keys):
        # claim it again.
    raise Conflict("This action is being tried again elsewhere; wait a moment.")


def _keep(staff_id: int, key: str, now: datetime, response) -> None:
    """Keep the answer with the key. A refusal rolled the claim back with the action: the
    key is then claimed again, with its answer, in one INSERT."""
    answer = {"status_code": response.status_code,
              "content_type": response.headers.get("Content-Type"),
              "body": response.get_data(as_text=True)}
    kept = db.session.execute(
        update(IdempotentRequest).filter_by(staff_id=staff_id, key=key).values(**answer),
        execution_options={"synchronize_session": False})
    if kept.rowcount == 0:
        db.session.add(_row(staff_id, key, now, **answer))
    try:
        db.session.commit()
    except exc.IntegrityError:  # a repeat claimed the key between the refusal and here
        db.session.rollback()


def idempotent(view):
    """Make a state-changing view answer a repeated key with its first answer."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        key, staff_id = _key(), _staff_id()
        if key is None or staff_id is None:
            return view(*args, **kwargs)
        now = utcnow()
        earlier = _claim(staff_id, key, now)
        if earlier is not None:
            return _replay(earlier)
        try:
            response = make_response(view(*args, **kwargs))
        except DomainError as error:
            db.session.rollback()
            response = make_response(handle_domain_error(error))
        except HTTPException as error:
            db.session.rollback()
            response = make_response(handle_http_exception(error))
        except Exception:
            # The key stays claimed only if the action committed: a retry then hears that it
            # is recorded; otherwise the rollback freed the key with the rest.
            db.session.rollback()
            raise
        if response.status_code >= 500:
            db.session.rollback()
            return response
        if response.direct_passthrough:  # a streamed answer cannot be kept
            _forget(staff_id, key)
            return response
        _keep(staff_id, key, now, response)
        return response

    return wrapped


def _forget(staff_id: int, key: str) -> None:
    """A request whose answer cannot be kept may be made again with the same key."""
    db.session.execute(db.delete(IdempotentRequest).filter_by(staff_id=staff_id, key=key))
    db.session.commit()


def forget_older_than(*, now: datetime, age: timedelta = timedelta(days=2)) -> int:
    """Drop kept answers nobody will repeat any more (a scheduled job)."""
    result = db.session.execute(db.delete(IdempotentRequest).where(
        IdempotentRequest.created_at < now - age))
    db.session.commit()
    return result.rowcount


def init_app(app) -> None:
    app.jinja_env.globals["new_idempotency_key"] = new_idempotency_key
