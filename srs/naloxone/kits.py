"""Take-home naloxone kits by serial: the register (kits made from a lot), kit-use reports,
lot recalls, the expiry warning and the monthly kit figures.

A kit's unit leaves its lot when the kit is made (:func:`add_kits`), so the dose stock
never counts a unit sealed in a kit. Issuing a kit is
:func:`srs.naloxone.service.issue_kit` (the short form without a serial is
``record_take_home_kit``, which takes its units from stock then). Each function here that
changes something is one unit of work (check, change, audit, announce ``stock``, commit
once), takes ``now`` and an ``Actor`` and raises a DomainError: 404 for another site's lot
or kit, 409 for a kit not in the state the action needs or a lot already recalled, 422 with
field messages.
"""

import functools
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import aliased, selectinload

from srs import live
from srs.auth.service import Actor, record
from srs.errors import Conflict, Invalid, NotFound
from srs.extensions import db
from srs.naloxone.models import (
    FORMS_FOR_KIT,
    REPLACEMENT_REASONS,
    TRAINEE_KINDS,
    USE_OUTCOMES,
    KitUse,
    LotRecall,
    NaloxoneKit,
    NaloxoneLot,
    TakeHomeKit,
    Trainee,
)
from srs.naloxone.service import TOPIC_STOCK, get_lot, set_aside_for_kits
from srs.sites.models import Site

MAX_KITS_AT_ONCE = 500
_SERIAL = re.compile(r"^(.*?)(\d+)$")


def _field(name: str, message: str) -> Invalid:
    return Invalid(message, {name: [message]})


# --- Reading --------------------------------------------------------------------------------


@dataclass
class KitRow:
    """A kit as the register and the recall page show it: who holds it since when, and
    whether its holder has had another kit since."""

    kit: NaloxoneKit
    issue: TakeHomeKit | None
    replaced: bool
    expired: bool

    def __getattr__(self, name):
        return getattr(self.kit, name)

    @property
    def holder(self) -> str | None:
        return holder_label(self.issue) if self.issue else None


def holder_label(issue: TakeHomeKit) -> str:
    """Who holds an issued kit: the client's code, or the trainee by kind (and name and
    organisation where the trainee consented to them)."""
    if issue.client_id is not None:
        return issue.client.code
    return trainee_label(issue.trainee)


def trainee_label(trainee: Trainee) -> str:
    words = [TRAINEE_KINDS[trainee.kind]]
    name = " ".join(n for n in (trainee.first_name, trainee.last_name) if n)
    if name:
        words.append(name)
    if trainee.organisation:
        words.append(trainee.organisation)
    return " · ".join(words)


def get_kit(site: Site, kit_id: int) -> NaloxoneKit:
    kit = db.session.get(NaloxoneKit, kit_id)
    if kit is None or kit.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no naloxone kit with id {kit_id}.")
    return kit


def _rows(site: Site, kits: list[NaloxoneKit], *, now: datetime) -> list[KitRow]:
    today = site.local_date(now)
    ids = [k.id for k in kits]
    issues = {i.kit_id: i for i in db.session.execute(db.select(TakeHomeKit).where(
        TakeHomeKit.kit_id.in_(ids)).options(
        selectinload(TakeHomeKit.client), selectinload(TakeHomeKit.trainee))).scalars()
    } if ids else {}
    later = aliased(TakeHomeKit)
    replaced = set(db.session.execute(db.select(TakeHomeKit.kit_id).where(
        TakeHomeKit.kit_id.in_(ids), db.exists().where(
            later.site_id == TakeHomeKit.site_id, later.id > TakeHomeKit.id,
            db.or_(db.and_(TakeHomeKit.client_id.is_not(None),
                           later.client_id == TakeHomeKit.client_id),
                   db.and_(TakeHomeKit.trainee_id.is_not(None),
                           later.trainee_id == TakeHomeKit.trainee_id))))).scalars()
                   ) if ids else set()
    return [KitRow(k, issues.get(k.id), k.id in replaced,
                   k.state in ("in_stock", "issued") and k.expires_on < today) for k in kits]


def list_kits(site: Site, *, now: datetime, state: str | None = None,
              lot_id: int | None = None) -> list[KitRow]:
    """The site's kits by serial, with their holders."""
    query = db.select(NaloxoneKit).where(NaloxoneKit.site_id == site.id).options(
        selectinload(NaloxoneKit.lot))
    if state is not None:
        query = query.where(NaloxoneKit.state == state)
    if lot_id is not None:
        query = query.where(NaloxoneKit.lot_id == lot_id)
    kits = list(db.session.execute(query.order_by(NaloxoneKit.serial)).scalars())
    return _rows(site, kits, now=now)


def register(site: Site, *, now: datetime) -> dict:
    """The kit register: every kit, the lots kits can be made from, kits due for
    replacement (expiring within the site's window or recalled, held by a client who has
    had no kit since), recalls."""
    kits = list_kits(site, now=now)
    today = site.local_date(now)
    lots = list(db.session.execute(db.select(NaloxoneLot).where(
        NaloxoneLot.site_id == site.id, NaloxoneLot.expires_on >= today).order_by(
        NaloxoneLot.expires_on, NaloxoneLot.id)).scalars())
    recalled = {r.lot_id for r in db.session.execute(db.select(LotRecall).where(
        LotRecall.site_id == site.id)).scalars()}
    due = [row for row in kits if _due_for_replacement(site, row, today)]
    # Trainees from outside the site a kit can go to (a client trainee gets it by code).
    trainees = [{"id": t.id, "label": f"{trainee_label(t)} (#{t.id})"}
                for t in db.session.execute(db.select(Trainee).where(
                    Trainee.site_id == site.id, Trainee.client_id.is_(None)).order_by(
                    Trainee.id.desc()).limit(200)).scalars()]
    return {"kits": kits, "trainees": trainees,
            "lots": [lot for lot in lots if lot.id not in recalled],
            "all_lots": list(db.session.execute(db.select(NaloxoneLot).where(
                NaloxoneLot.site_id == site.id).order_by(NaloxoneLot.lot_number)).scalars()),
            "recalled_lots": recalled, "due": due,
            "counts": Counter(row.state for row in kits), "today": today}


def _due_for_replacement(site: Site, row: KitRow, today: date) -> bool:
    if row.state != "issued" or row.issue is None or row.issue.client_id is None:
        return False
    if row.replaced:
        return False
    window = today + timedelta(days=site.kit_expiry_warning_days)
    return row.recalled_at is not None or row.expires_on <= window


# --- Adding kits to the register ------------------------------------------------------------


def _serial_range(first: str, last: str | None) -> list[str]:
    first = first.strip().upper()
    last = (last or "").strip().upper() or first
    if first == last:
        return [first]
    a, b = _SERIAL.match(first), _SERIAL.match(last)
    if not a or not b or a.group(1) != b.group(1):
        raise _field("last_serial",
                     "A range runs between two serials that differ only in their last digits "
                     "(K-1001 to K-1020).")
    low, high = int(a.group(2)), int(b.group(2))
    if high < low:
        raise _field("last_serial", "The last serial comes after the first.")
    if high - low + 1 > MAX_KITS_AT_ONCE:
        raise _field("last_serial", f"At most {MAX_KITS_AT_ONCE} kits at once.")
    width = len(a.group(2))
    return [f"{a.group(1)}{n:0{width}d}" for n in range(low, high + 1)]


def add_kits(site: Site, data: dict, *, actor: Actor, now: datetime) -> list[NaloxoneKit]:
    """Kits made from one lot, by a serial or a range of serials; their kind is the lot's
    form's and their expiry the lot's unless ``expires_on`` says otherwise. Each kit takes
    one unit out of the lot now, in the ledger (take-home stock is kept apart from the dose
    stock the console draws from); giving it out later takes nothing more.

    Raises NotFound (another site's lot), Invalid (a serial already in the register, a bad
    range, a recalled or expired lot, an expiry after the lot's, fewer units on hand than
    kits).
    """
    if not (data.get("first_serial") or "").strip():
        raise _field("first_serial", "Give the kit's serial, or the first of a range.")
    lot = get_lot(site, data["lot_id"])
    serials = _serial_range(data["first_serial"], data.get("last_serial"))
    if any(len(s) > 40 for s in serials):
        raise _field("first_serial", "A serial has at most 40 characters.")
    if db.session.scalar(db.select(LotRecall.id).where(LotRecall.lot_id == lot.id)):
        raise _field("lot_id", f"Lot {lot.lot_number} was recalled: make no kits from it.")
    today = site.local_date(now)
    expires_on = data.get("expires_on") or lot.expires_on
    if lot.expires_on < today or expires_on < today:
        raise _field("expires_on", "These kits would already be expired.")
    if expires_on > lot.expires_on:
        raise _field("expires_on", f"A kit cannot outlast its lot ({lot.expires_on:%Y-%m-%d}).")
    kind = next(k for k, forms in FORMS_FOR_KIT.items() if lot.form in forms)
    taken = list(db.session.execute(db.select(NaloxoneKit.serial).where(
        NaloxoneKit.site_id == site.id, NaloxoneKit.serial.in_(serials))).scalars())
    if taken:
        shown = ", ".join(sorted(taken)[:5]) + (" …" if len(taken) > 5 else "")
        raise _field("first_serial", f"Already in the register: {shown}.")
    set_aside_for_kits(lot, serials, actor=actor, now=now)
    kits = [NaloxoneKit(site_id=site.id, serial=serial, kind=kind, lot_id=lot.id,
                        expires_on=expires_on, state="in_stock", added_at=now,
                        added_by=actor.staff_id) for serial in serials]
    db.session.add_all(kits)
    db.session.flush()
    record(actor, "naloxone_kits_added", "naloxone_lot", lot.id, site_id=site.id, now=now,
           detail={"kits": [k.id for k in kits], "units_taken": len(kits)})
    live.announce(site.id, TOPIC_STOCK)
    db.session.commit()
    return kits


# --- A kit reported used --------------------------------------------------------------------


def report_use(site: Site, kit_id: int, data: dict, *, actor: Actor, now: datetime) -> KitUse:
    """A kit given out was used: the facts DOMAIN.md asks for. Raises Invalid (a date in
    the future, an unknown outcome or route) or Conflict (a kit not issued, or reported)."""
    kit = get_kit(site, kit_id)
    if data["used_on"] > site.local_date(now):
        raise _field("used_on", "The day it was used cannot be in the future.")
    if kit.state != "issued":
        raise Conflict(f"Kit {kit.serial} was not given out (it is {kit.state}).",
                       current_state=kit.state)
    use = KitUse(site_id=site.id, kit_id=kit.id, used_on=data["used_on"],
                 area=(data.get("area") or "").strip() or None, doses=data["doses"],
                 route=data["route"], called_911=data["called_911"], outcome=data["outcome"],
                 reported_at=now, reported_by=actor.staff_id)
    kit.state = "used"
    db.session.add(use)
    db.session.flush()
    record(actor, "naloxone_kit_use_reported", "naloxone_kit", kit.id, site_id=site.id,
           now=now, detail={"use": use.id, "outcome": use.outcome})
    live.announce(site.id, TOPIC_STOCK)
    db.session.commit()
    return use


# --- Recalls --------------------------------------------------------------------------------


def recall_lot(site: Site, lot_id: int, *, reason: str, actor: Actor,
               now: datetime) -> LotRecall:
    """Recall a lot: every kit made from it is marked recalled; kits still in stock are
    withdrawn (their units left the lot when they were made, and none goes back to the dose
    stock: they go back to the supplier with the lot). Raises NotFound, Invalid (no reason)
    or Conflict (already recalled)."""
    lot = get_lot(site, lot_id)
    reason = (reason or "").strip()
    if not reason:
        raise _field("reason", "Say why the lot is recalled (the notice's words).")
    if db.session.scalar(db.select(LotRecall.id).where(LotRecall.lot_id == lot.id)):
        raise Conflict(f"Lot {lot.lot_number} was already recalled.", current_state="recalled")
    recall = LotRecall(site_id=site.id, lot_id=lot.id, reason=reason[:200], recalled_at=now,
                       recalled_by=actor.staff_id)
    db.session.add(recall)
    kits = list(db.session.execute(db.select(NaloxoneKit).where(
        NaloxoneKit.lot_id == lot.id)).scalars())
    for kit in kits:
        kit.recalled_at = now
        if kit.state == "in_stock":
            kit.state = "withdrawn"
    db.session.flush()
    record(actor, "naloxone_lot_recalled", "naloxone_lot", lot.id, site_id=site.id, now=now,
           detail={"recall": recall.id, "kits": [k.id for k in kits]})
    live.announce(site.id, TOPIC_STOCK)
    db.session.commit()
    return recall


def recall_view(site: Site, lot_id: int, *, now: datetime) -> dict:
    """A lot and every kit made from it, who holds each and whether they had another kit
    since; the recall when there is one."""
    lot = get_lot(site, lot_id)
    recall = db.session.execute(db.select(LotRecall).where(
        LotRecall.lot_id == lot.id)).scalar_one_or_none()
    return {"lot": lot, "recall": recall, "kits": list_kits(site, now=now, lot_id=lot.id)}


# --- Expiry warnings ------------------------------------------------------------------------


def kits_to_replace(client, *, today: date) -> list[NaloxoneKit]:
    """The client's kits to replace at this visit: issued to them, not reported used, no
    kit given to them since, and expiring within the site's window or recalled."""
    site = db.session.get(Site, client.site_id)
    window = today + timedelta(days=site.kit_expiry_warning_days)
    return list(db.session.execute(_kits_to_replace_statement(), {
        "client_id": client.id, "window": window}).scalars())


@functools.cache
def _kits_to_replace_statement():
    """Built once: every check-in reads it, and building it cost more than running it."""
    later = aliased(TakeHomeKit)
    client_id = db.bindparam("client_id")
    return (db.select(NaloxoneKit).join(TakeHomeKit, TakeHomeKit.kit_id == NaloxoneKit.id)
            .where(TakeHomeKit.client_id == client_id, NaloxoneKit.state == "issued",
                   db.or_(NaloxoneKit.expires_on <= db.bindparam("window"),
                          NaloxoneKit.recalled_at.is_not(None)),
                   ~db.exists().where(later.client_id == client_id,
                                      later.id > TakeHomeKit.id))
            .order_by(NaloxoneKit.expires_on, NaloxoneKit.serial))


def warn_expiring_kits(*, now: datetime) -> int:
    """The daily job: list for replacement at their next visit the kits issued to clients
    that expire within each site's ``kit_expiry_warning_days`` (the check-in shows them);
    audit each site's list; return how many kits were newly listed."""
    listed = 0
    later = aliased(TakeHomeKit)
    for site in db.session.execute(db.select(Site).order_by(Site.id)).scalars():
        window = site.local_date(now) + timedelta(days=site.kit_expiry_warning_days)
        kits = list(db.session.execute(
            db.select(NaloxoneKit).join(TakeHomeKit, TakeHomeKit.kit_id == NaloxoneKit.id)
            .where(NaloxoneKit.site_id == site.id, NaloxoneKit.state == "issued",
                   NaloxoneKit.expiry_warned_at.is_(None), NaloxoneKit.expires_on <= window,
                   TakeHomeKit.client_id.is_not(None),
                   ~db.exists().where(later.client_id == TakeHomeKit.client_id,
                                      later.id > TakeHomeKit.id))).scalars())
        if not kits:
            continue
        for kit in kits:
            kit.expiry_warned_at = now
        record(Actor.system(), "naloxone_kits_expiring", "site", site.id, site_id=site.id,
               now=now, detail={"kits": [k.id for k in kits],
                                "kit_expiry_warning_days": site.kit_expiry_warning_days})
        listed += len(kits)
        live.announce(site.id, TOPIC_STOCK)
    db.session.commit()
    return listed


# --- The monthly report ---------------------------------------------------------------------


def monthly_figures(site: Site, *, start: datetime, end: datetime) -> dict:
    """Kits given in [start, end) first or as a replacement and why; kits reported used in
    the site's days of that span, and what became of the person."""
    given = list(db.session.execute(db.select(TakeHomeKit).where(
        TakeHomeKit.site_id == site.id, TakeHomeKit.given_at >= start,
        TakeHomeKit.given_at < end)).scalars())
    first_day, end_day = site.local_date(start), site.local_date(end)
    uses = list(db.session.execute(db.select(KitUse.outcome).where(
        KitUse.site_id == site.id, KitUse.used_on >= first_day,
        KitUse.used_on < end_day)).scalars())
    outcomes = Counter(uses)
    return {
        "first_or_replacement": {
            "first": sum(k.number for k in given if k.replacement_reason is None),
            "replacement": sum(k.number for k in given if k.replacement_reason is not None)},
        "replacements_by_reason": {reason: sum(k.number for k in given
                                               if k.replacement_reason == reason)
                                   for reason in REPLACEMENT_REASONS},
        "reported_used": len(uses),
        "use_outcomes": {outcome: outcomes[outcome] for outcome in USE_OUTCOMES},
    }



def kit_by_serial(site: Site, serial: str | None) -> NaloxoneKit:
    """The site's kit with this serial; raises Invalid on ``serial`` when there is none."""
    serial = (serial or "").strip().upper()
    kit = db.session.execute(db.select(NaloxoneKit).filter_by(
        site_id=site.id, serial=serial)).scalar_one_or_none() if serial else None
    if kit is None:
        raise _field("serial", f"No kit {serial} in this site's register." if serial
                     else "Give the kit's serial.")
    return kit
