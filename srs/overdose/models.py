"""Overdose responses, their interventions, and naloxone stock by lot and expiry.

A response is the record of one emergency, from the tap that opens the console to its
outcome. Every step is an ``Intervention`` row; a correction is a new row that points at
the one it amends, never an edit. Stock is a quantity per lot that only ever changes
together with a ``StockMovement`` row, so the quantity on hand always equals the sum of
the lot's ledger.
"""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from srs.common import UTCDateTime
from srs.extensions import db


def _one_of(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class ResponseKind(StrEnum):
    OPIOID = "opioid"
    STIMULANT = "stimulant"
    OTHER = "other"


KINDS = {
    ResponseKind.OPIOID: "Opioid overdose",
    ResponseKind.STIMULANT: "Stimulant overdose (overamping)",
    ResponseKind.OTHER: "Other medical emergency",
}

# Where the tap came from: a booth tile, an after-care row, a check that found the client
# unresponsive, or someone who never checked in (a washroom, the doorway).
SOURCES = {
    "booth": "Booth",
    "aftercare": "After-care",
    "check": "Unresponsive on a check",
    "not_checked_in": "Not checked in",
}

# Ontario's outcomes, plus "other" with a note.
OUTCOMES = {
    "recovered_on_site": "Recovered on site",
    "recovered_declined_ems": "Recovered, declined EMS",
    "treated_by_ems_on_site": "Treated by EMS on site",
    "transferred_to_hospital": "Transferred to hospital",
    "death": "Death",
    "other": "Other",
}

INTERVENTIONS = {
    "stimulation": "Stimulation",
    "rescue_breaths": "Rescue breaths",
    "oxygen_on": "Oxygen on",
    "oxygen_off": "Oxygen off",
    "naloxone": "Naloxone",
    "spo2": "SpO2",
    "cpr": "CPR",
    "aed": "AED",
    "recovery_position": "Recovery position",
    "ems_called": "EMS called",
    "ems_arrived": "EMS arrived",
    "handed_to_ems": "Handed to EMS",
    "reassessed": "Reassessed",
    "other": "Other intervention",
    "note": "Note",
}

# Naloxone routes: intramuscular, intranasal, intravenous.
ROUTES = {"im": "IM", "in": "IN", "iv": "IV"}
# The standard doses the console offers in one tap.
STANDARD_DOSES = {"im": 0.4, "in": 4.0}
MIN_DOSE_MG, MAX_DOSE_MG = 0.04, 10.0
MIN_SPO2, MAX_SPO2 = 50, 100
MAX_OXYGEN_LPM = 25

FORMS = {"ampoule": "Ampoule", "vial": "Vial", "nasal_spray": "Nasal spray"}
# Which forms a route draws from.
FORMS_FOR_ROUTE = {"im": ("ampoule", "vial"), "iv": ("ampoule", "vial"),
                   "in": ("nasal_spray",)}

MOVEMENTS = {
    "received": "Received",
    "administered": "Administered",
    "take_home": "Take-home kit",
    "expired": "Expired",
    "wasted": "Wasted",
    "adjusted": "Adjusted",
}

KIT_FORMS = {"injectable": "Injectable", "nasal": "Nasal"}
FORMS_FOR_KIT = {"injectable": ("ampoule", "vial"), "nasal": ("nasal_spray",)}

FINDINGS = {
    "low_stock": "Low stock",
    "expiring": "Expiring within 30 days",
    "expired": "Expired, still on hand",
    "discrepancy": "Given with no stock on hand",
}


class OverdoseResponse(db.Model):
    """One emergency: who, where, when it started and closed, how it ended.

    ``redose_due_at`` is the re-dose timer as a row: the last naloxone dose plus the site's
    ``naloxone_redose_seconds``; the console prompts to reassess once it passes.
    ``report_draft`` is the incident draft written at close: the whole timeline, frozen.
    """

    __tablename__ = "overdose_response"
    __table_args__ = (
        CheckConstraint(_one_of("kind", ResponseKind), name="kind_known"),
        CheckConstraint(_one_of("source", SOURCES), name="source_known"),
        CheckConstraint(f"outcome IS NULL OR {_one_of('outcome', OUTCOMES)}",
                        name="outcome_known"),
        CheckConstraint("(closed_at IS NULL) = (outcome IS NULL)", name="closed_with_outcome"),
        CheckConstraint("visit_seq IS NULL OR visit_seq IN (1, 2)", name="two_per_visit"),
        # Up to two emergencies per visit, and never two open at once for one visit.
        UniqueConstraint("visit_id", "visit_seq"),
        Index("uq_overdose_response_visit_open", "visit_id", unique=True,
              sqlite_where=text("closed_at IS NULL AND visit_id IS NOT NULL"),
              postgresql_where=text("closed_at IS NULL AND visit_id IS NOT NULL")),
        Index("ix_overdose_response_site_started", "site_id", "started_at"),
        Index("ix_overdose_response_redose_due", "redose_due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visit.id"), index=True)
    visit_seq: Mapped[int | None] = mapped_column(Integer)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id"), index=True)
    booth_id: Mapped[int | None] = mapped_column(ForeignKey("booth.id"))
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    location: Mapped[str | None] = mapped_column(String(80))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    redose_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_entry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    outcome: Mapped[str | None] = mapped_column(String(40))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    report_draft: Mapped[dict | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    client: Mapped["Client | None"] = relationship()  # noqa: F821
    visit: Mapped["Visit | None"] = relationship()  # noqa: F821
    booth: Mapped["Booth | None"] = relationship()  # noqa: F821
    starter: Mapped["Staff | None"] = relationship(foreign_keys=[started_by])  # noqa: F821
    closer: Mapped["Staff | None"] = relationship(foreign_keys=[closed_by])  # noqa: F821
    interventions: Mapped[list["Intervention"]] = relationship(
        back_populates="response", order_by="Intervention.id")
    # Not stored: the incident draft its close wrote (``signals.response_closed``), for the
    # caller that shows it.
    drafted = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def __repr__(self) -> str:
        return f"<OverdoseResponse {self.id} {self.kind}>"


class Intervention(db.Model):
    """One step of a response: what was done, when, by whom.

    ``at`` is when it happened (back-entry allowed), ``recorded_at`` when it was entered.
    An amendment is a new row with ``amends_id`` set and a reason; the row it amends stays
    as it was. ``struck`` on an amendment says the original was entered in error.
    """

    __tablename__ = "intervention"
    __table_args__ = (
        CheckConstraint(_one_of("kind", INTERVENTIONS), name="kind_known"),
        CheckConstraint(f"route IS NULL OR {_one_of('route', ROUTES)}", name="route_known"),
        CheckConstraint(f"dose_mg IS NULL OR dose_mg BETWEEN {MIN_DOSE_MG} AND {MAX_DOSE_MG}",
                        name="dose_range"),
        CheckConstraint(f"spo2 IS NULL OR spo2 BETWEEN {MIN_SPO2} AND {MAX_SPO2}",
                        name="spo2_range"),
        CheckConstraint("amends_id IS NULL OR amend_reason IS NOT NULL",
                        name="amendment_has_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(
        ForeignKey("overdose_response.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    dose_mg: Mapped[float | None] = mapped_column(Float)
    route: Mapped[str | None] = mapped_column(String(4))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("naloxone_lot.id"))
    stock_discrepancy: Mapped[bool] = mapped_column(Boolean, default=False)
    spo2: Mapped[int | None] = mapped_column(Integer)
    oxygen_lpm: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("intervention.id"), index=True)
    amend_reason: Mapped[str | None] = mapped_column(Text)
    struck: Mapped[bool] = mapped_column(Boolean, default=False)

    response: Mapped[OverdoseResponse] = relationship(back_populates="interventions")
    recorder: Mapped["Staff | None"] = relationship()  # noqa: F821
    lot: Mapped["NaloxoneLot | None"] = relationship()

    def __repr__(self) -> str:
        return f"<Intervention {self.id} {self.kind}>"


class NaloxoneLot(db.Model):
    """Naloxone of one product, form and lot number at a site, with its expiry."""

    __tablename__ = "naloxone_lot"
    __table_args__ = (
        UniqueConstraint("site_id", "form", "lot_number"),
        CheckConstraint(_one_of("form", FORMS), name="form_known"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        Index("ix_naloxone_lot_site_expiry", "site_id", "expires_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    product: Mapped[str] = mapped_column(String(80))
    form: Mapped[str] = mapped_column(String(20))
    strength: Mapped[str] = mapped_column(String(40))
    lot_number: Mapped[str] = mapped_column(String(40))
    expires_on: Mapped[date] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())

    movements: Mapped[list["StockMovement"]] = relationship(
        back_populates="lot", order_by="StockMovement.id")

    def __repr__(self) -> str:
        return f"<NaloxoneLot {self.id} {self.form}>"


class StockMovement(db.Model):
    """One line of the ledger: a lot's quantity changed by ``delta``, why, by whom."""

    __tablename__ = "stock_movement"
    __table_args__ = (
        CheckConstraint(_one_of("kind", MOVEMENTS), name="kind_known"),
        CheckConstraint("delta <> 0", name="delta_not_zero"),
        CheckConstraint("kind <> 'adjusted' OR reason IS NOT NULL", name="adjusted_has_reason"),
        Index("ix_stock_movement_site_at", "site_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("naloxone_lot.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    delta: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    reason: Mapped[str | None] = mapped_column(String(200))
    intervention_id: Mapped[int | None] = mapped_column(ForeignKey("intervention.id"))
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("take_home_kit.id"))

    lot: Mapped[NaloxoneLot] = relationship(back_populates="movements")
    staff: Mapped["Staff | None"] = relationship()  # noqa: F821


class TakeHomeKit(db.Model):
    """Naloxone kits handed to a client to take away (Ontario counts them by form)."""

    __tablename__ = "take_home_kit"
    __table_args__ = (
        CheckConstraint(_one_of("form", KIT_FORMS), name="form_known"),
        CheckConstraint("number BETWEEN 1 AND 20", name="number_range"),
        Index("ix_take_home_kit_site_given", "site_id", "given_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    form: Mapped[str] = mapped_column(String(20))
    number: Mapped[int] = mapped_column(Integer, default=1)
    replaces_used: Mapped[bool] = mapped_column(Boolean, default=False)
    training_given: Mapped[bool] = mapped_column(Boolean, default=False)
    given_at: Mapped[datetime] = mapped_column(UTCDateTime())
    given_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    stock_discrepancy: Mapped[bool] = mapped_column(Boolean, default=False)

    client: Mapped["Client"] = relationship()  # noqa: F821


class StockFinding(db.Model):
    """Something about naloxone stock a supervisor must see: low, expiring, or a discrepancy.

    The daily stock check writes one row per finding per day (the unique key makes a re-run
    harmless); a dose given with no stock writes a discrepancy at once.
    """

    __tablename__ = "stock_finding"
    __table_args__ = (
        CheckConstraint(_one_of("kind", FINDINGS), name="kind_known"),
        UniqueConstraint("site_id", "key"),
        Index("ix_stock_finding_site_open", "site_id", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    # What makes a finding the same one when the check runs again.
    key: Mapped[str] = mapped_column(String(120))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("naloxone_lot.id"))
    intervention_id: Mapped[int | None] = mapped_column(ForeignKey("intervention.id"))
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("take_home_kit.id"))
    detail: Mapped[str] = mapped_column(String(300))
    found_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    lot: Mapped[NaloxoneLot | None] = relationship()
