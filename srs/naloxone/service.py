"""Naloxone stock: lots by form and expiry, their ledger, take-home kits, stock findings.

Callers: the stock page and the API, the daily stock job, the demo seeding, and the
overdose console, which draws a dose through :func:`draw_doses` and puts a struck one back
through :func:`return_dose` (both are pieces of the console's unit of work: they never
commit); :func:`give_kit` is likewise the piece of a training session's unit of work that
gives a kit (:func:`issue_kit` is the same as a unit of work of its own). Every other
function that changes something is one unit of work: check, change, audit, announce (topic
``stock``), commit once. Each takes ``now`` and an ``Actor`` and raises a DomainError: 404
for a lot or finding of another site, 409 for more than on hand or a finding already
resolved, 422 with field messages.

Stock never stops care: a dose or a kit given with nothing on hand is still given, and a
discrepancy finding tells the supervisor.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from srs import live
from srs.auth.service import Actor, record
from srs.clients.service import client_for_code
from srs.errors import Conflict, Invalid, NotFound
from srs.extensions import db
from srs.naloxone.models import (
    FORMS,
    FORMS_FOR_KIT,
    FORMS_FOR_ROUTE,
    KIT_FORMS,
    REPLACEMENT_REASONS,
    LotRecall,
    NaloxoneKit,
    NaloxoneLot,
    StockFinding,
    StockMovement,
    TakeHomeKit,
    Trainee,
)
from srs.sites.models import Site

EXPIRY_WARNING = timedelta(days=30)
TOPIC_STOCK = "stock"
# The form families the daily check counts low stock by.
FAMILIES = {"injectable": ("ampoule", "vial"), "nasal": ("nasal_spray",)}


def _field(name: str, message: str) -> Invalid:
    return Invalid(message, {name: [message]})


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


# --- Reading --------------------------------------------------------------------------------


@dataclass
class LotView:
    """A lot as the stock page shows it: with whether it is expired or expiring soon."""

    lot: NaloxoneLot
    expired: bool
    expiring: bool
    ledger_total: int

    def __getattr__(self, name):
        return getattr(self.lot, name)


def get_lot(site: Site, lot_id: int) -> NaloxoneLot:
    """The lot of this site; raises NotFound for another site's or none."""
    lot = db.session.get(NaloxoneLot, lot_id)
    if lot is None or lot.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no naloxone lot with id {lot_id}.")
    return lot


def list_stock(site: Site, *, now: datetime) -> dict:
    """Every lot by form and expiry, the totals on hand by form, open findings, recent
    movements and kits given; the register's kits not yet given by kind (their units are
    not on hand) and how many of those have expired."""
    today = site.local_date(now)
    lots = list(db.session.execute(db.select(NaloxoneLot).where(
        NaloxoneLot.site_id == site.id).order_by(
        NaloxoneLot.form, NaloxoneLot.expires_on, NaloxoneLot.id)).scalars())
    ledger = dict(db.session.execute(db.select(
        StockMovement.lot_id, func.sum(StockMovement.delta)).where(
        StockMovement.site_id == site.id).group_by(StockMovement.lot_id)).all())
    views = [LotView(lot, lot.expires_on < today,
                     today <= lot.expires_on <= today + EXPIRY_WARNING,
                     int(ledger.get(lot.id) or 0)) for lot in lots]
    usable = {form: sum(v.quantity for v in views if v.form == form and not v.expired)
              for form in FORMS}
    findings = list(db.session.execute(db.select(StockFinding).where(
        StockFinding.site_id == site.id, StockFinding.resolved_at.is_(None)).order_by(
        StockFinding.found_at.desc(), StockFinding.id.desc())).scalars())
    movements = list(db.session.execute(db.select(StockMovement).where(
        StockMovement.site_id == site.id).options(selectinload(StockMovement.lot)).order_by(
        StockMovement.at.desc(), StockMovement.id.desc()).limit(50)).scalars())
    kits = list(db.session.execute(db.select(TakeHomeKit).where(
        TakeHomeKit.site_id == site.id).options(selectinload(TakeHomeKit.client)).order_by(
        TakeHomeKit.given_at.desc(), TakeHomeKit.id.desc()).limit(20)).scalars())
    # Units sealed in registered kits not yet given: take-home stock, not on hand for doses.
    # One expression, grouped by as selected (PostgreSQL takes two binds of one date as two
    # expressions).
    expired = (NaloxoneKit.expires_on < today).label("expired")
    sealed = db.session.execute(db.select(
        NaloxoneKit.kind, expired, func.count(NaloxoneKit.id)).where(
        NaloxoneKit.site_id == site.id, NaloxoneKit.state == "in_stock").group_by(
        NaloxoneKit.kind, expired)).all()
    in_kits = {kind: sum(n for k, old, n in sealed if k == kind and not old)
               for kind in KIT_FORMS}
    return {"site": site, "lots": views, "on_hand": usable, "findings": findings,
            "movements": movements, "kits": kits, "in_kits": in_kits,
            "kits_expired": sum(n for _k, old, n in sealed if old), "today": today,
            "threshold": site.naloxone_low_stock, "generated_at": now}


def kit_figures(site: Site, *, start: datetime, end: datetime) -> dict:
    """Take-home kits given in [start, end), as the monthly report counts them: by form,
    replacing a used kit, with training."""
    kits = list(db.session.execute(db.select(TakeHomeKit).where(
        TakeHomeKit.site_id == site.id, TakeHomeKit.given_at >= start,
        TakeHomeKit.given_at < end)).scalars())
    return {
        "take_home_kits": {form: sum(k.number for k in kits if k.form == form)
                           for form in KIT_FORMS},
        "take_home_kits_replacing_used": sum(k.number for k in kits if k.replaces_used),
        "take_home_kits_with_training": sum(k.number for k in kits if k.training_given),
    }


# --- Receiving, taking out, kits ------------------------------------------------------------


def receive_stock(site: Site, data: dict, *, actor: Actor, now: datetime) -> NaloxoneLot:
    """Add received naloxone to a lot (new, or the same lot number and form again).

    Raises Invalid: an expiry already past, a known lot number with another expiry.
    """
    today = site.local_date(now)
    if data["expires_on"] < today:
        raise _field("expires_on", "This stock has expired: do not receive it.")
    lot_number = data["lot_number"].strip()
    if not lot_number:
        raise _field("lot_number", "Give the lot number printed on the box.")
    lot = db.session.execute(db.select(NaloxoneLot).filter_by(
        site_id=site.id, form=data["form"], lot_number=lot_number)).scalar_one_or_none()
    if lot is not None and lot.expires_on != data["expires_on"]:
        raise _field("expires_on", f"Lot {lot_number} is on record with expiry "
                                   f"{lot.expires_on:%Y-%m-%d}; check the box.")
    if lot is None:
        lot = NaloxoneLot(site_id=site.id, product=data["product"].strip(), form=data["form"],
                          strength=data["strength"].strip(), lot_number=lot_number,
                          expires_on=data["expires_on"], quantity=0, received_at=now)
        db.session.add(lot)
        db.session.flush()
    _change_count(lot.id, data["quantity"])
    db.session.add(StockMovement(site_id=site.id, lot_id=lot.id, kind="received",
                                 delta=data["quantity"], at=now, by=actor.staff_id))
    db.session.flush()
    db.session.expire(lot, ["quantity"])
    check_site_stock(site, now=now)
    record(actor, "naloxone_received", "naloxone_lot", lot.id, site_id=site.id, now=now,
           detail={"quantity": data["quantity"]})
    live.announce(site.id, TOPIC_STOCK)
    db.session.commit()
    return lot


def _change_count(lot_id: int, delta: int) -> bool:
    """Change a lot's count by ``delta`` in one guarded UPDATE, never below zero (two takers
    at once never share the last unit); whether it changed. The lot object's count is the
    caller's to expire."""
    return bool(db.session.execute(
        db.update(NaloxoneLot).where(NaloxoneLot.id == lot_id,
                                     NaloxoneLot.quantity + delta >= 0)
        .values(quantity=NaloxoneLot.quantity + delta)
        .execution_options(synchronize_session=False)).rowcount)


def record_movement(lot: NaloxoneLot, *, kind: str, quantity: int, reason: str | None,
                    actor: Actor, now: datetime) -> StockMovement:
    """Take units out as expired or wasted, or adjust a count (either way) with a reason.

    Raises Invalid (kind, quantity, a missing reason) or Conflict (more than on hand).
    """
    reason = (reason or "").strip() or None
    if kind not in ("expired", "wasted", "adjusted"):
        raise _field("kind", "Choose expired, wasted or adjusted.")
    if not quantity:
        raise _field("quantity", "Give how many.")
    if kind in ("expired", "wasted") and quantity < 0:
        raise _field("quantity", "Give how many went out, as a positive number.")
    if kind == "adjusted" and not reason:
        raise _field("reason", "Say why the count is adjusted.")
    delta = quantity if kind == "adjusted" else -quantity
    if not _change_count(lot.id, delta):
        db.session.rollback()
        raise Conflict(f"Lot {lot.lot_number} has only {lot.quantity} on hand.",
                       errors={"quantity": [f"At most {lot.quantity}."]},
                       current_quantity=lot.quantity)
    movement = StockMovement(site_id=lot.site_id, lot_id=lot.id, kind=kind, delta=delta,
                             at=now, by=actor.staff_id, reason=reason)
    db.session.add(movement)
    db.session.flush()
    db.session.expire(lot, ["quantity"])
    site = db.session.get(Site, lot.site_id)
    check_site_stock(site, now=now)
    record(actor, "naloxone_movement", "naloxone_lot", lot.id, site_id=lot.site_id, now=now,
           detail={"kind": kind, "delta": delta})
    live.announce(lot.site_id, TOPIC_STOCK)
    db.session.commit()
    return movement


def set_aside_for_kits(lot: NaloxoneLot, serials: list[str], *, actor: Actor,
                       now: datetime) -> StockMovement:
    """Take one unit of ``lot`` per kit made from it, as one take-home ledger row naming the
    serials: a unit sealed in a kit is take-home stock from then on, never the dose stock
    the overdose console draws from (DOMAIN.md keeps the two apart), so giving the kit out
    later takes nothing more. A piece of the register's unit of work: never commits.

    The row has no ``kit_id`` (that names a kit given out) and is at the kits' ``added_at``:
    :func:`_set_aside` finds a kit's unit by it. Raises Invalid on ``lot_id`` when the lot
    has fewer units on hand than kits, before anything is changed.
    """
    count = len(serials)
    taken = _change_count(lot.id, -count)
    db.session.expire(lot, ["quantity"])
    if not taken:
        raise _field("lot_id", f"Lot {lot.lot_number} has {lot.quantity} on hand, too few "
                               f"to make {count} kit{'s' if count != 1 else ''}.")
    named = serials[0] if count == 1 else f"{serials[0]} to {serials[-1]}"
    movement = StockMovement(site_id=lot.site_id, lot_id=lot.id, kind="take_home",
                             delta=-count, at=now, by=actor.staff_id,
                             reason=f"Made into take-home kit{'s' if count != 1 else ''} "
                                    f"{named}")
    db.session.add(movement)
    db.session.flush()
    check_site_stock(db.session.get(Site, lot.site_id), now=now)
    return movement


def _set_aside(kit: NaloxoneKit) -> bool:
    """Whether the kit's unit left its lot when the kit was made (every kit made since
    units are set aside; one registered before still draws when it is given)."""
    return db.session.scalar(db.select(StockMovement.id).where(
        StockMovement.lot_id == kit.lot_id, StockMovement.kind == "take_home",
        StockMovement.kit_id.is_(None), StockMovement.at == kit.added_at).limit(1)) is not None


def record_take_home_kit(site: Site, data: dict, *, actor: Actor,
                         now: datetime) -> TakeHomeKit:
    """The short form of :func:`issue_kit`: ``number`` kits of a form handed to a client
    code, no serial; ``replaces_used`` is a replacement for the reason ``used``."""
    return issue_kit(site, {**data, "serial": None, "trainee_id": None}, actor=actor, now=now)


def kit_to_give(site: Site, serial: str, *, now: datetime) -> NaloxoneKit:
    """The register's kit with ``serial`` if it may be given now (locked for the giving).

    Raises Invalid (no such serial) or Conflict (recalled, not in stock, expired), each
    with its message under ``serial``.
    """
    serial = (serial or "").strip().upper()
    kit = db.session.execute(db.select(NaloxoneKit).filter_by(
        site_id=site.id, serial=serial).with_for_update()).scalar_one_or_none()
    if kit is None:
        raise _field("serial", f"No kit {serial} in this site's register.")
    if kit.recalled_at is not None:
        raise Conflict(f"Kit {kit.serial} is from a recalled lot: do not give it.",
                       errors={"serial": ["From a recalled lot."]}, current_state="recalled")
    if kit.state != "in_stock":
        raise Conflict(f"Kit {kit.serial} is not in stock (it is {kit.state}).",
                       errors={"serial": ["Not in stock."]}, current_state=kit.state)
    if kit.expires_on < site.local_date(now):
        raise Conflict(f"Kit {kit.serial} expired on {kit.expires_on:%Y-%m-%d}.",
                       errors={"serial": ["Expired."]}, current_state="expired")
    return kit


def issue_kit(site: Site, data: dict, *, actor: Actor, now: datetime) -> TakeHomeKit:
    """Give a kit (:func:`give_kit`) as a unit of work of its own: commits."""
    given = give_kit(site, data, actor=actor, now=now)
    db.session.commit()
    return given


def give_kit(site: Site, data: dict, *, actor: Actor, now: datetime) -> TakeHomeKit:
    """Kits handed out to take away: to a client code or a trainee (``trainee_id``), one kit
    by ``serial`` from the register or ``number`` kits of a ``form``; a first kit or a
    replacement with its reason (``other`` with a note). The short form takes its kits
    from stock, first expiry first, and gives them even when stock is short (flagged for
    the supervisor).

    A piece of the caller's unit of work (a training session gives its kits in its own):
    audits and announces, never commits. Raises Invalid (the holder, form, serial or
    reason), NotFound (another site's trainee), Conflict (a serial kit already issued,
    recalled or expired). A serial kit's unit already left its lot when the kit was made
    (:func:`set_aside_for_kits`): giving it takes nothing more from stock.
    """
    reason = data.get("replacement_reason") or None
    if data.get("replaces_used") and reason is None:
        reason = "used"
    if reason is not None and reason not in REPLACEMENT_REASONS:
        raise _field("replacement_reason", "Choose why this kit replaces another.")
    if data.get("replacement") and reason is None:
        raise _field("replacement_reason", "Say why this kit replaces another.")
    note = (data.get("replacement_note") or "").strip() or None
    if reason == "other" and note is None:
        raise _field("replacement_note", "Say what happened to the kit it replaces.")
    client = trainee = kit = None
    if data.get("trainee_id") is not None:
        if data.get("client_code"):
            raise _field("client_code", "Give the kit to a client code or a trainee, not both.")
        trainee = db.session.get(Trainee, data["trainee_id"])
        if trainee is None or trainee.site_id != site.id:
            raise _field("trainee_id", "This site has no such trainee.")
    if (data.get("serial") or "").strip():
        kit = kit_to_give(site, data["serial"], now=now)
        form, number = kit.kind, 1
    else:
        form, number = data.get("form"), data.get("number") or 1
        if form not in KIT_FORMS:
            raise _field("form", "Choose injectable or nasal.")
    if trainee is None:
        client, _new = client_for_code(site, data.get("client_code"), actor=actor, now=now,
                                       field="client_code")
    if kit is not None:
        kit.state = "issued"
    given = TakeHomeKit(site_id=site.id, client_id=client.id if client else None,
                        trainee_id=trainee.id if trainee else None,
                        kit_id=kit.id if kit else None, form=form, number=number,
                        replacement_reason=reason, replacement_note=note,
                        replaces_used=reason == "used",
                        training_given=bool(data.get("training_given")), given_at=now,
                        given_by=actor.staff_id, stock_discrepancy=False)
    db.session.add(given)
    db.session.flush()
    if kit is not None:
        # Its unit left the lot when the kit was made; only a kit older than that draws.
        short = 0 if _set_aside(kit) else _draw_from_lot(
            site, kit.lot_id, kind="take_home", actor=actor, now=now, kit_id=given.id)
    else:
        _first, short = _draw_units(site, FORMS_FOR_KIT[form], number, kind="take_home",
                                    actor=actor, now=now, kit_id=given.id)
    if short:
        given.stock_discrepancy = True
        _discrepancy(site, key=f"discrepancy:kit:{given.id}", kit_id=given.id, now=now, detail=(
            f"{short} {KIT_FORMS[form].lower()} take-home kit(s) given with no stock on "
            f"hand."))
    check_site_stock(site, now=now)
    detail = {"kit": given.id, "form": form, "number": number}
    if kit is not None:
        detail["naloxone_kit"] = kit.id
    if reason is not None:
        detail["replacement_reason"] = reason
    if client is not None:
        record(actor, "take_home_kit_given", "client", client.id, site_id=site.id, now=now,
               detail=detail)
    else:
        record(actor, "take_home_kit_given_trainee", "naloxone_trainee", trainee.id,
               site_id=site.id, now=now, detail=detail)
    live.announce(site.id, TOPIC_STOCK)
    return given


def _draw_from_lot(site: Site, lot_id: int, *, kind: str, actor: Actor, now: datetime,
                   kit_id: int) -> int:
    """Take one unit from this lot (a serial kit's own); return 1 when none was on hand."""
    if not _change_count(lot_id, -1):
        return 1
    db.session.add(StockMovement(site_id=site.id, lot_id=lot_id, kind=kind, delta=-1, at=now,
                                 by=actor.staff_id, kit_id=kit_id))
    db.session.flush()
    lot = db.session.get(NaloxoneLot, lot_id)
    db.session.expire(lot, ["quantity"])
    return 0


def resolve_finding(site: Site, finding_id: int, *, actor: Actor, now: datetime) -> StockFinding:
    """A supervisor has seen to a finding (counted, reordered, explained).

    Raises NotFound (another site's or none) or Conflict (already resolved).
    """
    finding = db.session.get(StockFinding, finding_id)
    if finding is None or finding.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no stock finding with id {finding_id}.")
    if finding.resolved_at is not None:
        raise Conflict("This finding was already resolved.", current_state="resolved")
    finding.resolved_at = now
    finding.resolved_by = actor.staff_id
    record(actor, "stock_finding_resolved", "stock_finding", finding.id, site_id=site.id,
           now=now, detail={"kind": finding.kind})
    live.announce(site.id, TOPIC_STOCK)
    db.session.commit()
    return finding


# --- Doses the overdose console gives -------------------------------------------------------


@dataclass(frozen=True)
class Drawn:
    """What a dose took from stock: the lot its first unit came from (None when nothing was
    on hand) and how many units were given with no stock."""

    lot_id: int | None
    short: int


def draw_doses(site: Site, *, route: str, units: int = 1, intervention_id: int, given: str,
               actor: Actor, now: datetime) -> Drawn:
    """Take the units a dose used from the site's lots of the route's forms, first expiry
    first. Called by the overdose console when it records a dose; does not commit (the
    console's unit of work does) and announces the stock.

    Care comes first: with too little on hand nothing is refused; the shortfall becomes a
    discrepancy finding, ``given`` saying what was given ("IM 0.4 mg given in response 7").
    Raises Invalid on ``route`` for a route no form is given by.
    """
    forms = FORMS_FOR_ROUTE.get(route)
    if forms is None:
        raise _field("route", "Choose the route: IM, IN or IV.")
    first, short = _draw_units(site, forms, units, kind="administered", actor=actor,
                               now=now, intervention_id=intervention_id)
    if short:
        names = " or ".join(FORMS[f].lower() for f in forms)
        _discrepancy(site, key=f"discrepancy:intervention:{intervention_id}",
                     intervention_id=intervention_id, now=now,
                     detail=f"{given} with no {names} on hand.")
    check_site_stock(site, now=now)
    live.announce(site.id, TOPIC_STOCK)
    return Drawn(first, short)


def return_dose(site: Site, lot_id: int, *, intervention_id: int, reason: str, actor: Actor,
                now: datetime) -> None:
    """Put a dose's unit back in the lot it came from, as an adjustment with ``reason``.

    Called by the overdose console when a dose entry is struck; does not commit. Re-runs the
    stock check and announces the stock, as drawing a dose does.
    """
    _change_count(lot_id, 1)
    db.session.add(StockMovement(
        site_id=site.id, lot_id=lot_id, kind="adjusted", delta=1, at=now,
        by=actor.staff_id, intervention_id=intervention_id, reason=reason))
    lot = db.session.get(NaloxoneLot, lot_id)
    db.session.expire(lot, ["quantity"])
    db.session.flush()
    # Back on the shelf: a low-stock finding may no longer hold, and stock pages show it.
    check_site_stock(site, now=now)
    live.announce(site.id, TOPIC_STOCK)


def _draw_units(site: Site, forms, units: int, *, kind: str, actor: Actor, now: datetime,
                intervention_id: int | None = None,
                kit_id: int | None = None) -> tuple[int | None, int]:
    """Take ``units`` from the site's lots of ``forms``, first expiry first out; return the
    first lot taken from (or None) and how many could not be found on hand.

    Each unit is taken by a guarded UPDATE (quantity > 0), so two doses at once never take
    the same last ampoule, and every unit taken writes its ledger row. A recalled lot is
    never taken from.
    """
    today = site.local_date(now)
    first = None
    short = units
    while short > 0:
        lots = db.session.execute(
            db.select(NaloxoneLot.id, NaloxoneLot.quantity).where(
                NaloxoneLot.site_id == site.id, NaloxoneLot.form.in_(forms),
                NaloxoneLot.quantity > 0, NaloxoneLot.expires_on >= today,
                ~db.exists().where(LotRecall.lot_id == NaloxoneLot.id))
            .order_by(NaloxoneLot.expires_on, NaloxoneLot.received_at, NaloxoneLot.id)
        ).all()
        if not lots:
            break
        lot_id, on_hand = lots[0]
        take = min(short, on_hand)
        if not _change_count(lot_id, -take):
            continue  # someone took from it meanwhile: look again
        db.session.add(StockMovement(
            site_id=site.id, lot_id=lot_id, kind=kind, delta=-take, at=now,
            by=actor.staff_id, intervention_id=intervention_id, kit_id=kit_id))
        if first is None:
            first = lot_id
        short -= take
    db.session.flush()
    for lot in db.session.identity_map.values():
        if isinstance(lot, NaloxoneLot):
            db.session.expire(lot, ["quantity"])
    return first, short


def _discrepancy(site: Site, *, key: str, detail: str, now: datetime,
                 intervention_id: int | None = None, kit_id: int | None = None) -> None:
    db.session.add(StockFinding(
        site_id=site.id, kind="discrepancy", key=key, detail=detail, found_at=now,
        intervention_id=intervention_id, kit_id=kit_id))


# --- The daily stock check ------------------------------------------------------------------


def check_site_stock(site: Site, *, now: datetime) -> list[StockFinding]:
    """Write findings for low stock and lots expiring within 30 days or expired on hand;
    resolve the ones no longer true. Adds to the session; the caller commits.

    A finding is written once per condition: a lot expiring has one row; low stock of a
    form family has one open row until it is restocked.
    """
    today = site.local_date(now)
    lots = list(db.session.execute(db.select(NaloxoneLot).where(
        NaloxoneLot.site_id == site.id)).scalars())
    open_findings = list(db.session.execute(db.select(StockFinding).where(
        StockFinding.site_id == site.id, StockFinding.resolved_at.is_(None),
        StockFinding.kind != "discrepancy")).scalars())
    wanted: dict[str, tuple] = {}
    for family, forms in FAMILIES.items():
        on_hand = sum(lot.quantity for lot in lots
                      if lot.form in forms and lot.expires_on >= today)
        if on_hand < site.naloxone_low_stock:
            wanted[f"low:{family}"] = ("low_stock", None, (
                f"{family.capitalize()} naloxone: {on_hand} on hand, under this site's "
                f"threshold of {site.naloxone_low_stock}."))
    for lot in lots:
        if lot.quantity <= 0:
            continue
        label = f"Lot {lot.lot_number} ({FORMS[lot.form].lower()}, {lot.quantity} on hand)"
        if lot.expires_on < today:
            wanted[f"expired:{lot.id}"] = ("expired", lot.id,
                                           f"{label} expired on {lot.expires_on:%Y-%m-%d}.")
        elif lot.expires_on <= today + EXPIRY_WARNING:
            wanted[f"expiring:{lot.id}"] = ("expiring", lot.id,
                                            f"{label} expires on {lot.expires_on:%Y-%m-%d}.")
    made = []
    open_by_prefix = {f.key.rsplit("@", 1)[0]: f for f in open_findings}
    for prefix, finding in open_by_prefix.items():
        if prefix not in wanted:
            finding.resolved_at = now
    for prefix, (kind, lot_id, detail) in wanted.items():
        if prefix in open_by_prefix:
            continue
        finding = StockFinding(site_id=site.id, kind=kind, key=f"{prefix}@{_iso(now)}",
                               lot_id=lot_id, detail=detail[:300], found_at=now)
        try:
            with db.session.begin_nested():
                db.session.add(finding)
        except IntegrityError:
            # Found in the same second by another writer (the daily job beside a receipt):
            # the condition has its row already.
            continue
        made.append(finding)
    db.session.flush()
    return made


def check_naloxone_stock(*, now: datetime) -> int:
    """The daily job: check every site's stock, commit, announce; return findings made."""
    made = 0
    changed = []
    for site in db.session.execute(db.select(Site).order_by(Site.id)).scalars():
        found = check_site_stock(site, now=now)
        made += len(found)
        if found:
            changed.append(site.id)
    for site_id in changed:
        live.announce(site_id, TOPIC_STOCK)
    db.session.commit()
    return made
