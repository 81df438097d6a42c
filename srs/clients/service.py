"""Finding clients by code: check-in, autocomplete, the flags staff see first.

Callers: the floor (check-in, the tablet's code field), take-home naloxone kits. Each looks
in one site's clients only: a code another site knows is, here, a client not yet met. Every
read and write of a client's record is audited. None of these commit except the two reads a
screen makes on its own (``find_clients``, ``view_client``).
"""

import re
from datetime import date, datetime

from srs import signals
from srs.auth.service import Actor, record
from srs.clients.models import Client, parse_client_code
from srs.errors import Invalid
from srs.extensions import db
from srs.sites.models import Site

# A handle is a nickname: never a full name or a phone number.
_PHONE = re.compile(r"(\d[\s().-]*){7,}")
_FULL_NAME = re.compile(r"^[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?\s+[A-Z][a-z]+")
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


def client_for_code(site: Site, code: str, *, actor: Actor, now: datetime,
                    handle: str | None = None, field: str = "code") -> tuple[Client, bool]:
    """The site's client with this code, made (and audited) if new; return it and whether it
    is new.

    Does not commit. Raises Invalid when the code does not have the site's form.
    """
    code = check_code(site, code, field=field)
    client = db.session.execute(db.select(Client).filter_by(
        site_id=site.id, code=code)).scalar_one_or_none()
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
