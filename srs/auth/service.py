"""Sign-in, the shared-tablet PIN lock and quick switch, API tokens, wall displays and the
audit trail.

Callers: ``srs.auth.views``, ``srs.auth.sockets``, ``srs.alerts.views`` (taking an alarm
from a lock screen), ``srs.sites.views`` and ``srs.api`` (displays) and the CLI. Every
function takes ``now`` where time matters and commits its own unit of work.
"""

import functools
import hashlib
import itertools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager, joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from srs import live
from srs.auth.models import (
    DISPLAY_ID_PREFIX,
    FLOOR,
    IDLE_LOCK_SECONDS,
    ApiToken,
    AuditEvent,
    Display,
    LoginSession,
    Role,
    Staff,
    StaffRole,
)
from srs.errors import Conflict, DomainError, Invalid, NotFound
from srs.extensions import db

MAX_FAILED_LOGINS = 5
MAX_FAILED_PINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10
# Idle activity is written at most this often, so a busy tablet does not write every request.
ACTIVITY_WRITE_EVERY = timedelta(seconds=10)
# A login lasts at most a long shift; yesterday's locked tablet needs a password, not a PIN.
MAX_SESSION_AGE = timedelta(hours=14)
_PIN = re.compile(r"^[0-9]{6}$")
_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,59}$")


@dataclass(frozen=True)
class Actor:
    """Who is acting and from where, as the audit trail records it."""

    staff_id: int | None
    name: str
    origin: str | None = None

    @classmethod
    def of(cls, staff: Staff, origin: str | None = None) -> "Actor":
        return cls(staff.id, staff.username, origin)

    @classmethod
    def system(cls, name: str = "system") -> "Actor":
        return cls(None, name, None)


class LoginRefused(DomainError):
    status = 401
    code = "login_refused"


class AccountLocked(DomainError):
    status = 423
    code = "account_locked"


class WrongPin(DomainError):
    status = 401
    code = "wrong_pin"


class PinAttemptsExhausted(DomainError):
    status = 423
    code = "pin_attempts_exhausted"


def record(actor: Actor, action: str, entity: str, entity_id=None, *, site_id=None,
           detail=None, now: datetime | None = None) -> AuditEvent:
    """Add an audit event to the current unit of work; the caller commits."""
    event = AuditEvent(staff_id=actor.staff_id, actor=actor.name, action=action, entity=entity,
                       entity_id=None if entity_id is None else str(entity_id), site_id=site_id,
                       origin=actor.origin, detail=detail)
    if now is not None:
        event.at = now
    db.session.add(event)
    return event


def _account_locked(until: datetime) -> AccountLocked:
    return AccountLocked(
        f"Too many failed attempts: this account is locked until {until.strftime('%H:%M UTC')}. "
        f"Ask a supervisor or an admin if you need in sooner.")


@functools.cache
def _dummy_hash(method: str) -> str:
    """Checked when the username is unknown, so a refusal takes as long either way."""
    return generate_password_hash("not a password", method=method)


def _count_failure(column, row_id: int) -> int:
    """Add one to a failure counter in the database itself and return the new count.

    Read-add-write in Python would lose increments when guesses arrive in parallel.
    """
    model = column.class_
    db.session.execute(db.update(model).where(model.id == row_id).values({column: column + 1}))
    return db.session.execute(db.select(column).where(model.id == row_id)).scalar_one()


def authenticate(username: str, password: str, *, now: datetime, origin: str | None) -> Staff:
    """Check a username and password; raise LoginRefused or AccountLocked.

    Five wrong passwords in a row lock the account for fifteen minutes. A
    refusal reads the same, and takes as long, whether or not the username exists.
    """
    staff = db.session.execute(
        db.select(Staff).filter_by(username=username.strip().lower())).scalar_one_or_none()
    refusal = LoginRefused("Wrong username or password.")
    anonymous = Actor(None, "anonymous", origin)
    if staff is None or not staff.active:
        check_password_hash(_dummy_hash(current_app.config["SRS_PASSWORD_HASH_METHOD"]),
                            password)
        record(anonymous, "login_failed", "staff", now=now)
        db.session.commit()
        raise refusal
    if staff.locked_until and staff.locked_until > now:
        db.session.rollback()
        raise _account_locked(staff.locked_until)
    if not check_password_hash(staff.password_hash, password):
        failures = _count_failure(Staff.failed_logins, staff.id)
        record(anonymous, "login_failed", "staff", staff.id, now=now)
        if failures >= MAX_FAILED_LOGINS:
            staff.locked_until = now + LOCKOUT
            staff.failed_logins = 0
            record(Actor.system(), "account_locked", "staff", staff.id, now=now)
            db.session.commit()
            raise _account_locked(staff.locked_until)
        db.session.commit()
        raise refusal
    staff.failed_logins = 0
    staff.locked_until = None
    return staff


def begin_session(staff: Staff, *, now: datetime, origin: str | None,
                  replaces: str | None = None, detail: dict | None = None) -> LoginSession:
    """Start a login session; end the one this screen had before (``replaces``) and cut its
    sockets. ``detail`` goes into the audit event of the login (how it was made)."""
    previous = session_by_key(replaces)
    ended_previous = previous is not None and previous.ended_at is None
    if ended_previous:
        previous.ended_at = now
        record(Actor.of(previous.staff, origin), "logout", "login_session", previous.id,
               detail={"why": "another person signed in"}, now=now)
    login = LoginSession(key=secrets.token_urlsafe(32), staff_id=staff.id, started_at=now,
                         last_active_at=now, origin=origin)
    db.session.add(login)
    db.session.flush()
    record(Actor.of(staff, origin), "login", "login_session", login.id, detail=detail,
           now=now)
    db.session.commit()
    if ended_previous:
        live.end_login_sockets(previous.key, why="replaced")
    return login


def session_by_key(key: str | None) -> LoginSession | None:
    if not key:
        return None
    return db.session.execute(db.select(LoginSession).filter_by(key=key)).scalar_one_or_none()


def usable_session(key: str | None, *, now: datetime) -> LoginSession | None:
    """The login session behind a cookie, if it has not ended or outlived a shift."""
    login = session_by_key(key)
    if login is None or login.ended_at is not None or not login.staff.active:
        return None
    if now - login.started_at > MAX_SESSION_AGE:
        end_session(login, now=now, why="too old")
        return None
    return login


def lock_after_seconds(staff: Staff) -> int:
    """The idle limit for this person's screens: the strictest of their sites."""
    values = [role.site.lock_after_seconds for role in staff.roles]
    return min(values) if values else IDLE_LOCK_SECONDS


def is_idle(login: LoginSession, *, now: datetime) -> bool:
    return now - login.last_active_at > timedelta(seconds=lock_after_seconds(login.staff))


def note_activity(login: LoginSession, *, now: datetime, user_initiated: bool) -> bool:
    """Lock the session if it sat idle too long; otherwise count this request as activity.

    Returns True when the session is (now) locked. Background refreshes
    (``user_initiated=False``) never keep a screen unlocked.
    """
    if login.locked_at is not None:
        return True
    if is_idle(login, now=now):
        lock_session(login, now=now, why="idle")
        return True
    if user_initiated and now - login.last_active_at >= ACTIVITY_WRITE_EVERY:
        login.last_active_at = now
        db.session.commit()
    return False


def lock_idle_sessions(*, now: datetime) -> int:
    """Lock every open session idle past its limit, even with no request arriving.

    A tablet whose page stopped running its timers would otherwise keep its
    socket in the site's rooms. Called by the scheduler; returns how many it locked.
    """
    open_sessions = db.session.execute(db.select(LoginSession).where(
        LoginSession.locked_at.is_(None), LoginSession.ended_at.is_(None))).scalars().all()
    idle = [login for login in open_sessions if is_idle(login, now=now)]
    for login in idle:
        lock_session(login, now=now, why="idle")
    return len(idle)


def lock_session(login: LoginSession, *, now: datetime, why: str) -> None:
    """Lock a session and cut its sockets; the same person unlocks with their PIN."""
    if login.locked_at is None and login.ended_at is None:
        login.locked_at = now
        login.failed_pins = 0
        record(Actor.of(login.staff, login.origin), "lock", "login_session", login.id,
               detail={"why": why}, now=now)
        db.session.commit()
        live.end_login_sockets(login.key, why="locked")


def _pin_step(login: LoginSession, staff: Staff, pin: str, *, now: datetime,
              origin: str | None) -> None:
    """Check ``staff``'s PIN on the locked screen of ``login``.

    Every wrong PIN counts against the screen, whoever's PIN it was: after five the
    screen's session ends, so that only a full login gets back in. Raises WrongPin,
    PinAttemptsExhausted, or Conflict when the screen is not locked.
    """
    if login.ended_at is not None:
        raise PinAttemptsExhausted("This session has ended. Sign in with your password.")
    if login.locked_at is None:
        raise Conflict("This screen is not locked.")
    if staff.pin_hash is None:
        raise WrongPin("You have no PIN set. Sign in with your password.")
    if not check_password_hash(staff.pin_hash, pin or ""):
        failures = _count_failure(LoginSession.failed_pins, login.id)
        record(Actor.of(staff, origin), "unlock_failed", "login_session", login.id, now=now)
        if failures >= MAX_FAILED_PINS:
            db.session.commit()
            end_session(login, now=now, why="too many wrong PINs")
            raise PinAttemptsExhausted(
                "Too many wrong PINs: this screen is signed out. Sign in with your password.")
        db.session.commit()
        left = MAX_FAILED_PINS - failures
        raise WrongPin(f"Wrong PIN. {left} attempt{'s' if left != 1 else ''} left before you "
                       f"must sign in with your password.")


def unlock_with_pin(login: LoginSession, pin: str, *, now: datetime,
                    origin: str | None) -> None:
    """Unlock a locked session with its owner's PIN.

    Raises WrongPin, or PinAttemptsExhausted after five wrong PINs, which ends
    the session so that only a full login gets back in.
    """
    _pin_step(login, login.staff, pin, now=now, origin=origin)
    login.locked_at = None
    login.failed_pins = 0
    login.last_active_at = now
    record(Actor.of(login.staff, origin), "unlock", "login_session", login.id, now=now)
    db.session.commit()


def switch_person(login: LoginSession, staff_id: int, pin: str, *, site_id: int,
                  now: datetime, origin: str | None) -> LoginSession:
    """Let a member of the site's floor staff take over a locked tablet with their PIN.

    The person the tablet had is signed out (their session ends and its sockets are cut,
    as a full login does) and the new person's session begins. Their own person just
    unlocks it. Returns the session the screen now has. Raises NotFound for someone not
    on the site's floor staff, and as :func:`unlock_with_pin` does (wrong PINs count
    against the screen, whoever's they were).
    """
    staff = next((s for s in floor_staff(site_id) if s.id == staff_id), None)
    if staff is None:
        raise NotFound("That person is not on this site's floor staff.")
    if staff.id == login.staff_id:
        unlock_with_pin(login, pin, now=now, origin=origin)
        return login
    _pin_step(login, staff, pin, now=now, origin=origin)
    return begin_session(staff, now=now, origin=origin, replaces=login.key,
                         detail={"by": "pin", "site_id": site_id})


def floor_staff(site_id: int) -> list[Staff]:
    """Who may switch in on a locked tablet of the site: active, a floor role there, a PIN."""
    return list(db.session.execute(
        db.select(Staff).join(StaffRole)
        .where(StaffRole.site_id == site_id, StaffRole.role.in_(FLOOR),
               Staff.active.is_(True), Staff.pin_hash.is_not(None))
        .order_by(Staff.display_name, Staff.id)).unique().scalars())


_SITE_PATH = re.compile(r"^/sites/([^/?#]+)/")


def tablet_site(staff: Staff, next_path: str | None):
    """The site a locked tablet stands at: the one its page names, if the person signed in
    on it works that site's floor, else the only site whose floor they work (None when
    that is not one site)."""
    sites = {role.site_id: role.site for role in staff.roles if role.role in FLOOR}
    named = _SITE_PATH.match(next_path or "")
    if named:
        for site in sites.values():
            if site.slug == named.group(1):
                return site
    return next(iter(sites.values())) if len(sites) == 1 else None


def end_session(login: LoginSession, *, now: datetime, why: str = "logout") -> None:
    """End a session for good and cut its sockets."""
    if login.ended_at is None:
        login.ended_at = now
        record(Actor.of(login.staff, login.origin), "logout", "login_session", login.id,
               detail={"why": why}, now=now)
        db.session.commit()
        live.end_login_sockets(login.key, why=why)


def check_pin(pin: str) -> str:
    if not _PIN.match(pin or ""):
        raise Invalid("A PIN is exactly 6 digits.", {"pin": ["A PIN is exactly 6 digits."]})
    if len(set(pin)) == 1 or pin in {"123456", "654321", "012345", "543210"}:
        raise Invalid("That PIN is too easy to guess.",
                      {"pin": ["That PIN is too easy to guess; choose another."]})
    return pin


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        message = f"A password has at least {MIN_PASSWORD_LENGTH} characters."
        raise Invalid(message, {"password": [message]})
    return password


def _hash(secret: str) -> str:
    return generate_password_hash(secret, method=current_app.config["SRS_PASSWORD_HASH_METHOD"])


def create_staff(username: str, *, display_name: str | None, password: str, pin: str | None,
                 roles: list[tuple], actor: Actor, org_admin: bool = False) -> Staff:
    """Create a staff member with roles at sites (``(site, role)`` pairs) and, with
    ``org_admin``, the organisation admin flag; commit. Raises Invalid on a bad field."""
    staff = new_staff(username, display_name=display_name, password=password, pin=pin,
                      roles=roles, actor=actor, org_admin=org_admin)
    db.session.commit()
    return staff


def check_username(username: str | None) -> str:
    """The username lower-cased, if well formed and free. Raises Invalid."""
    username = (username or "").strip().lower()
    if not _USERNAME.match(username):
        raise Invalid("Invalid username.", {"username": [
            "Use 2-60 lower-case letters, digits, dot, dash or underscore, starting with a "
            "letter."]})
    if db.session.execute(db.select(Staff.id).filter_by(username=username)).first():
        raise Invalid("Username taken.", {"username": [f"{username!r} is already taken."]})
    return username


def new_staff(username: str, *, display_name: str | None, password: str, pin: str | None,
              roles: list[tuple], actor: Actor, org_admin: bool = False) -> Staff:
    """:func:`create_staff` without the commit, for an operation that makes a person as one
    of its steps (a new site's first admin). Raises Invalid on a bad field."""
    username = check_username(username)
    check_password(password)
    if pin is not None:
        check_pin(pin)
    for _site, role in roles:
        if role not in set(Role):
            raise Invalid("Unknown role.", {"role": [
                f"{role!r} is not a role; choose one of {', '.join(r.value for r in Role)}."]})
    staff = Staff(username=username, display_name=display_name or username,
                  password_hash=_hash(password), pin_hash=_hash(pin) if pin else None,
                  org_admin=org_admin)
    staff.roles = [StaffRole(site_id=site.id, role=role) for site, role in roles]
    db.session.add(staff)
    db.session.flush()
    for site, role in roles:
        record(actor, "staff_created", "staff", staff.id, site_id=site.id,
               detail={"role": role})
    if not roles:
        record(actor, "staff_created", "staff", staff.id)
    if org_admin:
        record(actor, "org_admin_granted", "staff", staff.id)
    return staff


def staff_by_username(username: str) -> Staff:
    staff = db.session.execute(
        db.select(Staff).filter_by(username=username.strip().lower())).scalar_one_or_none()
    if staff is None:
        raise NotFound(f"No staff member is called {username!r}.")
    return staff


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(staff: Staff, *, actor: Actor) -> str:
    """Create an API token for ``staff`` and return it; only its hash is stored."""
    raw = "srs_" + secrets.token_urlsafe(32)
    token = ApiToken(staff_id=staff.id, token_hash=_hash_token(raw), prefix=raw[:10])
    db.session.add(token)
    db.session.flush()
    record(actor, "token_created", "api_token", token.id, detail={"for_staff": staff.id})
    db.session.commit()
    return raw


def token_for(raw: str | None, *, now: datetime) -> ApiToken | None:
    """The token a bearer value names, its holder and their roles loaded, or None when it is
    unknown, revoked or its holder inactive. Its last use is written to the minute."""
    return _token_and_site(raw, now=now)[0]


def staff_for_token(raw: str | None, *, now: datetime) -> Staff | None:
    """Return the active staff member a bearer token belongs to, or None."""
    token = token_for(raw, now=now)
    return None if token is None else token.staff


def staff_for_token_with(raw: str | None, *, now: datetime, also: tuple,
                         params: dict) -> tuple[Staff | None, object]:
    """The active staff member a bearer token belongs to (or None), and the row that
    ``also`` (an entity and the condition that picks it, the same objects on every call,
    with bound parameters given in ``params``) names, or None, read in the token's
    statement: an API call on a site checks the caller's role there and then works on the
    site."""
    token, row = _token_and_site(raw, now=now, also=also, params=params)
    return (None, None) if token is None else (token.staff, row)


@functools.lru_cache(maxsize=8)
def _token_statement(also: tuple | None):
    """The token, its holder and their roles (every API call checks a role), and the row
    ``also`` names, in one statement; built once for each ``also``, as every API call
    reads it. Kept for a few ``also`` only: a caller that built a new one on every call
    would lose the saving, not fill memory."""
    query = (db.select(ApiToken).where(ApiToken.token_hash == db.bindparam("token_hash"))
             .options(joinedload(ApiToken.staff).joinedload(Staff.roles)))
    if also is not None:
        query = query.add_columns(also[0]).outerjoin(*also)
    return query


def _token_and_site(raw: str | None, *, now: datetime, also: tuple | None = None,
                    params: dict | None = None) -> tuple[ApiToken | None, object]:
    if not raw:
        return None, None
    # Read afresh each time: a revoked token or a removed role stops the very next call.
    row = db.session.execute(_token_statement(also), {
        **(params or {}), "token_hash": _hash_token(raw)}).unique().one_or_none()
    if row is None:
        return None, None
    token, site = row[0], (row[1] if also is not None else None)
    if token.revoked_at is not None or not token.staff.active:
        return None, None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
        db.session.commit()
    return token, site


def staff_socket_key(staff_id: int) -> str:
    """The key under which every socket of one person is cut in ``srs.live`` (whatever
    admitted it: a login session or a token): ``staff:<id>``."""
    return f"staff:{staff_id}"


def token_socket_key(token_id: int) -> str:
    """The key of the sockets one API token admitted: ``token:<id>``."""
    return f"token:{token_id}"


def admission_stands(*, staff_id: int, login_key: str | None = None,
                     token_id: int | None = None) -> bool:
    """Whether what admitted a socket still stands, read afresh once it has joined its rooms:
    a lock, logout, revocation or deactivation that landed between the first check and the
    joins cut the rooms before the socket was in them. Called by ``srs.auth.sockets``."""
    # The reads that admitted the socket may hold a snapshot older than that change.
    db.session.commit()
    if not db.session.scalar(db.select(Staff.active).where(Staff.id == staff_id)):
        return False
    if login_key is not None:
        row = db.session.execute(db.select(LoginSession.locked_at, LoginSession.ended_at)
                                 .where(LoginSession.key == login_key)).first()
        if row is None or row.locked_at is not None or row.ended_at is not None:
            return False
    if token_id is not None:
        revoked_at = db.session.execute(
            db.select(ApiToken.revoked_at).where(ApiToken.id == token_id)).first()
        if revoked_at is None or revoked_at[0] is not None:
            return False
    return True


def may_manage_tokens(manager: Staff, holder: Staff) -> bool:
    """Whether ``manager`` may see and revoke ``holder``'s API tokens: their own, or anyone's
    with a role at a site where ``manager`` is admin."""
    if manager.id == holder.id:
        return True
    admin_at = {role.site_id for role in manager.roles if role.role == Role.ADMIN}
    return bool(admin_at & holder.site_ids)


def tokens_of(staff: Staff) -> list[ApiToken]:
    """A person's API tokens, those in use first, newest first."""
    return list(db.session.execute(
        db.select(ApiToken).where(ApiToken.staff_id == staff.id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(),
                  ApiToken.id.desc())).scalars())


def managed_tokens(manager: Staff, username: str | None = None) -> list[ApiToken]:
    """The API tokens of ``username`` (``manager``'s own without one), as ``listApiTokens``
    answers. Raises NotFound for someone ``manager`` may not manage, as for nobody."""
    if username is None:
        return tokens_of(manager)
    holder = db.session.execute(db.select(Staff).filter_by(
        username=username.strip().lower())).scalar_one_or_none()
    if holder is None or not may_manage_tokens(manager, holder):
        raise NotFound(f"No staff member is called {username!r}.")
    return tokens_of(holder)


@dataclass(frozen=True)
class SiteTokens:
    """The API tokens of one site's staff, as its admin sees them on the tokens page: each
    person (by name) with their tokens, those in use first."""

    site: object  # the Site, as StaffRole.site gives it
    holders: list[tuple[Staff, list[ApiToken]]]


def tokens_at_admin_sites(manager: Staff) -> list[SiteTokens]:
    """For each site where ``manager`` is admin, by name, the tokens of everyone else with a
    role there (who hold any): the tokens ``may_manage_tokens`` lets them revoke. Someone
    at two such sites is listed at both."""
    admin_at = sorted((r for r in manager.roles if r.role == Role.ADMIN),
                      key=lambda r: (r.site.name, r.site_id))
    listed = []
    for role in admin_at:
        at_site = db.select(StaffRole.staff_id).where(StaffRole.site_id == role.site_id)
        tokens = db.session.execute(
            db.select(ApiToken).join(ApiToken.staff)
            .where(ApiToken.staff_id.in_(at_site), ApiToken.staff_id != manager.id)
            .options(contains_eager(ApiToken.staff))
            .order_by(Staff.display_name, Staff.id, ApiToken.revoked_at.is_not(None),
                      ApiToken.created_at.desc(), ApiToken.id.desc())).scalars().all()
        holders = [(staff, list(group))
                   for staff, group in itertools.groupby(tokens, key=lambda t: t.staff)]
        listed.append(SiteTokens(role.site, holders))
    return listed


def get_token(token_id: int, *, manager: Staff | None = None) -> ApiToken:
    """An API token by id; with ``manager``, only one they may manage (their own, or as a
    site's admin). Raises NotFound otherwise, as for no such token."""
    token = db.session.get(ApiToken, token_id)
    if token is None or (manager is not None and not may_manage_tokens(manager, token.staff)):
        raise NotFound(f"There is no API token with id {token_id}.")
    return token


def revoke_token(token: ApiToken, *, actor: Actor, now: datetime) -> ApiToken:
    """Revoke an API token: its next call is refused and the sockets it opened are cut at
    once, on every instance. Revoking a revoked token changes nothing."""
    if token.revoked_at is None:
        token.revoked_at = now
        record(actor, "token_revoked", "api_token", token.id,
               detail={"for_staff": token.staff_id}, now=now)
        db.session.commit()
        live.end_login_sockets(token_socket_key(token.id), why="revoked")
    return token


def revoke_tokens(staff: Staff, *, actor: Actor, now: datetime) -> list[ApiToken]:
    """Revoke every API token of ``staff`` still in use and cut their sockets; return the
    tokens this revoked."""
    revoked = _revoke_all_tokens(staff, actor=actor, now=now, why="revoked")
    db.session.commit()
    for token in revoked:
        live.end_login_sockets(token_socket_key(token.id), why="revoked")
    return revoked


def _revoke_all_tokens(staff: Staff, *, actor: Actor, now: datetime,
                       why: str) -> list[ApiToken]:
    tokens = [token for token in tokens_of(staff) if token.revoked_at is None]
    for token in tokens:
        token.revoked_at = now
        record(actor, "token_revoked", "api_token", token.id,
               detail={"for_staff": staff.id, "why": why}, now=now)
    return tokens


# --- Taking access away -----------------------------------------------------------------------
#
# Every request checks the person, their login session or token, and their roles afresh; a
# socket was checked once, when it connected. So each way of taking access away ends the
# person's logins and tokens where the rules say so, commits, and then cuts every socket of
# theirs (``staff:<id>``) on every instance: a screen reconnects (or signs in) and is let in
# to what it may still see, if anything.


def _shut_out(staff: Staff, *, actor: Actor, now: datetime, why: str) -> None:
    """End every open login of ``staff`` and revoke every token of theirs, audited as
    ``actor``'s doing. Does not commit; the caller cuts the sockets after its commit."""
    open_logins = db.session.execute(db.select(LoginSession).where(
        LoginSession.staff_id == staff.id, LoginSession.ended_at.is_(None))).scalars().all()
    for login in open_logins:
        login.ended_at = now
        record(actor, "logout", "login_session", login.id,
               detail={"why": why, "staff_id": staff.id}, now=now)
    _revoke_all_tokens(staff, actor=actor, now=now, why=why)


def _not_yourself(staff: Staff, actor: Actor, what: str) -> None:
    if actor.staff_id == staff.id:
        raise Conflict(f"You cannot {what} yourself: ask another admin.")


def deactivate_staff(staff: Staff, *, actor: Actor, now: datetime,
                     site_id: int | None = None) -> Staff:
    """Deactivate a staff member: they can no longer sign in, their logins end, their API
    tokens are revoked and their sockets are cut on every instance. Their roles stay, and
    are what they hold again if someone reactivates them. Deactivating someone inactive
    changes nothing. Raises Conflict for the actor themselves and for the last active admin
    of one of their sites (see :func:`check_deactivation`). ``site_id`` is the site whose
    admin did it, so that site's audit trail shows it (None from the command line).
    """
    check_deactivation(staff, actor=actor)
    if staff.active:
        staff.active = False
        _shut_out(staff, actor=actor, now=now, why="deactivated")
        record(actor, "staff_deactivated", "staff", staff.id, site_id=site_id, now=now)
        # Cut once the deactivation is committed (a keyed request commits once, at its end):
        # a socket cut before would come back and be let in again.
        key = staff_socket_key(staff.id)
        live.after_commit(lambda: live.end_login_sockets(key, why="deactivated"))
        db.session.commit()
    return staff


# What a deleted account's password hash holds when its row must stay: no password matches it.
NO_PASSWORD = "!"


def delete_staff(staff: Staff, *, actor: Actor, now: datetime) -> bool:
    """Delete a staff member: their logins end, their tokens are revoked, their roles go and
    their sockets are cut on every instance.

    The row itself goes when no record names them (an account made by mistake). Otherwise
    what they recorded keeps their name (the audit trail is append-only): the row stays,
    inactive, with no role, password or PIN, so that nothing signs in as them again.
    Returns whether the row went. Raises Conflict for the actor themselves and for the last
    active organisation admin.
    """
    _not_yourself(staff, actor, "delete")
    check_org_admin_stays(staff)
    staff_id = staff.id
    roles = sorted([role.site_id, role.role] for role in staff.roles)
    _shut_out(staff, actor=actor, now=now, why="deleted")
    staff.roles = []
    staff.active = False
    staff.password_hash = NO_PASSWORD
    staff.pin_hash = None
    try:
        with db.session.begin_nested():
            db.session.delete(staff)
    except IntegrityError:  # records name them: they stay, as a retired account
        removed = False
    else:
        removed = True
    record(actor, "staff_deleted", "staff", staff_id, detail={"roles": roles,
                                                              "row_kept": not removed},
           now=now)
    db.session.commit()
    live.end_login_sockets(staff_socket_key(staff_id), why="deleted")
    return removed


def remove_role(staff: Staff, site, role: str, *, actor: Actor, now: datetime) -> Staff:
    """Take ``role`` at ``site`` from ``staff`` and cut their sockets on every instance (a
    screen's rooms follow its person's roles: it reconnects into those they keep). When it
    was their last role at the site, their logins end and their API tokens are revoked as
    well. Raises NotFound when they do not hold that role there.
    """
    held = next((r for r in staff.roles if r.site_id == site.id and r.role == role), None)
    if held is None:
        raise NotFound(f"{staff.username} is not {role} at {site.slug}.")
    staff.roles.remove(held)
    record(actor, "role_removed", "staff", staff.id, site_id=site.id, detail={"role": role},
           now=now)
    why = "role removed"
    if not staff.roles_at(site.id):
        why = "removed from site"
        _shut_out(staff, actor=actor, now=now, why=why)
    key = staff_socket_key(staff.id)  # cut once committed, as deactivate_staff does
    live.after_commit(lambda: live.end_login_sockets(key, why=why))
    db.session.commit()
    return staff


# --- Wall displays ----------------------------------------------------------------------------

DISPLAY_NAME_MAX = 80
# A display's last request is written at most this often.
DISPLAY_SEEN_EVERY = timedelta(minutes=1)


def display_socket_key(display: Display) -> str:
    """The key of a display's sockets in ``srs.live``: its sign-in id, ``display:<id>`` (login
    keys never hold a colon)."""
    return display.get_id()


def register_display(site, name: str, *, actor: Actor, now: datetime) -> tuple[Display, str]:
    """Register a wall display for ``site``; return it and its token, which is never shown
    again (only its SHA-256 is kept). Raises Invalid for a missing or long name, or one
    that an active display of the site already has.
    """
    name = (name or "").strip()
    if not name or len(name) > DISPLAY_NAME_MAX:
        message = f"Give the display a name of 1 to {DISPLAY_NAME_MAX} characters."
        raise Invalid(message, {"name": [message]})
    taken = db.session.execute(db.select(Display.id).where(
        Display.site_id == site.id, Display.name == name, Display.revoked_at.is_(None))).first()
    if taken:
        message = f"A display at this site is already called {name!r}."
        raise Invalid(message, {"name": [message]})
    raw = "srsd_" + secrets.token_urlsafe(32)
    display = Display(site_id=site.id, name=name, token_hash=_hash_token(raw),
                      created_by=actor.staff_id, created_at=now)
    db.session.add(display)
    db.session.flush()
    record(actor, "display_registered", "display", display.id, site_id=site.id, now=now)
    db.session.commit()
    return display, raw


def list_displays(site_id: int) -> list[Display]:
    """A site's displays, the ones in use first, by name."""
    return list(db.session.execute(
        db.select(Display).where(Display.site_id == site_id)
        .order_by(Display.revoked_at.is_not(None), Display.name, Display.id)).scalars())


def get_display(site_id: int, display_id: int) -> Display:
    display = db.session.get(Display, display_id)
    if display is None or display.site_id != site_id:
        raise NotFound(f"This site has no display with id {display_id}.")
    return display


def revoke_display(display: Display, *, actor: Actor, now: datetime) -> Display:
    """Revoke a display: its next request finds it signed out, and its sockets are cut now.
    Revoking a revoked display changes nothing."""
    if display.revoked_at is None:
        display.revoked_at = now
        record(actor, "display_revoked", "display", display.id, site_id=display.site_id,
               now=now)
        # Cut once the revocation is committed (a keyed request commits once, at its end): a
        # socket cut before would come back and be let in again.
        key = display_socket_key(display)
        live.after_commit(lambda: live.end_login_sockets(key, why="revoked"))
        db.session.commit()
    return display


def display_for_token(raw: str | None, *, now: datetime, origin: str | None) -> Display | None:
    """Sign a wall display in by its token: the display, or None for an unknown or revoked
    token."""
    if not raw:
        return None
    display = db.session.execute(
        db.select(Display).filter_by(token_hash=_hash_token(raw))).scalar_one_or_none()
    if display is None or display.revoked_at is not None:
        return None
    display.last_seen_at = now
    record(Actor(None, f"display:{display.id}", origin), "display_signed_in", "display",
           display.id, site_id=display.site_id, now=now)
    db.session.commit()
    return display


def usable_display(user_id: str, *, now: datetime) -> Display | None:
    """The display behind a signed-in session's id (``display:<id>``), unless revoked."""
    try:
        display_id = int(user_id.removeprefix(DISPLAY_ID_PREFIX))
    except ValueError:
        return None
    display = db.session.get(Display, display_id)
    if display is None or display.revoked_at is not None:
        return None
    if display.last_seen_at is None or now - display.last_seen_at > DISPLAY_SEEN_EVERY:
        display.last_seen_at = now
        db.session.commit()
    return display


# --- A site's staff, as its admins manage them ------------------------------------------------
#
# An admin adds people, resets what they sign in with, changes their roles at the site and
# deactivates or reactivates them. What takes access away goes through the functions above;
# the on-call setting a deactivation or a lost supervisor role empties lives with the site
# (``srs.sites.service``). First passwords, PINs and resets are answered once and never kept
# anywhere but as hashes: not in the audit trail, not in a log, not in an idempotent answer.

# A password read off a printed sheet: no 0/O, 1/l/I to mix up.
_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


@dataclass(frozen=True)
class StaffEntry:
    """One person on a site's staff list: their roles there and when they last signed in."""

    staff: Staff
    roles: list[str]
    last_sign_in_at: datetime | None
    # Sites whose on-call supervisor the change that answers this entry took off call.
    off_call: tuple[int, ...] = ()


def new_password() -> str:
    """A first or reset password: 12 random characters in three groups (about 59 bits)."""
    chars = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(12))
    return "-".join(chars[i:i + 4] for i in range(0, 12, 4))


def new_pin() -> str:
    """A first or reset PIN that :func:`check_pin` accepts."""
    while True:
        pin = f"{secrets.randbelow(10 ** 6):06d}"
        try:
            return check_pin(pin)
        except Invalid:
            continue


def site_staff(site_id: int) -> list[StaffEntry]:
    """Everyone with a role at the site, active people first, by name, with their roles there
    and their last sign-in (the start of their latest login, anywhere)."""
    last = (db.select(LoginSession.staff_id,
                      db.func.max(LoginSession.started_at).label("at"))
            .group_by(LoginSession.staff_id).subquery())
    at_site = db.select(StaffRole.staff_id).where(StaffRole.site_id == site_id)
    rows = db.session.execute(
        db.select(Staff, last.c.at)
        .outerjoin(last, last.c.staff_id == Staff.id)
        .where(Staff.id.in_(at_site))
        .options(joinedload(Staff.roles))
        .order_by(Staff.active.desc(), Staff.display_name, Staff.id)).unique().all()
    return [StaffEntry(staff, sorted(staff.roles_at(site_id)), at) for staff, at in rows]


def staff_entry(site_id: int, staff: Staff, *, off_call=()) -> StaffEntry:
    """One person as :func:`site_staff` lists them, with the sites ``off_call``."""
    last = db.session.scalar(db.select(db.func.max(LoginSession.started_at))
                             .where(LoginSession.staff_id == staff.id))
    return StaffEntry(staff, sorted(staff.roles_at(site_id)), last, tuple(off_call))


def get_site_staff(site_id: int, staff_id: int) -> Staff:
    """A person with a role at the site; raises NotFound for anyone else, as for nobody."""
    staff = db.session.get(Staff, staff_id)
    if staff is None or site_id not in staff.site_ids:
        raise NotFound(f"This site has no staff member with id {staff_id}.")
    return staff


def _roles_given(roles) -> list[str]:
    chosen = sorted(set(roles or []))
    unknown = [role for role in chosen if role not in set(Role)]
    if unknown:
        message = (f"{unknown[0]!r} is not a role; choose from "
                   f"{', '.join(r.value for r in Role)}.")
        raise Invalid(message, {"roles": [message]})
    if not chosen:
        message = "Choose at least one role at this site (to take someone off it, deactivate them)."
        raise Invalid(message, {"roles": [message]})
    return chosen


def add_site_staff(site, *, username: str, display_name: str | None, roles: list[str],
                   actor: Actor, now: datetime) -> tuple[Staff, str, str]:
    """Add a person with ``roles`` at ``site``; return them, their first password and their
    first PIN, which the caller shows once (only hashes are kept). Raises Invalid for a bad
    or taken username or no role."""
    chosen = _roles_given(roles)
    password, pin = new_password(), new_pin()
    display_name = (display_name or "").strip() or None
    staff = create_staff(username, display_name=display_name, password=password, pin=pin,
                         roles=[(site, role) for role in chosen], actor=actor)
    return staff, password, pin


def reset_password(staff: Staff, *, site_id: int, actor: Actor, now: datetime) -> str:
    """Give ``staff`` a new password and return it, to be shown once. A lockout from wrong
    guesses ends with it; their open logins stand (the PIN lock still guards them)."""
    password = new_password()
    staff.password_hash = _hash(password)
    staff.failed_logins = 0
    staff.locked_until = None
    record(actor, "password_reset", "staff", staff.id, site_id=site_id, now=now)
    db.session.commit()
    return password


def reset_pin(staff: Staff, *, site_id: int, actor: Actor, now: datetime) -> str:
    """Give ``staff`` a new PIN and return it, to be shown once."""
    pin = new_pin()
    staff.pin_hash = _hash(pin)
    record(actor, "pin_reset", "staff", staff.id, site_id=site_id, now=now)
    db.session.commit()
    return pin


def _other_active_admins(site_id: int, staff: Staff) -> int:
    return db.session.scalar(
        db.select(db.func.count()).select_from(StaffRole).join(Staff)
        .where(StaffRole.site_id == site_id, StaffRole.role == Role.ADMIN,
               Staff.active.is_(True), Staff.id != staff.id))


def check_admin_stays(staff: Staff, site_id: int, *, actor: Actor) -> None:
    """Refuse taking the admin role at ``site_id`` from ``staff`` (or ``staff`` altogether)
    when they are the actor themselves or the site's last active admin: a site nobody can
    administer needs a shell to mend. Raises Conflict."""
    if not staff.has_role(site_id, Role.ADMIN):
        return
    if actor.staff_id == staff.id:
        raise Conflict("You cannot take away your own admin role: ask another admin.",
                       {"roles": ["You cannot take away your own admin role."]})
    if staff.active and not _other_active_admins(site_id, staff):
        raise Conflict(f"{staff.display_name} is this site's last admin: make someone else "
                       f"admin first.", {"roles": ["The site's last admin stays admin."]})


def check_org_admin_stays(staff: Staff) -> None:
    """Refuse taking the organisation admin flag from ``staff`` (or ``staff`` altogether)
    when they are the last active organisation admin: nobody could create a site or name its
    admins without a shell. Raises Conflict."""
    if not (staff.org_admin and staff.active):
        return
    others = db.session.scalar(db.select(db.func.count()).select_from(Staff).where(
        Staff.org_admin.is_(True), Staff.active.is_(True), Staff.id != staff.id))
    if not others:
        raise Conflict(f"{staff.display_name} is the last organisation admin: make someone "
                       f"else organisation admin first.",
                       {"org_admin": ["The last organisation admin stays one."]})


def check_deactivation(staff: Staff, *, actor: Actor) -> None:
    """Refuse deactivating the actor, the last active admin of any of ``staff``'s sites or
    the last active organisation admin. Raises Conflict."""
    _not_yourself(staff, actor, "deactivate")
    check_org_admin_stays(staff)
    for role in staff.roles:
        if role.role == Role.ADMIN:
            check_admin_stays(staff, role.site_id, actor=actor)


def check_roles_change(staff: Staff, site, roles: list[str], *, actor: Actor) -> list[str]:
    """The roles ``staff`` would hold at ``site``, checked. Raises Invalid for an unknown
    role or none, Conflict for taking away one's own or the last admin role."""
    chosen = _roles_given(roles)
    if Role.ADMIN not in chosen:
        check_admin_stays(staff, site.id, actor=actor)
    return chosen


def set_site_roles(staff: Staff, site, roles: list[str], *, actor: Actor,
                   now: datetime) -> Staff:
    """Make ``roles`` the roles of ``staff`` at ``site``: the new ones are added, each one
    taken away goes through :func:`remove_role` (their sockets are cut and reconnect into
    what they keep). Raises as :func:`check_roles_change`."""
    chosen = check_roles_change(staff, site, roles, actor=actor)
    held = staff.roles_at(site.id)
    for role in sorted(set(chosen) - held):
        staff.roles.append(StaffRole(site_id=site.id, role=role))
        record(actor, "role_added", "staff", staff.id, site_id=site.id, detail={"role": role},
               now=now)
    db.session.commit()
    for role in sorted(held - set(chosen)):
        remove_role(staff, site, role, actor=actor, now=now)
    return staff


def rename_staff(staff: Staff, display_name: str, *, site_id: int, actor: Actor,
                 now: datetime) -> Staff:
    """Change the name others see for ``staff``. Raises Invalid for an empty one."""
    display_name = (display_name or "").strip()
    if not display_name or len(display_name) > 120:
        message = "Give a name of 1 to 120 characters."
        raise Invalid(message, {"display_name": [message]})
    if display_name != staff.display_name:
        staff.display_name = display_name
        record(actor, "staff_renamed", "staff", staff.id, site_id=site_id, now=now)
        db.session.commit()
    return staff


def reactivate_staff(staff: Staff, *, actor: Actor, now: datetime,
                     site_id: int | None = None) -> Staff:
    """Let a deactivated person sign in again, with the roles they kept and the password and
    PIN they had (reset them if those went with them). Their old logins and tokens stay
    ended. Reactivating someone active changes nothing. ``site_id`` as for
    :func:`deactivate_staff`."""
    if not staff.active:
        staff.active = True
        staff.failed_logins = 0
        staff.locked_until = None
        record(actor, "staff_reactivated", "staff", staff.id, site_id=site_id, now=now)
        db.session.commit()
    return staff
