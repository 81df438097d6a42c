"""Who may do what, and the record of what they did."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from srs.common import UTCDateTime, utcnow
from srs.extensions import append_only, db

# How long a shared screen stays unlocked while idle, unless its site sets its own.
IDLE_LOCK_SECONDS = 300


class Role(StrEnum):
    NURSE = "nurse"
    SUPERVISOR = "supervisor"
    REVIEWER = "reviewer"
    ADMIN = "admin"
    # A drug-checking technician: records checks, nothing else of the floor.
    DRUG_CHECKER = "drug_checker"
    # Heroin-assisted treatment: prescribes (signs eligibility and prescriptions) and
    # dispenses; the only two who may read an enrolled patient's legal identity.
    PRESCRIBER = "prescriber"
    PHARMACIST = "pharmacist"
    # A compassion club's health provider who screens applicants (as a prescriber may).
    SCREENER = "screener"


# Who works the floor (taps on it), and who may watch it (read-only screens too).
FLOOR = (Role.NURSE, Role.SUPERVISOR)
WATCHERS = (Role.NURSE, Role.SUPERVISOR, Role.ADMIN)
# What a wall display holds at its site in place of a role: no staff member holds it. A page
# a display may read declares it beside the roles (``site_role_required(*WATCHERS, DISPLAY)``)
# and the authorization matrix checks that declaration like any other.
DISPLAY = "display"


class Staff(db.Model):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    pin_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    # An organisation admin creates sites and names their first admins; the flag holds no
    # role at any site (DESIGN: roles are per site, the organisation admin is a flag). The
    # database gives it: a row written without it (by an older revision's shape) is no admin.
    org_admin: Mapped[bool] = mapped_column(server_default=false())
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    roles: Mapped[list["StaffRole"]] = relationship(
        back_populates="staff", cascade="all, delete-orphan")

    # Flask-Login's interface; the login session decides the rest.
    is_authenticated = True
    is_anonymous = False
    is_display = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return str(self.id)

    def roles_at(self, site_id: int) -> set[str]:
        return {r.role for r in self.roles if r.site_id == site_id}

    def has_role(self, site_id: int, *roles: str) -> bool:
        return bool(self.roles_at(site_id) & set(roles))

    @property
    def site_ids(self) -> set[int]:
        return {r.site_id for r in self.roles}

    def __repr__(self) -> str:
        return f"<Staff {self.id}>"


class StaffRole(db.Model):
    __tablename__ = "staff_role"
    __table_args__ = (
        UniqueConstraint("staff_id", "site_id", "role"),
        CheckConstraint("role IN ('nurse', 'supervisor', 'reviewer', 'admin', 'drug_checker', "
                        "'prescriber', 'pharmacist', 'screener')", name="role_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))

    staff: Mapped[Staff] = relationship(back_populates="roles")
    site: Mapped["Site"] = relationship()  # noqa: F821


class LoginSession(db.Model):
    """One person signed in on one screen, from login to logout.

    The browser's cookie holds only ``key``; lock, unlock and end are rows, so
    a lock cannot be undone by replaying an old cookie.
    """

    __tablename__ = "login_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_active_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_pins: Mapped[int] = mapped_column(Integer, default=0)
    origin: Mapped[str | None] = mapped_column(String(64))

    staff: Mapped[Staff] = relationship()


class ApiToken(db.Model):
    """A bearer token for an integration; only its SHA-256 is kept."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    staff: Mapped[Staff] = relationship()


@dataclass(frozen=True)
class DisplayRole:
    """The one place a wall display stands: ``DISPLAY`` at its site."""

    site_id: int
    role: str = DISPLAY


class Display(db.Model):
    """A wall screen registered for one site: a device, not a person.

    It signs in with a token shown once to the admin who registered it (only its
    SHA-256 is kept), reads the dashboard and every alarm, never locks and acts on
    nothing. To the access checks it looks like a person holding ``DISPLAY`` at its site
    and nothing anywhere else; revoking it ends its sign-in at the next request and cuts
    its sockets at once.
    """

    __tablename__ = "display"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    site: Mapped["Site"] = relationship()  # noqa: F821
    creator: Mapped[Staff | None] = relationship()

    # Flask-Login's interface: a display's sign-in lasts until it is revoked.
    is_authenticated = True
    is_anonymous = False
    is_display = True

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def get_id(self) -> str:
        return f"{DISPLAY_ID_PREFIX}{self.id}"

    @property
    def display_name(self) -> str:
        return self.name

    @property
    def roles(self) -> tuple[DisplayRole, ...]:
        return (DisplayRole(self.site_id),)

    def roles_at(self, site_id: int) -> set[str]:
        return {DISPLAY} if site_id == self.site_id else set()

    def has_role(self, site_id: int, *roles: str) -> bool:
        return DISPLAY in roles and site_id == self.site_id

    @property
    def site_ids(self) -> set[int]:
        return {self.site_id}

    def __repr__(self) -> str:
        return f"<Display {self.id}>"


# A display's id in Flask-Login's session, apart from staff ids.
DISPLAY_ID_PREFIX = "display:"


class AuditEvent(db.Model):
    """Append-only: who did or saw what, when, from where.

    ``detail`` holds ids and setting names, never client codes or free text.
    The database itself refuses updates and deletes (see the triggers below).
    """

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    actor: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(40))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"), index=True)
    origin: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict | None] = mapped_column(JSON)

    __table_args__ = (
        db.Index("ix_audit_event_entity", "entity", "entity_id"),
    )


# Append-only, enforced by the database.
append_only(AuditEvent.__table__)
