"""The SMS outbox: subscribers, the messages queued for them, and the gateway's token.

A subscriber is kept as an HMAC of their number (the lookup: JOIN and STOP find them by it)
and the number itself encrypted with Fernet (``cryptography``), both keyed from the app's
``SECRET_KEY``: only the sending path (:func:`queued_messages` for the gateway's pull and the
``send`` command) decrypts it, and a STOP erases it. No number is written in clear to the
database, the audit trail or a log. Changing ``SECRET_KEY`` loses the subscribers (their
numbers can no longer be read or matched): they text JOIN again.

A subscriber's areas are sites (by slug or name), or every site. Publishing a public alert
queues one message per active subscriber of a site it covers, once per alert and subscriber
(a unique pair), so publishing again or renewing queues nothing twice. SRS never calls a
gateway from a request: the gateway pulls (``listOutboxMessages``, then
``markOutboxMessagesSent``) or ``flask --app app srs alerts send --url URL`` pushes.

Pieces (:func:`queue_for_alert`, :func:`cancel_for_alert`, :func:`subscribe`,
:func:`unsubscribe`) add to the session and never commit; the operations that call them do.
"""

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime

from flask import current_app
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from srs.auth.service import Actor, record
from srs.common import UTCDateTime
from srs.drugchecks.models import DrugAlert
from srs.drugchecks.poster import short_text
from srs.errors import Invalid
from srs.extensions import db

MESSAGE_STATUSES = ("queued", "sent", "cancelled")
# E.164: a plus and up to 15 digits; local forms keep their digits (at least 7).
_NUMBER = re.compile(r"^\+?\d{7,15}$")
# How many queued messages one pull hands over.
PULL_LIMIT = 100


class SmsSubscriber(db.Model):
    """Someone who texted JOIN: their number's HMAC (``number_hash``) and, while subscribed,
    the number encrypted. ``all_sites`` or ``site_ids`` are their areas."""

    __tablename__ = "sms_subscriber"

    id: Mapped[int] = mapped_column(primary_key=True)
    number_hash: Mapped[str] = mapped_column(String(64), unique=True)
    number_encrypted: Mapped[str | None] = mapped_column(Text)
    all_sites: Mapped[bool] = mapped_column(Boolean, default=False)
    site_ids: Mapped[list] = mapped_column(JSON, default=list)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def covers(self, site_ids) -> bool:
        return self.stopped_at is None and (self.all_sites or bool(
            set(self.site_ids or []) & set(site_ids or [])))


class OutboxMessage(db.Model):
    """One text for one subscriber about one alert: queued, then sent or cancelled."""

    __tablename__ = "sms_outbox_message"
    __table_args__ = (
        UniqueConstraint("drug_alert_id", "subscriber_id"),
        CheckConstraint("status IN ('queued', 'sent', 'cancelled')", name="status_known"),
        Index("ix_sms_outbox_message_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    drug_alert_id: Mapped[int] = mapped_column(ForeignKey("drug_alert.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("sms_subscriber.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(String(160))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    subscriber: Mapped[SmsSubscriber] = relationship()


class GatewayToken(db.Model):
    """The SMS gateway's bearer token: only its SHA-256 is kept. A new one revokes the
    ones before it (one gateway)."""

    __tablename__ = "sms_gateway_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# --- Numbers: normalised, hashed, encrypted -------------------------------------------------


def _key(purpose: bytes) -> bytes:
    """A key of its own for each use, derived from the app's secret."""
    secret = current_app.config["SECRET_KEY"]
    secret = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(secret, b"srs-sms:" + purpose, hashlib.sha256).digest()


def _fernet():
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(_key(b"number-encryption")))


def normalise_number(raw: str) -> str:
    """The number's digits, with its leading plus.

    :raises Invalid: on ``from`` for anything that is not a phone number.
    """
    number = re.sub(r"[\s().-]", "", raw or "")
    if not _NUMBER.match(number):
        raise Invalid("That is not a phone number.", {"from": ["Not a phone number."]})
    return number


def number_hash(number: str) -> str:
    """The lookup key of a (normalised) number: HMAC-SHA256 with a key from the secret."""
    return hmac.new(_key(b"number-hash"), number.encode(), hashlib.sha256).hexdigest()


def encrypt_number(number: str) -> str:
    return _fernet().encrypt(number.encode()).decode()


def decrypt_number(token: str) -> str:
    """The sending path only."""
    return _fernet().decrypt(token.encode()).decode()


# --- Subscribers --------------------------------------------------------------------------


def subscriber_for(number: str) -> SmsSubscriber | None:
    return db.session.scalar(db.select(SmsSubscriber).where(
        SmsSubscriber.number_hash == number_hash(number)))


def subscribe(number: str, *, site_ids: list[int] | None, now: datetime) -> SmsSubscriber:
    """JOIN: subscribe ``number`` to the sites ``site_ids`` (added to those it has), or to
    every site with None. A subscriber who had sent STOP starts afresh."""
    row = subscriber_for(number)
    if row is None:
        row = SmsSubscriber(number_hash=number_hash(number), all_sites=False, site_ids=[],
                            joined_at=now)
        db.session.add(row)
    elif row.stopped_at is not None:
        row.all_sites, row.site_ids, row.joined_at, row.stopped_at = False, [], now, None
    row.number_encrypted = encrypt_number(number)
    if site_ids is None:
        row.all_sites = True
    else:
        row.site_ids = sorted(set(row.site_ids or []) | set(site_ids))
    db.session.flush()
    record(Actor.system("sms"), "sms_subscribed", "sms_subscriber", row.id,
           detail={"all_sites": row.all_sites, "site_ids": row.site_ids}, now=now)
    return row


def unsubscribe(number: str, *, now: datetime) -> SmsSubscriber | None:
    """STOP: no further messages; the queued ones are cancelled and the number erased (its
    hash stays, so a STOP is remembered). None for a number never subscribed."""
    row = subscriber_for(number)
    if row is None or row.stopped_at is not None:
        return row
    row.stopped_at, row.number_encrypted = now, None
    cancelled = db.session.execute(db.update(OutboxMessage).where(
        OutboxMessage.subscriber_id == row.id, OutboxMessage.status == "queued")
        .values(status="cancelled", cancelled_at=now)).rowcount
    record(Actor.system("sms"), "sms_unsubscribed", "sms_subscriber", row.id,
           detail={"cancelled": cancelled}, now=now)
    return row


# --- The outbox -----------------------------------------------------------------------------


def queue_for_alert(alert: DrugAlert, *, now: datetime) -> int:
    """Queue the alert's short text for each active subscriber of a site it covers, once
    per subscriber: a public, published alert only. Returns how many were queued."""
    if alert.status != "published" or alert.audience != "public":
        return 0
    already = set(db.session.execute(db.select(OutboxMessage.subscriber_id).where(
        OutboxMessage.drug_alert_id == alert.id)).scalars())
    subscribers = db.session.execute(db.select(SmsSubscriber).where(
        SmsSubscriber.stopped_at.is_(None)).order_by(SmsSubscriber.id)).scalars()
    body = short_text(alert)
    queued = 0
    for subscriber in subscribers:
        if subscriber.id in already or not subscriber.covers(alert.site_ids):
            continue
        db.session.add(OutboxMessage(drug_alert_id=alert.id, subscriber_id=subscriber.id,
                                     body=body, status="queued", queued_at=now))
        queued += 1
    if queued:
        db.session.flush()
        record(Actor.system("sms"), "sms_queued", "drug_alert", alert.id,
               site_id=alert.site_id, detail={"messages": queued}, now=now)
    return queued


def cancel_for_alert(alert: DrugAlert, *, now: datetime) -> int:
    """A retracted alert's texts not yet sent are cancelled."""
    return db.session.execute(db.update(OutboxMessage).where(
        OutboxMessage.drug_alert_id == alert.id, OutboxMessage.status == "queued")
        .values(status="cancelled", cancelled_at=now)).rowcount


def queued_messages(*, limit: int = PULL_LIMIT) -> list[dict]:
    """The oldest queued messages with their numbers decrypted: what the gateway sends.
    Reads only (a pull that fails to send leaves them queued)."""
    rows = db.session.execute(db.select(OutboxMessage).join(OutboxMessage.subscriber).where(
        OutboxMessage.status == "queued", SmsSubscriber.stopped_at.is_(None),
        SmsSubscriber.number_encrypted.is_not(None))
        .order_by(OutboxMessage.id).limit(limit)).scalars()
    return [{"id": m.id, "to": decrypt_number(m.subscriber.number_encrypted), "body": m.body,
             "drug_alert_id": m.drug_alert_id, "queued_at": m.queued_at} for m in rows]


def mark_sent(ids: list[int], *, now: datetime) -> int:
    """The gateway sent these: queued ones become sent (others are left as they are);
    commits. Returns how many changed."""
    if not ids:
        return 0
    changed = db.session.execute(db.update(OutboxMessage).where(
        OutboxMessage.id.in_(ids), OutboxMessage.status == "queued")
        .values(status="sent", sent_at=now)).rowcount
    if changed:
        record(Actor.system("sms gateway"), "sms_sent", "sms_outbox", None,
               detail={"messages": changed}, now=now)
    db.session.commit()
    return changed


# --- The gateway's token --------------------------------------------------------------------


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_gateway_token(*, actor: Actor, now: datetime) -> str:
    """A new gateway token, returned once (only its hash is kept); the ones before it stop
    working. Commits."""
    db.session.execute(db.update(GatewayToken).where(GatewayToken.revoked_at.is_(None))
                       .values(revoked_at=now))
    raw = "srsgw_" + secrets.token_urlsafe(32)
    token = GatewayToken(token_hash=_hash_token(raw), prefix=raw[:12], created_at=now)
    db.session.add(token)
    db.session.flush()
    record(actor, "sms_gateway_token_created", "sms_gateway_token", token.id, now=now)
    db.session.commit()
    return raw


def gateway_token_valid(raw: str | None) -> bool:
    """Whether ``raw`` is the gateway's current token."""
    if not raw:
        return False
    return db.session.scalar(db.select(GatewayToken.id).where(
        GatewayToken.token_hash == _hash_token(raw), GatewayToken.revoked_at.is_(None))) \
        is not None
