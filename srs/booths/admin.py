"""A site's booths as its admin keeps them: list, add, rename, change kind, reorder, retire.

Callers: the booth admin page and the JSON API (``listBooths``, ``createBooth``,
``updateBooth``); taking a booth out of service is the floor's own operation
(:func:`srs.booths.service.set_booth_out_of_service`). Each change is one unit of work:
check, change, audit, commit, then announce the board, so every screen of the site follows.

A booth is never deleted, not even one no visit ever used: it is retired. Its audit rows,
alerts and visits keep naming it, the reports count it under its label, and that label stays
taken at the site. A booth added by mistake is renamed or retired.
"""

from datetime import datetime

from sqlalchemy import exc

from srs import live
from srs.auth.service import Actor, record
from srs.booths.models import TOPIC_BOARD, Booth, BoothKind, Visit, VisitState
from srs.booths.service import BoothTaken, BoothView, holder_of
from srs.errors import Conflict, Invalid
from srs.extensions import db
from srs.sites.models import Site


def list_booths(site: Site) -> list[BoothView]:
    """Every booth of the site with its state: in board order, the retired ones last."""
    booths = db.session.execute(
        db.select(Booth).filter_by(site_id=site.id)
        .order_by(Booth.retired_at.is_not(None), Booth.position, Booth.label, Booth.id)
    ).scalars()
    holders = {visit.booth_id: visit for visit in db.session.execute(
        db.select(Visit).where(Visit.site_id == site.id, Visit.state == VisitState.IN_BOOTH)
    ).scalars()}
    return [BoothView(b, b.state_with(holders.get(b.id)), holders.get(b.id)) for b in booths]


def _in_use(site: Site) -> list[Booth]:
    return list(db.session.execute(
        db.select(Booth).where(Booth.site_id == site.id, Booth.retired_at.is_(None))
        .order_by(Booth.position, Booth.label, Booth.id)).scalars())


def _duplicate(site: Site, label: str, booth: Booth | None = None) -> Invalid:
    return Invalid(f"{site.name} already has a booth {label}.", {"label": [
        f"Booth {label} exists already{' (retired)' if booth and booth.retired_at else ''}: "
        f"choose another label."]})


def _check_label(site: Site, label: str, *, booth: Booth | None = None) -> str:
    """The label trimmed, unless another booth of the site (retired ones too) has it, in any
    case: the board and the reports must name one booth by it. Raises Invalid."""
    label = label.strip()
    if not label:
        raise Invalid("Give the booth a label.", {"label": ["Enter a label, e.g. B9."]})
    same = db.session.execute(db.select(Booth).where(
        Booth.site_id == site.id, db.func.lower(Booth.label) == label.lower(),
        Booth.id != (booth.id if booth is not None else -1))).scalars().first()
    if same is not None:
        raise _duplicate(site, same.label, same)
    return label


def _check_kind(kind: str) -> str:
    if kind not in set(BoothKind):
        raise Invalid("Unknown booth kind.", {"kind": ["Choose injection or inhalation."]})
    return kind


def _flush(site: Site, label: str) -> None:
    try:
        db.session.flush()
    except exc.IntegrityError:
        # Another admin gave the same label between our check and our write.
        db.session.rollback()
        raise _duplicate(site, label) from None


def _place(site: Site, booth: Booth, position: int | None) -> None:
    """Put ``booth`` at ``position`` (0 first; None or past the end: last) among the booths
    in use and number them all again from 0, so the board's order has no gaps or ties."""
    others = [b for b in _in_use(site) if b.id != booth.id]
    at = len(others) if position is None else max(0, min(position, len(others)))
    for index, each in enumerate([*others[:at], booth, *others[at:]]):
        each.position = index


def add_booth(site: Site, *, label: str, kind: str, actor: Actor, now: datetime) -> Booth:
    """A new booth at the end of the board, free.

    :raises Invalid: the label is empty or taken at the site, or the kind unknown.
    """
    label = _check_label(site, label)
    booth = Booth(site_id=site.id, label=label, kind=_check_kind(kind))
    db.session.add(booth)
    _place(site, booth, None)
    _flush(site, label)
    record(actor, "booth_created", "booth", booth.id, site_id=site.id, now=now,
           detail={"label": label, "kind": booth.kind})
    live.announce(site.id, TOPIC_BOARD)
    db.session.commit()
    return booth


def update_booth(booth: Booth, changes: dict, *, actor: Actor, now: datetime) -> Booth:
    """Rename, change the kind of, move, retire or reinstate a booth, in one unit of work.

    ``changes`` holds any of ``label``, ``kind``, ``position`` (0 is the first booth on the
    board) and ``retired``. A retired booth changes in nothing but being reinstated (at the
    end of the board). Each change is audited.

    :raises Invalid: nothing to change, an empty or taken label, an unknown kind.
    :raises BoothTaken: a client is in the booth (its kind cannot change, it cannot retire).
    :raises Conflict: the booth is retired.
    """
    site = db.session.get(Site, booth.site_id)
    if not changes:
        raise Invalid("Nothing to change: give a label, kind, position or retired.")
    retired = changes.get("retired")
    if booth.retired_at is not None and retired is not False:
        raise Conflict(f"Booth {booth.label} is retired: reinstate it first.",
                       booth=booth.label, booth_state="retired")
    holder = holder_of(booth)
    audit = []
    if "label" in changes and changes["label"].strip() != booth.label:
        label = _check_label(site, changes["label"], booth=booth)
        audit.append(("booth_renamed", {"from": booth.label, "to": label}))
        booth.label = label
    if "kind" in changes and changes["kind"] != booth.kind:
        kind = _check_kind(changes["kind"])
        if holder is not None:
            raise _in_the_booth(booth, "change its kind once it is free", "kind")
        audit.append(("booth_kind_changed", {"from": booth.kind, "to": kind}))
        booth.kind = kind
    if retired and booth.retired_at is None:
        if holder is not None:
            raise _in_the_booth(booth, "retire it once it is free", "retired")
        booth.retired_at = now
        audit.append(("booth_retired", None))
        _place(site, booth, None)  # the booths in use close up; it goes after them
    elif retired is False and booth.retired_at is not None:
        booth.retired_at = None
        audit.append(("booth_reinstated", None))
        _place(site, booth, changes.get("position"))
    elif changes.get("position") is not None and booth.retired_at is None:
        before = booth.position
        _place(site, booth, changes["position"])
        if booth.position != before:
            audit.append(("booth_moved", {"position": booth.position}))
    _flush(site, booth.label)
    for action, detail in audit:
        record(actor, action, "booth", booth.id, site_id=site.id, now=now, detail=detail)
    if audit:
        live.announce(site.id, TOPIC_BOARD)
    db.session.commit()
    return booth


def _in_the_booth(booth: Booth, then: str, field: str) -> BoothTaken:
    message = f"A client is in booth {booth.label}: {then}."
    return BoothTaken(message, {field: [message]}, booth=booth.label,
                      booth_state="occupied")
