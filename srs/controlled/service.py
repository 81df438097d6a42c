"""The controlled-drug register: lines, receipts, draws, witnessed waste, returns, counts.

Callers: the register page and the API, the alert scan (the loss-report clock, through
:func:`due_loss_report_alerts`) and, later, the dosing work, which draws a dose through
:func:`draw_for_dose` (a piece of its own unit of work: it never commits). Every other
function that changes something is one unit of work: check, change, audit, announce (topic
``controlled``), commit once. Each takes ``now`` and an ``Actor`` and raises a DomainError:
404 for a line or count of another site, 409 for more than the balance holds, 422 with
field messages (a witness who is not another member of the site's staff, a wrong PIN).

The balance never goes below zero: each movement is a guarded UPDATE of the line's balance
(``balance + delta >= 0``) which also takes the row's lock, so two movements at once are
applied one after the other; the column's CHECK refuses the rest.
"""

import csv
import io
from datetime import UTC, datetime, timedelta

from werkzeug.security import check_password_hash

from srs import live, signals
from srs.alerts import service as alerts
from srs.alerts.models import Alert
from srs.auth.models import AuditEvent, Role, Staff, StaffRole
from srs.auth.service import Actor, record
from srs.clients.models import Client
from srs.clients.service import client_for_code
from srs.controlled.models import (
    ENTRY_KINDS,
    LOSS_ALARM_DAYS,
    LOSS_REPORT_DAYS,
    ControlledCount,
    ControlledDrug,
    ControlledEntry,
)
from srs.errors import Conflict, Invalid, NotFound
from srs.extensions import db
from srs.sites.models import Site

TOPIC = "controlled"
LOSS_ALERT = "controlled_loss_report_due"


def _field(name: str, message: str) -> Invalid:
    return Invalid(message, {name: [message]})


# --- Reading ---------------------------------------------------------------------------------


def get_drug(site: Site, drug_id: int) -> ControlledDrug:
    drug = db.session.get(ControlledDrug, drug_id)
    if drug is None or drug.site_id != site.id:
        raise NotFound("No such drug line at this site.")
    return drug


def get_count(site: Site, count_id: int) -> ControlledCount:
    count = db.session.get(ControlledCount, count_id)
    if count is None or count.site_id != site.id:
        raise NotFound("No such count at this site.")
    return count


def loss_due(count: ControlledCount) -> datetime:
    """When the loss a count found must be reported by (10 days from its discovery)."""
    return count.counted_at + timedelta(days=LOSS_REPORT_DAYS)


def register(site: Site, *, now: datetime) -> dict:
    """Every line with its balance and latest entries, and the losses still to report."""
    drugs = list(db.session.execute(db.select(ControlledDrug).filter_by(site_id=site.id)
                                    .order_by(ControlledDrug.name, ControlledDrug.strength))
                 .scalars())
    lines = []
    for drug in drugs:
        entries = list(db.session.execute(
            db.select(ControlledEntry).filter_by(drug_id=drug.id)
            .order_by(ControlledEntry.id.desc()).limit(20)).scalars())
        last_count = db.session.execute(
            db.select(ControlledCount).filter_by(drug_id=drug.id)
            .order_by(ControlledCount.id.desc()).limit(1)).scalar_one_or_none()
        lines.append({"drug": drug, "entries": entries, "last_count": last_count})
    open_losses = list(db.session.execute(
        db.select(ControlledCount).where(ControlledCount.site_id == site.id,
                                         ControlledCount.difference != 0,
                                         ControlledCount.loss_reported_at.is_(None))
        .order_by(ControlledCount.counted_at)).scalars())
    return {"lines": lines, "open_losses": [
        {"count": c, "report_by": loss_due(c),
         "alarm": now >= c.counted_at + timedelta(days=LOSS_ALARM_DAYS)} for c in open_losses],
        "generated_at": now}


# --- Lines and movements ---------------------------------------------------------------------


def create_drug(site: Site, data: dict, *, actor: Actor, now: datetime,
                commit: bool = True) -> ControlledDrug:
    """Open a register line for a drug and strength. Raises Invalid for a line that exists.
    ``commit=False``: a piece of the caller's unit of work (a club batch received)."""
    name, strength = data["name"].strip(), data["strength"].strip()
    if not name:
        raise _field("name", "Give the drug's name.")
    if not strength:
        raise _field("strength", "Give the strength (for example 200 mg vial).")
    exists = db.session.execute(db.select(ControlledDrug.id).filter_by(
        site_id=site.id, name=name, strength=strength)).scalar_one_or_none()
    if exists is not None:
        raise _field("strength", f"{name} {strength} already has a register line.")
    drug = ControlledDrug(site_id=site.id, name=name, strength=strength, unit=data["unit"],
                         balance=0, created_at=now)
    db.session.add(drug)
    db.session.flush()
    record(actor, "controlled_drug_created", "controlled_drug", drug.id, site_id=site.id,
           now=now)
    live.announce(site.id, TOPIC)
    if commit:
        db.session.commit()
    return drug


def _move(drug: ControlledDrug, *, kind: str, delta: int, actor: Actor, now: datetime,
          **fields) -> ControlledEntry:
    """Apply ``delta`` to the line's balance and write its entry; never commits.

    The guarded UPDATE takes the line's row lock (PostgreSQL) or the database's write lock
    (SQLite) until the unit of work commits, so the balance read back is this movement's.
    Raises Conflict when the balance would go below zero.
    """
    balance = db.session.execute(
        db.update(ControlledDrug).where(ControlledDrug.id == drug.id,
                                        ControlledDrug.balance + delta >= 0)
        .values(balance=ControlledDrug.balance + delta)
        .returning(ControlledDrug.balance)
        .execution_options(synchronize_session=False)).scalar_one_or_none()
    if balance is None:
        db.session.rollback()
        on_hand = db.session.get(ControlledDrug, drug.id).balance
        raise Conflict(f"{drug.label}: only {on_hand} {drug.unit} in the register; "
                       f"{-delta} cannot be taken out. Count the stock if this is wrong.",
                       errors={"quantity": [f"At most {on_hand}."]})
    entry = ControlledEntry(site_id=drug.site_id, drug_id=drug.id, kind=kind, delta=delta,
                            balance_after=balance, at=now, by=actor.staff_id, **fields)
    db.session.add(entry)
    db.session.flush()
    db.session.expire(drug, ["balance"])
    return entry


def _done(drug: ControlledDrug, entry: ControlledEntry, action: str, *, actor: Actor,
          now: datetime, commit: bool = True) -> ControlledEntry:
    record(actor, action, "controlled_entry", entry.id, site_id=drug.site_id, now=now,
           detail={"drug_id": drug.id, "delta": entry.delta})
    live.announce(drug.site_id, TOPIC)
    if commit:
        db.session.commit()
    return entry


def _positive(quantity: int | None) -> int:
    if not quantity or quantity < 1:
        raise _field("quantity", "Give how many, a whole number above zero.")
    return quantity


def receive(site: Site, data: dict, *, actor: Actor, now: datetime,
            commit: bool = True) -> ControlledEntry:
    """Stock received from a supplier (invoice, lot, expiry). Raises Invalid, NotFound.
    ``commit=False``: a piece of the caller's unit of work."""
    drug = get_drug(site, data["drug_id"])
    quantity = _positive(data.get("quantity"))
    for name, message in (("supplier", "Give the supplier."),
                          ("invoice", "Give the invoice or delivery note number."),
                          ("lot_number", "Give the lot number printed on the pack.")):
        if not (data.get(name) or "").strip():
            raise _field(name, message)
    if data["expires_on"] < site.local_date(now):
        raise _field("expires_on", "This stock has expired: do not receive it.")
    entry = _move(drug, kind="received", delta=quantity, actor=actor, now=now,
                  supplier=data["supplier"].strip(), invoice=data["invoice"].strip(),
                  lot_number=data["lot_number"].strip(), expires_on=data["expires_on"])
    return _done(drug, entry, "controlled_received", actor=actor, now=now, commit=commit)


def draw_for_dose(drug: ControlledDrug, *, client: Client, quantity: int, dose_mg: int,
                  identity_checked: bool, actor: Actor, now: datetime,
                  dose_id: int | None = None) -> ControlledEntry:
    """Draw a dose for a client: a piece of the dosing unit of work (never commits).

    Raises Invalid (quantity, dose) or Conflict (more than the balance).
    """
    quantity = _positive(quantity)
    if not dose_mg or dose_mg < 1:
        raise _field("dose_mg", "Give the dose in mg.")
    if client.site_id != drug.site_id:
        raise NotFound("No such client at this site.")
    return _move(drug, kind="drawn", delta=-quantity, actor=actor, now=now,
                 client_id=client.id, dose_mg=dose_mg, dose_id=dose_id,
                 identity_checked=bool(identity_checked))


def supply_from(drug: ControlledDrug, *, client: Client, quantity: int, reason: str,
                actor: Actor, now: datetime) -> ControlledEntry:
    """Draw ``quantity`` (in the line's unit) supplied to a client other than as a dose (a
    club's supply): a piece of the caller's unit of work (never commits, never audits).

    Raises Invalid (quantity) or Conflict (more than the balance).
    """
    quantity = _positive(quantity)
    if client.site_id != drug.site_id:
        raise NotFound("No such client at this site.")
    return _move(drug, kind="drawn", delta=-quantity, actor=actor, now=now,
                 client_id=client.id, reason=reason[:200])


def record_draw(site: Site, data: dict, *, actor: Actor, now: datetime) -> ControlledEntry:
    """A draw recorded on its own (by client code): one unit of work around draw_for_dose."""
    drug = get_drug(site, data["drug_id"])
    client, _new = client_for_code(site, data["client_code"], actor=actor, now=now,
                                   field="client_code")
    entry = draw_for_dose(drug, client=client, quantity=data.get("quantity"),
                          dose_mg=data.get("dose_mg"),
                          identity_checked=data.get("identity_checked", False),
                          dose_id=data.get("dose_id"), actor=actor, now=now)
    return _done(drug, entry, "controlled_drawn", actor=actor, now=now)


# Wrong PINs given for one person, within the window, before their PIN is refused here: a
# witness's PIN is as guessable as the lock screen's, which signs out after five.
MAX_WRONG_PINS = 5
WRONG_PIN_WINDOW = timedelta(minutes=15)


def check_staff_pin(site: Site, staff_id: int | None, pin: str | None, *, field: str,
                    actor: Actor, now: datetime) -> Staff:
    """A member of the site's staff who confirmed with their PIN; raises Invalid on ``field``.

    No role is required of a witness beyond being staff of the site (DOMAIN.md: name and
    role are recorded). Each wrong PIN is audited (and committed: the refusal rolls the
    rest back); after five within 15 minutes that person's PIN is refused here until the
    window passes.
    """
    staff = db.session.get(Staff, staff_id) if staff_id else None
    if staff is None or not staff.active or not staff.roles_at(site.id):
        raise _field(field, "Choose a member of this site's staff.")
    pin_field = f"{field.removesuffix('_id')}_pin"
    wrong = db.session.scalar(db.select(db.func.count(AuditEvent.id)).where(
        AuditEvent.action == "controlled_pin_wrong", AuditEvent.entity == "staff",
        AuditEvent.entity_id == str(staff.id), AuditEvent.at > now - WRONG_PIN_WINDOW))
    if wrong >= MAX_WRONG_PINS:
        raise _field(pin_field, f"Too many wrong PINs for {staff.display_name}: wait 15 "
                                f"minutes, or choose someone else.")
    if staff.pin_hash is None or not check_password_hash(staff.pin_hash, pin or ""):
        record(actor, "controlled_pin_wrong", "staff", staff.id, site_id=site.id, now=now)
        db.session.commit()
        raise _field(pin_field, f"Wrong PIN for {staff.display_name}: they enter their own PIN.")
    return staff


def _role_of(staff: Staff, site: Site) -> str:
    roles = staff.roles_at(site.id)
    order = [r.value for r in Role]
    return sorted(roles, key=lambda r: order.index(r) if r in order else len(order))[0]


def record_waste(site: Site, data: dict, *, actor: Actor, now: datetime) -> ControlledEntry:
    """Wasted (part of a dose) or destroyed stock, witnessed by another staff member who
    enters their PIN. Raises Invalid (kind, witness, PIN, reason), Conflict (balance)."""
    drug = get_drug(site, data["drug_id"])
    entry = waste(drug, data, actor=actor, now=now)
    return _done(drug, entry, "controlled_wasted", actor=actor, now=now)


def waste(drug: ControlledDrug, data: dict, *, actor: Actor, now: datetime) -> ControlledEntry:
    """The witnessed waste itself: a piece of a unit of work (never commits but for a wrong
    PIN's audit, which :func:`check_staff_pin` keeps); the dosing session wastes what was
    drawn and not given through it. Raises as :func:`record_waste`."""
    site = db.session.get(Site, drug.site_id)
    kind = data["kind"]
    if kind not in ("wasted", "destroyed"):
        raise _field("kind", "Choose wasted or destroyed.")
    quantity = _positive(data.get("quantity"))
    reason = (data.get("reason") or "").strip()
    if not reason:
        raise _field("reason", "Say what was wasted or destroyed and why.")
    if data.get("witness_id") == actor.staff_id:
        raise _field("witness_id", "The witness is another person, not you.")
    witness = check_staff_pin(site, data.get("witness_id"), data.get("witness_pin"),
                              field="witness_id",
                              actor=actor, now=now)
    return _move(drug, kind=kind, delta=-quantity, actor=actor, now=now, reason=reason,
                 witness_id=witness.id, witness_name=witness.display_name,
                 witness_role=_role_of(witness, site))


def record_return(site: Site, data: dict, *, actor: Actor, now: datetime) -> ControlledEntry:
    """Stock returned to its supplier. Raises Invalid, Conflict (balance)."""
    drug = get_drug(site, data["drug_id"])
    quantity = _positive(data.get("quantity"))
    if not (data.get("supplier") or "").strip():
        raise _field("supplier", "Give the supplier it goes back to.")
    entry = _move(drug, kind="returned", delta=-quantity, actor=actor, now=now,
                  supplier=data["supplier"].strip(), reason=(data.get("reason") or None))
    return _done(drug, entry, "controlled_returned", actor=actor, now=now)


# --- Counts and the loss-report clock ------------------------------------------------------


def record_count(site: Site, data: dict, *, actor: Actor, now: datetime) -> ControlledCount:
    """A shift's count of one line by two staff, each with their PIN.

    A match is recorded as such. A difference is recorded, an ``adjusted`` entry brings the
    balance to what was counted, an incident draft is written (``signals.stock_discrepancy``)
    and the 10-day loss-report clock starts. Raises Invalid (people, PINs, quantity).
    """
    drug = get_drug(site, data["drug_id"])
    counted = data.get("counted")
    if counted is None or counted < 0:
        raise _field("counted", "Give the quantity counted, zero or more.")
    if data.get("first_id") and data.get("first_id") == data.get("second_id"):
        raise _field("second_id", "Two different people count: choose the second person.")
    first = check_staff_pin(site, data.get("first_id"), data.get("first_pin"),
                            field="first_id", actor=actor, now=now)
    second = check_staff_pin(site, data.get("second_id"), data.get("second_pin"),
                             field="second_id", actor=actor, now=now)
    # Lock the line for the count: no draw may slip between reading and adjusting.
    expected = db.session.execute(
        db.select(ControlledDrug.balance).where(ControlledDrug.id == drug.id)
        .with_for_update()).scalar_one()
    count = ControlledCount(site_id=site.id, drug_id=drug.id, counted_at=now,
                            expected=expected, counted=counted, difference=counted - expected,
                            first_by=first.id, second_by=second.id)
    db.session.add(count)
    db.session.flush()
    if count.difference:
        _move(drug, kind="adjusted", delta=count.difference, actor=actor, now=now,
              count_id=count.id, reason="Count by two staff")
        incident = signals.first_answer(signals.stock_discrepancy.send(
            count, actor=actor, now=now))
        count.incident_id = incident.id if incident is not None else None
    record(actor, "controlled_counted", "controlled_count", count.id, site_id=site.id,
           now=now, detail={"drug_id": drug.id, "difference": count.difference})
    live.announce(site.id, TOPIC)
    db.session.commit()
    return count


def _loss_alert_due(count: ControlledCount) -> datetime:
    return count.counted_at + timedelta(days=LOSS_ALARM_DAYS)


def mark_loss_reported(site: Site, count_id: int, data: dict, *, actor: Actor,
                       now: datetime) -> ControlledCount:
    """The loss a count found was reported to the regulator; its alarm stops.

    Raises NotFound, Conflict (no loss, or already reported), Invalid (no reference).
    """
    count = get_count(site, count_id)
    if not count.difference:
        raise Conflict("This count matched: there is no loss to report.")
    if count.loss_reported_at is not None:
        raise Conflict("This loss is already marked reported.")
    reference = (data.get("reference") or "").strip()
    if not reference:
        raise _field("reference", "Give the report's reference (form or case number).")
    count.loss_reported_at, count.loss_reported_by = now, actor.staff_id
    count.loss_reference = reference
    db.session.execute(
        db.update(Alert).where(Alert.kind == LOSS_ALERT, Alert.subject_type == "site",
                               Alert.site_id == site.id, Alert.resolved_at.is_(None),
                               Alert.due_at == _loss_alert_due(count))
        .values(resolved_at=now, resolution="loss reported", resolved_by=actor.staff_id,
                escalate_at=None, resound_at=None)
        .execution_options(synchronize_session=False))
    record(actor, "controlled_loss_reported", "controlled_count", count.id, site_id=site.id,
           now=now)
    live.announce(site.id, TOPIC)
    live.announce(site.id, "alerts")
    db.session.commit()
    return count


# Losses found and not yet marked reported, counted on or before ``alarm_from``: built once,
# the alert scan asks every second.
_UNREPORTED_LOSSES = db.select(ControlledCount).where(
    ControlledCount.difference != 0, ControlledCount.loss_reported_at.is_(None),
    ControlledCount.counted_at <= db.bindparam("alarm_from"))


def due_loss_report_alerts(*, now: datetime):
    """For the alert scan: a loss found 7 days ago and not yet marked reported."""
    alarm_from = now - timedelta(days=LOSS_ALARM_DAYS)
    counts = db.session.execute(_UNREPORTED_LOSSES,
                                {"alarm_from": alarm_from}).scalars().all()
    if not counts:
        return
    raised = set(db.session.execute(db.select(Alert.site_id, Alert.due_at).where(
        Alert.kind == LOSS_ALERT, Alert.subject_type == "site")).all())
    for count in counts:
        if (count.site_id, _loss_alert_due(count)) not in raised:
            yield {"site_id": count.site_id, "kind": LOSS_ALERT,
                   "due_at": _loss_alert_due(count), "subject_type": "site",
                   "subject_id": count.site_id}


alerts.register_due_source(due_loss_report_alerts)


# --- Export ----------------------------------------------------------------------------------


def _legal_names(site: Site, entries, *, actor: Actor | None, now: datetime | None) -> dict:
    """The legal names of the clients the period's draws supplied, by client id, as the
    treatment package answers ``signals.register_names`` (only a prescriber or pharmacist
    gets them; the reads are audited there). Empty for anyone else."""
    client_ids = sorted({e.client_id for e in entries if e.kind == "drawn" and e.client_id})
    if actor is None or not client_ids:
        return {}
    return signals.first_answer(signals.register_names.send(
        site, client_ids=client_ids, actor=actor, now=now)) or {}


def period_entries(site: Site, *, start, end, actor: Actor | None = None,
                   now: datetime | None = None) -> list[dict]:
    """Each line's entries from ``start`` to ``end`` (site dates, inclusive), in order.

    The UK register's columns (reg. 19): date, supplier or person supplied, quantity,
    balance, identity checked. The code stands for the person supplied; the legal name
    column is filled only for ``actor`` a prescriber or pharmacist (the register's own
    export, each identity read audited), and stays empty for everyone else.
    """
    zone = site.zone
    lo = datetime.combine(start, datetime.min.time(), zone).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    drugs = db.session.execute(db.select(ControlledDrug).filter_by(site_id=site.id)
                               .order_by(ControlledDrug.name, ControlledDrug.strength)
                               ).scalars().all()
    by_drug = {drug.id: db.session.execute(db.select(ControlledEntry).where(
        ControlledEntry.drug_id == drug.id, ControlledEntry.at >= lo,
        ControlledEntry.at < hi).order_by(ControlledEntry.id)  # the order recorded
    ).scalars().all() for drug in drugs}
    names = _legal_names(site, [e for entries in by_drug.values() for e in entries],
                         actor=actor, now=now)
    out = []
    for drug in drugs:
        entries = by_drug[drug.id]
        rows = []
        for e in entries:
            if e.kind == "drawn":
                party = e.client.code if e.client is not None else ""
            elif e.kind in ("received", "returned"):
                party = e.supplier or ""
            elif e.witness_name:
                party = f"Witness: {e.witness_name} ({e.witness_role})"
            else:
                party = e.reason or ""
            rows.append({
                "date": site.local(e.at).strftime("%Y-%m-%d %H:%M"),
                "kind": ENTRY_KINDS[e.kind], "party": party,
                "legal_name": names.get(e.client_id, "") if e.kind == "drawn" else "",
                "quantity": e.delta, "balance": e.balance_after,
                "identity_checked": ("yes" if e.identity_checked else "no")
                if e.kind == "drawn" else "",
                "dose_mg": e.dose_mg or "", "invoice": e.invoice or "",
                "lot_number": e.lot_number or "",
                "by": e.staff.display_name if e.staff is not None else ""})
        out.append({"drug": drug, "rows": rows})
    return out


EXPORT_HEAD = ("Drug", "Date", "Movement", "Supplier or person supplied", "Legal name",
               "Quantity", "Balance", "Identity checked", "Dose (mg)", "Invoice", "Lot", "By")


def export_rows(lines: list[dict]):
    for line in lines:
        for r in line["rows"]:
            yield (line["drug"].label, r["date"], r["kind"], r["party"], r["legal_name"],
                   r["quantity"], r["balance"], r["identity_checked"], r["dose_mg"],
                   r["invoice"], r["lot_number"], r["by"])


def names_shown(lines: list[dict]) -> int:
    """How many draw lines of an export carry the person's legal name."""
    return sum(1 for line in lines for r in line["rows"] if r["legal_name"])


def record_export(site: Site, *, start, end, fmt: str, actor: Actor, now: datetime,
                  names: int = 0) -> None:
    """Audit an export of the register (dates, format, how many lines named the person
    supplied: never a name); commits."""
    record(actor, "controlled_register_exported", "site", site.id, site_id=site.id, now=now,
           detail={"start": start.isoformat(), "end": end.isoformat(), "format": fmt,
                   "legal_names": names})
    db.session.commit()



def _csv_safe(value) -> str:
    """Keep a spreadsheet from running a cell as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not \
        text.lstrip("+-").isdigit() else text


def register_csv(site: Site, *, start, end, actor: Actor, now: datetime) -> str:
    """The register for a period as CSV, one row per movement, audited. Commits."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_HEAD)
    lines = period_entries(site, start=start, end=end, actor=actor, now=now)
    for row in export_rows(lines):
        writer.writerow([_csv_safe(v) for v in row])
    record_export(site, start=start, end=end, fmt="csv", actor=actor, now=now,
                  names=names_shown(lines))
    return out.getvalue()


def register_pdf(site: Site, html: str, *, start, end, actor: Actor, now: datetime,
                 names: int = 0) -> bytes:
    """The register for a period as PDF (WeasyPrint), audited (``names``: how many lines
    name the person supplied). Commits."""
    from weasyprint import HTML

    pdf = HTML(string=html).write_pdf()
    record_export(site, start=start, end=end, fmt="pdf", actor=actor, now=now, names=names)
    return pdf


def period_balances(site: Site, *, start: datetime, end: datetime) -> list[dict]:
    """Each line's balance at ``start`` and at ``end`` (UTC instants) and its movements
    between them, by kind (units, signed as the ledger has them): the reports' figures."""
    drugs = db.session.execute(db.select(ControlledDrug).filter_by(site_id=site.id)
                               .order_by(ControlledDrug.name, ControlledDrug.strength)
                               ).scalars().all()
    out = []
    for drug in drugs:
        def balance_before(moment, drug=drug) -> int:
            return db.session.scalar(
                db.select(ControlledEntry.balance_after).where(
                    ControlledEntry.drug_id == drug.id, ControlledEntry.at < moment)
                .order_by(ControlledEntry.at.desc(), ControlledEntry.id.desc()).limit(1)) or 0
        moved = dict(db.session.execute(
            db.select(ControlledEntry.kind, db.func.sum(ControlledEntry.delta)).where(
                ControlledEntry.drug_id == drug.id, ControlledEntry.at >= start,
                ControlledEntry.at < end).group_by(ControlledEntry.kind)).all())
        out.append({"drug": drug, "opening": balance_before(start),
                    "moved": {kind: int(moved.get(kind) or 0) for kind in ENTRY_KINDS},
                    "closing": balance_before(end)})
    return out


def staff_with_pins(site: Site) -> list[Staff]:
    """Who can witness or count at the site: active, a role there, a PIN set."""
    return list(db.session.execute(
        db.select(Staff).join(StaffRole)
        .where(StaffRole.site_id == site.id, Staff.active.is_(True),
               Staff.pin_hash.is_not(None))
        .order_by(Staff.display_name, Staff.id)).unique().scalars())
