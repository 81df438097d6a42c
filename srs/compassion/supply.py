"""A club's batches and its supplies to members, within the site's limits.

Batches: receiving a batch opens its own line of the controlled-drug register (named for the
substance, strength ``batch <lot>``, counted in mg) and receives the quantity into it, so every
movement of the batch is in the same append-only ledger with its counts and discrepancy rules.
A batch is supplied only after a passing drug check (the check found the labelled substance and
nothing on the site's watch list); a finding the label does not name blocks it until a
supervisor clears it with a reason.

Supplies: to an active member, at cost, witnessed by default (the member goes to the floor's
queue, or their open visit is linked) or take-home where the site and the member allow it.
Each supply draws from the batch's register line in its own unit of work.

Limits (the site's settings), checked in this order, the first one reached refusing:

- ``window``: inside one of the pickup windows ("HH:MM-HH:MM" in site time), when any are set;
- ``pickups``: at most ``compassion_pickups_per_day`` supplies a site day;
- ``daily``: at most ``compassion_daily_limit_mg`` a site day (0: no daily cap);
- ``substance``: at most ``compassion_substance_limits_mg[substance]`` in the rolling week;
- ``weekly``: at most ``compassion_weekly_limit_mg`` in the rolling week across substances.

The rolling week is the seven days before now as the site's clock reads them: a supply at
10:00 on a Saturday leaves the week at 10:00 the next Saturday in the site's time zone (168
hours, or 167 or 169 when the clocks change between). A missed pickup carries no penalty and
nothing rolls over, unless the site allows rollover: then the daily cap left unused on the
previous site day is added once to today's (never more than one day's worth carried).

A refusal names the limit, the allowance left and when it frees up, and is audited as
``compassion_limit_reached`` (detail ``{"member_id", "limit"}``).
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app

from srs import live
from srs.auth.service import Actor, record
from srs.booths import service as floor
from srs.booths.models import OPEN_STATES, Visit
from srs.compassion.models import Member, Supply, SupplyBatch
from srs.controlled import service as register
from srs.controlled.models import ControlledDrug
from srs.drugchecks.models import STRIPS, DrugCheck
from srs.drugchecks.service import watch_findings
from srs.errors import Conflict, Invalid, NotFound
from srs.extensions import db
from srs.sites.models import Site

TOPIC = "club"
SUPPLYABLE = ("passed", "cleared")
LIMITS = {"window": "Pickup window", "pickups": "Pickups today", "daily": "Today's cap",
          "substance": "Weekly cap for the substance", "weekly": "Weekly limit"}
SAFETY_LINE = ("Start low, go slow. Don't use alone: use at the site. Carry naloxone. "
               "Call 911 for an overdose.")
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _field(name: str, message: str) -> Invalid:
    return Invalid(message, {name: [message]})


def grams(mg: int) -> str:
    """``mg`` as grams with one decimal, as members and staff speak of it: "14.0 g"."""
    return f"{Decimal(mg) / 1000:.1f} g"


# --- Batches ---------------------------------------------------------------------------------


def list_batches(site: Site) -> list[SupplyBatch]:
    return list(db.session.execute(db.select(SupplyBatch).filter_by(site_id=site.id)
                                   .order_by(SupplyBatch.received_at.desc(),
                                             SupplyBatch.id.desc())).scalars())


def get_batch(site: Site, batch_id: int) -> SupplyBatch:
    batch = db.session.get(SupplyBatch, batch_id)
    if batch is None or batch.site_id != site.id:
        raise NotFound("No such batch at this site.")
    return batch


def batch_balance(batch: SupplyBatch) -> int:
    """What the batch's register line holds now, in mg."""
    if batch.register_drug_id is None:
        return 0
    return db.session.get(ControlledDrug, batch.register_drug_id).balance


def quantity_mg(quantity, *, unit: str, unit_mg: int | None, field: str = "quantity") -> int:
    """A quantity as entered (grams to 0.1 g, or whole tablets) in whole mg."""
    try:
        value = Decimal(str(quantity))
    except ArithmeticError:
        raise _field(field, "Give a number.") from None
    if not value.is_finite() or value <= 0:
        raise _field(field, "Give a quantity above zero.")
    if unit == "tablet":
        if value != value.to_integral_value():
            raise _field(field, "Give a whole number of tablets.")
        if not unit_mg:
            raise _field("unit_mg", "Give the mg in each tablet.")
        return int(value) * unit_mg
    if value * 10 != (value * 10).to_integral_value():
        raise _field(field, "Give grams to one decimal place (for example 0.5).")
    return int(value * 1000)


def _cents(amount, field: str = "cost") -> int:
    try:
        value = Decimal(str(amount))
    except ArithmeticError:
        raise _field(field, "Give the cost in dollars and cents.") from None
    if not value.is_finite() or value < 0:
        raise _field(field, "Give a cost of zero or more.")
    if value * 100 != (value * 100).to_integral_value():
        raise _field(field, "Give the cost to the cent.")
    return int(value * 100)


def receive_batch(site: Site, data: dict, *, actor: Actor, now: datetime) -> SupplyBatch:
    """Receive a batch: open its register line, receive it there, and record the batch
    (with its drug check, when one is given). Raises Invalid or NotFound.

    One unit of work: the register line, its receipt and the batch are saved together or
    not at all.
    """
    unit = data.get("unit") or "g"
    unit_mg = data.get("unit_mg") if unit == "tablet" else None
    mg = quantity_mg(data.get("quantity"), unit=unit, unit_mg=unit_mg)
    cost = _cents(data.get("cost"))
    substance = (data.get("substance") or "").strip()
    lot = (data.get("lot") or "").strip()
    errors = {}
    for name, value, message in (
            ("substance", substance, "Give the substance."),
            ("label_content", data.get("label_content"), "Give what the label says."),
            ("source", data.get("source"), "Give where the batch came from."),
            ("lot", lot, "Give the batch's lot.")):
        if not (value or "").strip():
            errors[name] = [message]
    if lot and db.session.scalar(db.select(SupplyBatch.id).filter_by(site_id=site.id, lot=lot)):
        errors["lot"] = [f"Lot {lot} is already received at this site."]
    if lot and substance and db.session.scalar(db.select(ControlledDrug.id).filter_by(
            site_id=site.id, name=substance, strength=f"batch {lot}")):
        errors["lot"] = [f"{substance} batch {lot} already has a register line."]
    if data.get("expires_on") is None:
        errors["expires_on"] = ["Give the expiry date."]
    elif data["expires_on"] < site.local_date(now):
        errors["expires_on"] = ["This batch has expired: do not receive it."]
    check = None
    if data.get("drug_check_id") is not None:
        check = db.session.get(DrugCheck, data["drug_check_id"])
        if check is None or check.site_id != site.id:
            errors["drug_check_id"] = ["No drug check of this site has this id."]
    if errors:
        raise Invalid("The batch could not be received: see the marked fields.", errors)
    drug = register.create_drug(site, {"name": substance, "strength": f"batch {lot}",
                                       "unit": "mg"}, actor=actor, now=now, commit=False)
    entry = register.receive(site, {
        "drug_id": drug.id, "quantity": mg, "supplier": data["source"].strip(),
        "invoice": (data.get("invoice") or "").strip() or f"batch {lot}",
        "lot_number": lot, "expires_on": data["expires_on"]}, actor=actor, now=now,
        commit=False)
    batch = SupplyBatch(
        site_id=site.id, substance=substance, label_content=data["label_content"].strip(),
        source=data["source"].strip(), lot=lot, unit=unit, unit_mg=unit_mg, quantity_mg=mg,
        cost_cents=cost, received_at=now, received_by=actor.staff_id, state="untested",
        register_drug_id=drug.id)
    db.session.add(batch)
    db.session.flush()
    record(actor, "compassion_batch_received", "compassion_batch", batch.id, site_id=site.id,
           now=now, detail={"register_entry_id": entry.id, "quantity_mg": mg})
    if check is not None:
        _apply_check(batch, check, site, actor=actor, now=now)
    live.announce(site.id, TOPIC)
    db.session.commit()
    return batch


def tested_content(check: DrugCheck) -> str:
    """What the check found, as a label prints it: "Heroin 62%; Caffeine 10%"."""
    parts = []
    for c in check.components:
        share = f" {c.percent}%" if c.percent is not None else ""
        parts.append(f"{c.substance}{share}{' (uncertain)' if c.uncertain else ''}")
    parts += [f"{STRIPS[name]} positive" for name in STRIPS
              if check.strip_result(name) == "positive"]
    return "; ".join(parts)[:200] or "Nothing found"


def judge(batch: SupplyBatch, check: DrugCheck, site: Site) -> tuple[str, str | None]:
    """The batch's state after ``check``: passed, failed (the labelled substance not found,
    or a finding on the watch list) or blocked (a finding the label does not name)."""
    hits = watch_findings(check, site)
    if hits:
        return "failed", "On the watch list: " + ", ".join(h.label for h in hits) + "."
    labelled = batch.substance.lower()
    label = batch.label_content.lower()

    def is_labelled(name: str) -> bool:
        return labelled in name or name in labelled

    found = [c for c in check.components if not c.uncertain and is_labelled(c.substance.lower())]
    if not found:
        return "failed", f"The check did not find {batch.substance}."
    other = [c.substance for c in check.components
             if not is_labelled(c.substance.lower()) and c.substance.lower() not in label]
    other += [STRIPS[name] + " positive" for name in STRIPS
              if check.strip_result(name) == "positive" and name not in label
              and not is_labelled(name)]
    if other:
        return "blocked", "Found what the label does not say: " + ", ".join(other) + "."
    return "passed", None


def _apply_check(batch: SupplyBatch, check: DrugCheck, site: Site, *, actor: Actor,
                 now: datetime) -> None:
    state, reason = judge(batch, check, site)
    batch.drug_check_id = check.id
    batch.tested_content = tested_content(check)
    batch.state, batch.state_reason = state, reason
    batch.cleared_by = batch.cleared_at = None
    record(actor, "compassion_batch_checked", "compassion_batch", batch.id, site_id=site.id,
           now=now, detail={"drug_check_id": check.id, "state": state})


def link_check(site: Site, batch_id: int, check_id: int, *, actor: Actor,
               now: datetime) -> SupplyBatch:
    """Link a drug check to a batch and judge it (a later check replaces the earlier)."""
    batch = get_batch(site, batch_id)
    check = db.session.get(DrugCheck, check_id)
    if check is None or check.site_id != site.id:
        raise _field("drug_check_id", "No drug check of this site has this id.")
    _apply_check(batch, check, site, actor=actor, now=now)
    live.announce(site.id, TOPIC)
    db.session.commit()
    return batch


def clear_block(site: Site, batch_id: int, *, reason: str, actor: Actor,
                now: datetime) -> SupplyBatch:
    """A supervisor clears a batch a finding blocked, with the reason (audited)."""
    batch = get_batch(site, batch_id)
    reason = (reason or "").strip()
    if batch.state != "blocked":
        raise Conflict("Only a blocked batch is cleared: this one is "
                       f"{batch.state}.", {"reason": ["This batch is not blocked."]})
    if not reason:
        raise _field("reason", "Say why the batch is safe to supply.")
    batch.state, batch.state_reason = "cleared", reason[:200]
    batch.cleared_by, batch.cleared_at = actor.staff_id, now
    record(actor, "compassion_batch_cleared", "compassion_batch", batch.id, site_id=site.id,
           now=now, detail={"drug_check_id": batch.drug_check_id})
    live.announce(site.id, TOPIC)
    db.session.commit()
    return batch


RESULTS = {"passed": "Passed", "cleared": "Passed (cleared by a supervisor)",
           "failed": "Failed: do not supply", "blocked": "Blocked: do not supply",
           "untested": "Not tested: do not supply"}


def label_html(batch: SupplyBatch, site: Site, *, now: datetime) -> str:
    """A unit's label: substance, batch, tested content, date, test result, safety line.
    Built from the batch alone: no client data reaches it."""
    template = current_app.jinja_env.get_template("compassion/batch_label.html")
    return template.render(batch=batch, site=site, result=RESULTS[batch.state],
                           safety=SAFETY_LINE, printed_on=site.local_date(now))


def _pdf(html: str) -> bytes:
    from weasyprint import HTML  # loaded on first use: seconds of start-up otherwise

    return HTML(string=html).write_pdf()


def label_pdf(batch: SupplyBatch, site: Site, *, now: datetime) -> bytes:
    return _pdf(label_html(batch, site, now=now))


def get_supply(site: Site, supply_id: int) -> Supply:
    supply = db.session.get(Supply, supply_id)
    if supply is None or supply.site_id != site.id:
        raise NotFound("No such supply at this site.")
    return supply


def supply_label_html(supply: Supply, site: Site) -> str:
    """The label for what one supply handed over: the batch's substance, lot, tested content
    and test result, the supply's day and quantity and the safety line. Built from the supply's
    batch, quantity and time only: the member and their code never reach it."""
    batch = supply.batch
    template = current_app.jinja_env.get_template("compassion/supply_label.html")
    quantity = (f"{supply.quantity_mg // batch.unit_mg} tablets ({supply.quantity_mg} mg)"
                if batch.unit == "tablet" and batch.unit_mg else grams(supply.quantity_mg))
    return template.render(batch=batch, site=site, result=RESULTS[batch.state],
                           safety=SAFETY_LINE, supplied_on=site.local_date(supply.at),
                           quantity=quantity)


def print_supply_label(site: Site, supply_id: int, *, actor: Actor, now: datetime) -> bytes:
    """The supply's label as a PDF; printing it marks the supply "label printed" (audited,
    each reprint too)."""
    supply = get_supply(site, supply_id)
    pdf = _pdf(supply_label_html(supply, site))
    supply.label_printed = True
    record(actor, "compassion_label_printed", "compassion_supply", supply.id, site_id=site.id,
           now=now, detail={"batch_id": supply.batch_id})
    db.session.commit()
    return pdf


# --- Limits ----------------------------------------------------------------------------------


def week_start(site: Site, now: datetime) -> datetime:
    """Seven days before ``now`` on the site's clock."""
    wall = site.local(now).replace(tzinfo=None) - timedelta(days=7)
    return wall.replace(tzinfo=site.zone).astimezone(UTC)


def leaves_week(site: Site, at: datetime) -> datetime:
    """When a supply made ``at`` leaves the rolling week: seven days later, site clock."""
    wall = site.local(at).replace(tzinfo=None) + timedelta(days=7)
    return wall.replace(tzinfo=site.zone).astimezone(UTC)


def _windows(site: Site) -> list[tuple[time, time]]:
    out = []
    for text in site.compassion_pickup_windows or []:
        match = _WINDOW.match(str(text))
        if match:
            a, b, c, d = (int(g) for g in match.groups())
            out.append((time(a, b), time(c, d)))
    return out


def _next_window(site: Site, now: datetime) -> tuple[bool, datetime | None]:
    """Whether ``now`` is inside a pickup window (True with none set) and, if not, when the
    next one opens."""
    windows = _windows(site)
    if not windows:
        return True, None
    local = site.local(now)
    if any(start <= local.time() < end for start, end in windows):
        return True, None
    starts = []
    for days in (0, 1):
        day = local.date() + timedelta(days=days)
        for start, _end in windows:
            moment = datetime.combine(day, start, site.zone).astimezone(UTC)
            if moment > now:
                starts.append(moment)
    return False, min(starts)


def _substance_limit(site: Site, substance: str) -> int | None:
    for name, mg in (site.compassion_substance_limits_mg or {}).items():
        if name.strip().lower() == substance.strip().lower() and mg:
            return int(mg)
    return None


def _supplies(member: Member, since: datetime) -> list[tuple[datetime, int, str]]:
    return [tuple(row) for row in db.session.execute(
        db.select(Supply.at, Supply.quantity_mg, SupplyBatch.substance)
        .join(SupplyBatch, Supply.batch_id == SupplyBatch.id)
        .where(Supply.member_id == member.id, Supply.at > since)
        .order_by(Supply.at))]


def _frees_at(site: Site, rows, *, used: int, limit: int, wanted: int) -> datetime | None:
    """When enough of the week's supplies have left it for ``wanted`` more to fit."""
    for at, mg, _substance in rows:
        used -= mg
        if used + wanted <= limit:
            return leaves_week(site, at)
    return None


def daily_cap(site: Site, member: Member, now: datetime) -> int | None:
    """Today's cap in mg (None: no daily cap), with yesterday's unused cap carried once
    where the site allows rollover."""
    cap = site.compassion_daily_limit_mg or 0
    if not cap:
        return None
    if not site.compassion_rollover_allowed:
        return cap
    today = site.local_date(now)
    start, end = site.midnight(today - timedelta(days=1)), site.midnight(today)
    used = sum(mg for at, mg, _s in _supplies(member, start) if at < end)
    return cap + max(0, cap - used)


@dataclass
class Allowance:
    """What a member may still take, and when more frees up."""

    weekly_limit: int
    week_used: int
    week_left: int
    week_frees_at: datetime | None
    daily_limit: int | None
    today_used: int
    today_left: int | None
    pickups_limit: int
    pickups_today: int
    pickups_left: int
    tomorrow: datetime
    in_window: bool
    window_opens_at: datetime | None
    substances: list[dict]


def allowance(site: Site, member: Member, *, now: datetime) -> Allowance:
    week = _supplies(member, week_start(site, now))
    week = [row for row in week if row[0] <= now]
    today_start = site.midnight(site.local_date(now))
    today = [row for row in week if row[0] >= today_start]
    limit = site.compassion_weekly_limit_mg
    used = sum(mg for _at, mg, _s in week)
    cap = daily_cap(site, member, now)
    today_used = sum(mg for _at, mg, _s in today)
    in_window, opens = _next_window(site, now)
    substances = []
    for name, mg in sorted((site.compassion_substance_limits_mg or {}).items()):
        if not mg:
            continue
        s_used = sum(q for _at, q, s in week if s.lower() == name.lower())
        substances.append({"substance": name, "limit_mg": int(mg), "used_mg": s_used,
                           "left_mg": max(0, int(mg) - s_used)})
    return Allowance(
        weekly_limit=limit, week_used=used, week_left=max(0, limit - used),
        week_frees_at=leaves_week(site, week[0][0]) if week else None,
        daily_limit=cap, today_used=today_used,
        today_left=None if cap is None else max(0, cap - today_used),
        pickups_limit=site.compassion_pickups_per_day, pickups_today=len(today),
        pickups_left=max(0, site.compassion_pickups_per_day - len(today)),
        tomorrow=site.midnight(site.local_date(now) + timedelta(days=1)),
        in_window=in_window, window_opens_at=opens, substances=substances)


class LimitReached(Conflict):
    """A supply above a limit: names the limit, the allowance left and when it frees."""

    code = "limit_reached"

    def __init__(self, limit: str, message: str, *, remaining_mg: int | None,
                 frees_at: datetime | None):
        super().__init__(message, {"quantity": [message]}, limit=limit,
                         remaining_mg=remaining_mg,
                         frees_at=frees_at.isoformat() if frees_at else None)
        self.limit, self.remaining_mg, self.frees_at = limit, remaining_mg, frees_at


def check_limits(site: Site, member: Member, *, substance: str, mg: int,
                 now: datetime) -> None:
    """Raise LimitReached for the first limit ``mg`` more of ``substance`` would pass."""
    a = allowance(site, member, now=now)

    def when(moment: datetime | None) -> str:
        return site.local(moment).strftime("%a %d %b %H:%M") if moment else "later"

    if not a.in_window:
        raise LimitReached("window", "Outside the pickup windows: the next opens "
                           f"{when(a.window_opens_at)}.", remaining_mg=None,
                           frees_at=a.window_opens_at)
    if a.pickups_left <= 0:
        raise LimitReached("pickups", f"{a.pickups_today} pickups today already, the most a "
                           f"day allows; the next is possible from {when(a.tomorrow)}.",
                           remaining_mg=None, frees_at=a.tomorrow)
    if a.today_left is not None and mg > a.today_left:
        raise LimitReached("daily", f"Today's cap is {grams(a.daily_limit)}: "
                           f"{grams(a.today_left)} left today; more from {when(a.tomorrow)}.",
                           remaining_mg=a.today_left, frees_at=a.tomorrow)
    s_limit = _substance_limit(site, substance)
    rows = [row for row in _supplies(member, week_start(site, now)) if row[0] <= now]
    if s_limit is not None:
        s_rows = [row for row in rows if row[2].lower() == substance.lower()]
        s_used = sum(q for _at, q, _s in s_rows)
        if s_used + mg > s_limit:
            frees = _frees_at(site, s_rows, used=s_used, limit=s_limit, wanted=mg)
            raise LimitReached(
                "substance", f"The weekly cap for {substance} is {grams(s_limit)}: "
                f"{grams(max(0, s_limit - s_used))} left; more frees up {when(frees)}.",
                remaining_mg=max(0, s_limit - s_used), frees_at=frees)
    if a.week_used + mg > a.weekly_limit:
        frees = _frees_at(site, rows, used=a.week_used, limit=a.weekly_limit, wanted=mg)
        raise LimitReached(
            "weekly", f"The weekly limit is {grams(a.weekly_limit)}: {grams(a.week_left)} "
            f"left this week; more frees up {when(frees)}.", remaining_mg=a.week_left,
            frees_at=frees)


# --- Supply ----------------------------------------------------------------------------------


def get_member(site: Site, member_id: int) -> Member:
    member = db.session.get(Member, member_id)
    if member is None or member.site_id != site.id:
        raise NotFound("No such member at this site.")
    return member


def supplyable_batches(site: Site) -> list[SupplyBatch]:
    return [b for b in list_batches(site) if b.state in SUPPLYABLE and batch_balance(b) > 0]


def price_cents(batch: SupplyBatch, mg: int) -> int:
    """At cost: the batch's cost per mg times ``mg``, rounded to the cent (half up)."""
    return int((Decimal(batch.cost_cents) * mg / batch.quantity_mg)
               .quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _open_visit(member: Member) -> Visit | None:
    return db.session.execute(db.select(Visit).where(
        Visit.client_id == member.client_id, Visit.site_id == member.site_id,
        Visit.state.in_([str(s) for s in OPEN_STATES])).order_by(Visit.id.desc()).limit(1)
    ).scalar_one_or_none()


def record_supply(site: Site, member_id: int, data: dict, *, actor: Actor,
                  actor_roles: set[str], now: datetime) -> Supply:
    """Supply a member from a batch within the limits. Raises NotFound, Invalid, LimitReached
    (audited, nothing else written) or Conflict (more than the batch's register holds)."""
    member = get_member(site, member_id)
    if member.state != "active":
        raise Conflict(f"Only an active member is supplied: this member is {member.state}.",
                       {"member_id": ["Not an active member."]})
    batch = db.session.get(SupplyBatch, data.get("batch_id"))
    if batch is None or batch.site_id != site.id:
        raise _field("batch_id", "Choose a batch of this site.")
    if batch.state not in SUPPLYABLE:
        reason = {"untested": "has no drug check yet",
                  "failed": "failed its drug check",
                  "blocked": "is blocked until a supervisor clears its finding"}[batch.state]
        raise _field("batch_id", f"Batch {batch.lot} {reason}: it cannot be supplied.")
    mg = quantity_mg(data.get("quantity"), unit=batch.unit, unit_mg=batch.unit_mg)
    mode = data.get("mode") or "witnessed"
    if mode == "take_home" and not (site.compassion_take_home_allowed
                                    and member.take_home_allowed):
        raise _field("mode", "Take-home supply is not allowed here for this member: "
                     "supply it witnessed." if site.compassion_take_home_allowed else
                     "This site supplies witnessed only.")
    try:
        check_limits(site, member, substance=batch.substance, mg=mg, now=now)
    except LimitReached as refusal:
        record(actor, "compassion_limit_reached", "compassion_member", member.id,
               site_id=site.id, now=now,
               detail={"member_id": member.id, "limit": refusal.limit})
        db.session.commit()
        raise
    on_hand = batch_balance(batch)
    if mg > on_hand:
        raise Conflict(f"Batch {batch.lot} holds {grams(on_hand)} in the register.",
                       {"quantity": [f"At most {grams(on_hand)}."]})
    visit_id = None
    if mode == "witnessed":
        visit = _open_visit(member)
        if visit is None:
            visit = floor.check_in(site, code=member.client.code, handle=None, actor=actor,
                                   actor_roles=actor_roles, now=now)
        visit_id = visit.id
    drug = db.session.get(ControlledDrug, batch.register_drug_id)
    entry = register.supply_from(drug, client=member.client, quantity=mg,
                                 reason=f"Club supply, batch {batch.lot}", actor=actor, now=now)
    supply = Supply(site_id=site.id, member_id=member.id, batch_id=batch.id, at=now,
                    by=actor.staff_id, quantity_mg=mg, price_cents=price_cents(batch, mg),
                    mode=mode, program_code=(data.get("program_code") or "").strip() or None,
                    register_entry_id=entry.id, visit_id=visit_id)
    db.session.add(supply)
    db.session.flush()
    record(actor, "controlled_drawn", "controlled_entry", entry.id, site_id=site.id, now=now,
           detail={"drug_id": drug.id, "delta": entry.delta})
    record(actor, "compassion_supplied", "compassion_supply", supply.id, site_id=site.id,
           now=now, detail={"member_id": member.id, "batch_id": batch.id, "quantity_mg": mg,
                            "mode": mode})
    live.announce(site.id, TOPIC)
    live.announce(site.id, register.TOPIC)
    db.session.commit()
    return supply


def recent_supplies(member: Member, *, limit: int = 20) -> list[Supply]:
    return list(db.session.execute(db.select(Supply).filter_by(member_id=member.id)
                                   .order_by(Supply.at.desc()).limit(limit)).scalars())
