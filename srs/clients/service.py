"""Finding clients by code: check-in, autocomplete, the flags staff see first; and the
flags a supervisor or admin sets (a service restriction, a note).

Callers: the floor (check-in, the tablet's code field), take-home naloxone kits, the
client's page and the API. Each looks in one site's clients only: a code another site knows
is, here, a client not yet met. Every read and write of a client's record is audited. None
of these commit except the reads a screen makes on its own (``find_clients``,
``view_client``, ``open_client``) and the operations on the flags (``update_flags``,
``lift_restriction``).
"""

import functools
import re
from datetime import date, datetime, timedelta

from srs import signals
from srs.auth.service import Actor, record
from srs.clients.models import Client, parse_client_code
from srs.errors import Conflict, Invalid, NotFound
from srs.extensions import db
from srs.sites.models import Site

# A handle is a nickname: never a full name or a phone number.
_PHONE = re.compile(r"(\d[\s().-]*){7,}")
_FULL_NAME = re.compile(r"^[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?\s+[A-Z][a-z]+")
# Why a supervisor restricts service: the form's list, and the words the floor reads at
# check-in. Stored as the label, with the supervisor's note after a colon.
RESTRICTION_REASONS = {
    "violence": "Violence or threats",
    "dealing": "Dealing on site",
    "weapon": "Weapon",
    "property_damage": "Property damage",
    "other": "Other",
}
# The reason column holds 200 characters: the longest label, ": " and the note fit.
RESTRICTION_NOTE_LENGTH = 150
# A restriction is reviewed at least yearly: no date further than this from today.
RESTRICTION_MAX_DAYS = 365
FLAG_NOTE_LENGTH = 500
CODE_FORM = ("Use the site's code form, e.g. F-ABCD-1984: gender (M, F, TM, TF or X), "
             "four letters, year of birth.")


def check_code(site: Site, code: str, *, field: str = "code") -> str:
    """The code normalised (upper case, no spaces around). Raises Invalid on ``field``."""
    code = (code or "").strip().upper()
    if not re.fullmatch(site.client_code_pattern, code):
        raise Invalid("That client code does not have this site's form.", {field: [CODE_FORM]})
    return code


def check_handle(handle: str | None) -> str | None:
    """A nickname or None. Raises Invalid for a full name or a phone number."""
    handle = (handle or "").strip() or None
    if handle is None:
        return None
    if len(handle) > 40:
        raise Invalid("Handle too long.", {"handle": ["A handle has at most 40 characters."]})
    if _PHONE.search(handle):
        raise Invalid("A handle cannot be a phone number.", {"handle": [
            "That looks like a phone number. Use a nickname that does not identify the person."]})
    if _FULL_NAME.match(handle):
        raise Invalid("A handle cannot be a full name.", {"handle": [
            "That looks like a full name. Use a nickname or leave it empty."]})
    return handle


@functools.cache
def _client_by_code_statement():
    """Every check-in reads it."""
    return db.select(Client).where(Client.site_id == db.bindparam("site_id"),
                                   Client.code == db.bindparam("code"))


def client_for_code(site: Site, code: str, *, actor: Actor, now: datetime,
                    handle: str | None = None, field: str = "code") -> tuple[Client, bool]:
    """The site's client with this code, made (and audited) if new; return it and whether it
    is new.

    Does not commit. Raises Invalid when the code does not have the site's form.
    """
    code = check_code(site, code, field=field)
    client = db.session.execute(_client_by_code_statement(), {"site_id": site.id, "code": code}
                                ).scalar_one_or_none()
    if client is not None:
        return client, False
    gender, birth_year = parse_client_code(code)
    client = Client(site_id=site.id, code=code, handle=handle, gender=gender,
                    birth_year=birth_year, created_at=now)
    db.session.add(client)
    db.session.flush()
    record(actor, "client_created", "client", client.id, site_id=site.id, now=now)
    return client, True


def find_clients(site: Site, text: str, *, actor: Actor, limit: int = 8) -> list[Client]:
    """The site's known codes holding ``text`` anywhere (at least 2 characters), for
    autocomplete: "AB" finds F-ABCD-1984. Codes that start with it come first."""
    text = (text or "").strip().upper()
    if len(text) < 2:
        return []
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    starts = Client.code.like(f"{escaped}%", escape="\\")
    clients = list(db.session.execute(
        db.select(Client).where(Client.site_id == site.id, Client.placeholder.is_(False),
                                Client.code.like(f"%{escaped}%", escape="\\"))
        .order_by(db.case((starts, 0), else_=1), Client.code).limit(limit)).scalars())
    if clients:
        record(actor, "client_search", "client", None, site_id=site.id,
               detail={"shown": [c.id for c in clients]})
        db.session.commit()
    return clients


def client_flags(client: Client, *, today: date) -> dict:
    """What staff must see before a visit starts: a restriction, a note, and what the
    packages listening on ``signals.client_flags`` add (a recent overdose)."""
    restricted = client.restricted_until is not None and client.restricted_until >= today
    flags = {
        "restricted": restricted,
        "restricted_until": client.restricted_until if restricted else None,
        "restriction_reason": client.restriction_reason if restricted else None,
        "note": client.flag_note,
        "recent_overdose": False,
    }
    if client.id is not None:
        for _receiver, more in signals.client_flags.send(client, today=today):
            flags.update(more or {})
    return flags


def view_client(site: Site, code: str, *, actor: Actor, now: datetime) -> Client | None:
    """Open the site's client's record by code (flags before check-in); the read is audited."""
    client = db.session.execute(db.select(Client).filter_by(
        site_id=site.id, code=code.strip().upper())).scalar_one_or_none()
    if client is not None:
        record(actor, "client_viewed", "client", client.id, site_id=site.id, now=now)
        db.session.commit()
    return client


def get_client(site: Site, client_id: int) -> Client:
    """The site's client with this id. Raises NotFound (also for another site's client)."""
    client = db.session.get(Client, client_id)
    if client is None or client.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no client with id {client_id}.")
    return client


def open_client(site: Site, client_id: int, *, actor: Actor, now: datetime) -> Client:
    """Open the site's client's record by id (the client's page); the read is audited.

    Raises NotFound.
    """
    client = get_client(site, client_id)
    record(actor, "client_viewed", "client", client.id, site_id=site.id, now=now)
    db.session.commit()
    return client


# The order the client's page lists what is held; a kind not named here comes after.
SUMMARY_ORDER = ("Visits", "Overdoses", "Referrals", "Incidents", "Take-home kits")


def client_summary(client: Client) -> dict[str, int]:
    """How many records of each kind the packages listening on ``signals.client_summary``
    hold about the client ("Visits": 12, "Overdoses": 1...)."""
    summary: dict[str, int] = {}
    for _receiver, counts in signals.client_summary.send(client):
        summary.update(counts or {})
    rank = {label: i for i, label in enumerate(SUMMARY_ORDER)}
    return dict(sorted(summary.items(), key=lambda item: rank.get(item[0], len(rank))))


def restriction_parts(stored: str | None) -> tuple[str | None, str]:
    """The reason's key and the note from a stored restriction reason ("Weapon: knife")."""
    text = (stored or "").strip()
    if not text:
        return None, ""
    for key, label in RESTRICTION_REASONS.items():
        if text == label:
            return key, ""
        if text.startswith(f"{label}: "):
            return key, text[len(label) + 2:]
    return "other", text  # written before the list existed: all of it is the note


def latest_restriction_day(today: date) -> date:
    """The furthest last day a restriction set today may have."""
    return today + timedelta(days=RESTRICTION_MAX_DAYS)


def _check_note(note: str | None, field: str, length: int) -> str | None:
    note = (note or "").strip() or None
    if note is not None and len(note) > length:
        raise Invalid("That note is too long.", {field: [f"At most {length} characters."]})
    return note


def _restriction(site: Site, data: dict, *, now: datetime) -> tuple[date, str, str]:
    """The last day, the reason's key and the text kept, from ``reason``, ``note`` and
    ``until``. Raises Invalid naming each field at fault."""
    reason, until = data.get("reason"), data.get("until")
    errors = {}
    if not reason:
        errors["reason"] = ["Choose why service is restricted."]
    elif reason not in RESTRICTION_REASONS:
        errors["reason"] = [f"Choose one of: {', '.join(RESTRICTION_REASONS.values())}."]
    today = site.local_date(now)
    latest = latest_restriction_day(today)
    if until is None:
        errors["until"] = ["Give the last day of the restriction."]
    elif until < today:
        errors["until"] = [f"The last day cannot be in the past: today is {today:%d %b %Y}."]
    elif until > latest:
        errors["until"] = [f"At most a year ahead (until {latest:%d %b %Y}); set it again "
                           f"when it ends if it must go on."]
    note = None
    try:
        note = _check_note(data.get("note"), "note", RESTRICTION_NOTE_LENGTH)
    except Invalid as err:
        errors.update(err.errors)
    if reason == "other" and not note and "note" not in errors:
        errors["note"] = ["Say what happened when the reason is Other."]
    if errors:
        raise Invalid("The restriction was not set: see the fields.", errors)
    label = RESTRICTION_REASONS[reason]
    return until, reason, f"{label}: {note}" if note else label


def update_flags(site: Site, client: Client, changes: dict, *, actor: Actor,
                 now: datetime) -> Client:
    """Change what the floor sees at check-in, in one unit of work: ``restriction`` (a dict
    of ``reason`` from ``RESTRICTION_REASONS``, ``note``, ``until`` (today at the site or
    later, within a year); None lifts one in force) and ``flag_note`` (empty clears it).
    A key left out is left as it is. Each change is audited with the reason's key and the
    date, never the notes; commits.

    :raises Invalid: every field at fault, and nothing changed.
    """
    refusals, restriction, note = [], None, client.flag_note
    if changes.get("restriction") is not None:
        try:
            restriction = _restriction(site, changes["restriction"], now=now)
        except Invalid as err:
            refusals.append(err)
    if "flag_note" in changes:
        try:
            note = _check_note(changes["flag_note"], "flag_note", FLAG_NOTE_LENGTH)
        except Invalid as err:
            refusals.append(err)
    if refusals:
        raise Invalid(refusals[0].message if len(refusals) == 1
                      else "Nothing was changed: see the fields.",
                      {name: messages for err in refusals
                       for name, messages in err.errors.items()})
    in_force = client_flags(client, today=site.local_date(now))["restricted"]
    if restriction is not None:
        until, reason, text = restriction
        client.restricted_until, client.restriction_reason = until, text
        record(actor, "client_restricted", "client", client.id, site_id=site.id, now=now,
               detail={"reason": reason, "until": until.isoformat(), "replaced": in_force})
    elif "restriction" in changes and in_force:
        _lift(site, client, actor=actor, now=now)
    if note != client.flag_note:
        client.flag_note = note
        record(actor, "client_note_changed", "client", client.id, site_id=site.id, now=now,
               detail={"note": "set" if note else "cleared"})
    db.session.commit()
    return client


def _lift(site: Site, client: Client, *, actor: Actor, now: datetime) -> None:
    client.restricted_until = None
    client.restriction_reason = None
    record(actor, "client_restriction_lifted", "client", client.id, site_id=site.id, now=now)


def lift_restriction(site: Site, client: Client, *, actor: Actor, now: datetime) -> Client:
    """End a client's restriction now: its date and reason are cleared. Audited; commits.

    :raises Conflict: the client has no restriction in force.
    """
    if not client_flags(client, today=site.local_date(now))["restricted"]:
        raise Conflict("This client has no service restriction to lift.")
    _lift(site, client, actor=actor, now=now)
    db.session.commit()
    return client
