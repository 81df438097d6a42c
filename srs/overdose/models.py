"""Overdose responses and their interventions: the console's record.

A response is the record of one emergency, from the tap that opens the console to its
outcome. Every step is an ``Intervention`` row; a correction is a new row that points at
the one it amends, never an edit. A dose names the naloxone lot it was drawn from
(``srs.naloxone``).
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
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
from srs.naloxone.models import NaloxoneLot


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
    "left_against_advice": "Left against advice",
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
    lot: Mapped[NaloxoneLot | None] = relationship()

    def __repr__(self) -> str:
        return f"<Intervention {self.id} {self.kind}>"
