"""Booths and visits.

A booth's state is derived, never stored as a flag that can drift: out of
service when it carries a reason, otherwise what its open visit says (visits
arrive with the floor). A booth that has been used is never deleted: it is
retired, leaves the board and keeps its visits for the reports.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from srs.clients.models import Client
from srs.common import UTCDateTime
from srs.extensions import db


class BoothKind(StrEnum):
    INJECTION = "injection"
    INHALATION = "inhalation"


class BoothState(StrEnum):
    AVAILABLE = "available"
    OCCUPIED = "occupied"
    NEEDS_CLEANING = "needs_cleaning"
    OUT_OF_SERVICE = "out_of_service"
    RETIRED = "retired"


BOOTH_KIND_LABELS = {BoothKind.INJECTION: "Injection", BoothKind.INHALATION: "Inhalation"}
BOOTH_LABEL_LENGTH = 20


class Booth(db.Model):
    __tablename__ = "booth"
    __table_args__ = (
        UniqueConstraint("site_id", "label"),
        CheckConstraint("kind IN ('injection', 'inhalation')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(BOOTH_LABEL_LENGTH))
    kind: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=0)
    out_of_service_reason: Mapped[str | None] = mapped_column(String(200))
    out_of_service_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when a client leaves the booth, cleared when a nurse marks it clean.
    needs_cleaning_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when an admin retires the booth: off the board, never assigned again; its label
    # stays taken so that the reports name one booth by it.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    site: Mapped["Site"] = relationship(back_populates="booths")  # noqa: F821

    def state_with(self, holder: "Visit | None") -> BoothState:
        """The booth's state, given the open visit in it (if any)."""
        if holder is not None:
            return BoothState.OCCUPIED
        if self.retired_at is not None:
            return BoothState.RETIRED
        if self.out_of_service_reason:
            return BoothState.OUT_OF_SERVICE
        if self.needs_cleaning_since is not None:
            return BoothState.NEEDS_CLEANING
        return BoothState.AVAILABLE

    def __repr__(self) -> str:
        return f"<Booth {self.id} {self.label}>"


# Quick reasons for taking a booth out of service: a tablet has no keyboard to spare.
OUT_OF_SERVICE_REASONS = ("Needle bin full", "Spill or biohazard", "Broken fixture",
                          "Out of supplies", "Maintenance")

# --- Visits ------------------------------------------------------------------------------------


class VisitState(StrEnum):
    WAITING = "waiting"
    IN_BOOTH = "in_booth"
    OBSERVING = "observing"
    DEPARTED = "departed"


OPEN_STATES = (VisitState.WAITING, VisitState.IN_BOOTH, VisitState.OBSERVING)

# The floor's live topics (srs.live): which part of every screen a change touched, so that
# only those parts are rendered and pushed. "board" is the booth tiles.
TOPIC_QUEUE, TOPIC_BOARD, TOPIC_AFTERCARE = "queue", "board", "aftercare"
_TOPIC_OF_STATE = {VisitState.WAITING: TOPIC_QUEUE, VisitState.IN_BOOTH: TOPIC_BOARD,
                   VisitState.OBSERVING: TOPIC_AFTERCARE}


def floor_topic(state: VisitState) -> str | None:
    """Where an open visit in ``state`` shows: the queue, a booth tile or after-care."""
    return _TOPIC_OF_STATE.get(state)

# Why a visit ended; "did not consume" exits need one of the first group.
LEFT_QUEUE_REASONS = {
    "left": "Left before a booth was free",
    "wait_too_long": "Wait too long",
    "changed_mind": "Changed their mind",
    "used_elsewhere": "Went to use elsewhere",
    "service_restricted": "Service restriction",
    "other": "Other",
}
DISCHARGE_FROM_BOOTH_REASONS = {
    "declined_aftercare": "Declined after-care",
    "did_not_consume": "Did not consume",
    "transferred_ems": "Left with EMS",
    "left_against_advice": "Left against advice",
    "asked_to_leave": "Asked to leave",
    "other": "Other",
}
# Leaving after-care before the site's minimum observation time ends: the tablet asks why.
EARLY_DISCHARGE_REASONS = {
    "declined_aftercare": "Declined to stay",
    "left_against_advice": "Left against advice",
    "transferred_ems": "Left with EMS",
    "asked_to_leave": "Asked to leave",
    "other": "Other",
}

SUBSTANCES = {
    "fentanyl": "Fentanyl",
    "heroin": "Heroin",
    "hydromorphone": "Hydromorphone",
    "other_opioid": "Other opioid",
    "methamphetamine": "Methamphetamine",
    "cocaine": "Cocaine",
    "crack": "Crack cocaine",
    "benzodiazepine": "Benzodiazepine",
    "other": "Other",
    "unknown": "Unknown",
}
# Route codes after the Australian standard.
ROUTES = {
    "injects": "Injects",
    "smokes": "Smokes",
    "inhales_vapour": "Inhales vapour",
    "sniffs": "Sniffs",
    "ingests": "Ingests",
    "other": "Other",
    "not_stated": "Not stated",
}
# Smoke only where the air is extracted; injecting only at an injection booth.
ROUTES_BY_BOOTH_KIND = {
    BoothKind.INJECTION: {"injects", "ingests", "sniffs", "other", "not_stated"},
    BoothKind.INHALATION: {"smokes", "inhales_vapour", "ingests", "sniffs", "other",
                           "not_stated"},
}
STRIP_RESULTS = {"positive": "Positive", "negative": "Negative", "not_done": "Not done"}


# The 409 when someone else changed a visit first (its version moved on).
VISIT_CHANGED = ("Someone else changed this visit a moment ago. The screen will show where "
                 "it is now.")


class Visit(db.Model):
    """One client's stay, from arrival to departure: the spine of the floor.

    ``waiting -> in_booth -> observing -> departed``, or ``waiting -> departed``.
    Every transition keeps its own timestamp. The database holds the rules a
    race could break: at most one visit in a booth, one open visit per client
    at a site; ``version`` makes a stale transition fail instead of overwrite.
    """

    __tablename__ = "visit"
    __table_args__ = (
        Index("uq_visit_booth_in_use", "booth_id", unique=True,
              sqlite_where=text("state = 'in_booth'"),
              postgresql_where=text("state = 'in_booth'")),
        Index("uq_visit_client_open", "site_id", "client_id", unique=True,
              sqlite_where=text("state <> 'departed'"),
              postgresql_where=text("state <> 'departed'")),
        Index("ix_visit_site_state", "site_id", "state"),
        Index("ix_visit_site_arrived", "site_id", "arrived_at"),
        # The alert scan's range reads: open visits whose due time has passed.
        Index("ix_visit_state_next_check_due", "state", "next_check_due_at"),
        Index("ix_visit_state_booth_due", "state", "booth_due_at"),
        Index("ix_visit_state_observation_ends", "state", "observation_ends_at"),
        CheckConstraint("state IN ('waiting', 'in_booth', 'observing', 'departed')",
                        name="state_known"),
        CheckConstraint("state <> 'in_booth' OR booth_id IS NOT NULL", name="booth_when_in_booth"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), default=VisitState.WAITING)
    booth_id: Mapped[int | None] = mapped_column(ForeignKey("booth.id"))
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime())
    booth_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    observation_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Due time: the end of the site's minimum observation, fixed when after-care starts.
    observation_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Due times the alert scan reads: the booth time limit (set on entering a booth) and the
    # next check (booth interval in a booth, observation interval in after-care; a recorded
    # check moves it). Cleared when the visit leaves the state that set them.
    booth_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_check_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    departed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    departure_reason: Mapped[str | None] = mapped_column(String(40))
    consumed: Mapped[bool | None] = mapped_column()
    checked_in_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    override_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    client: Mapped[Client] = relationship()
    booth: Mapped[Booth | None] = relationship()
    consumptions: Mapped[list["Consumption"]] = relationship(
        back_populates="visit", order_by="Consumption.recorded_at")
    checks: Mapped[list["ObservationCheck"]] = relationship(
        order_by="ObservationCheck.recorded_at", viewonly=True)

    @property
    def drowsy(self) -> "ObservationCheck | None":
        """The last check of this phase when it found the client drowsy: the tile, the
        after-care row and the dashboard mark it with its vitals until a later check."""
        last = next((c for c in reversed(self.checks) if c.phase == self.state), None)
        return last if last is not None and last.status == CheckStatus.DROWSY else None

    def __repr__(self) -> str:
        return f"<Visit {self.id} {self.state}>"


class Consumption(db.Model):
    """What was used in the booth, how, and what the drug check showed."""

    __tablename__ = "consumption"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id", ondelete="CASCADE"), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    substances: Mapped[list] = mapped_column(JSON)
    route: Mapped[str] = mapped_column(String(20))
    fentanyl_strip: Mapped[str] = mapped_column(String(10), default="not_done")
    benzo_strip: Mapped[str] = mapped_column(String(10), default="not_done")
    split_or_shared: Mapped[bool] = mapped_column(default=False)
    peer_assisted: Mapped[bool] = mapped_column(default=False)

    visit: Mapped[Visit] = relationship(back_populates="consumptions")


# --- Checks and alerts ---------------------------------------------------------------------


class CheckStatus(StrEnum):
    OK = "ok"
    DROWSY = "drowsy"
    UNRESPONSIVE = "unresponsive"


CHECK_STATUSES = {
    CheckStatus.OK: "OK",
    CheckStatus.DROWSY: "Drowsy",
    CheckStatus.UNRESPONSIVE: "Unresponsive",
}
SPO2_RANGE = (50, 100)
RESPIRATORY_RATE_RANGE = (0, 60)


class ObservationCheck(db.Model):
    """A nurse looked at a client in a booth or in after-care; it moves the next check."""

    __tablename__ = "observation_check"
    __table_args__ = (
        CheckConstraint("status IN ('ok', 'drowsy', 'unresponsive')", name="status_known"),
        CheckConstraint("phase IN ('in_booth', 'observing')", name="phase_known"),
        CheckConstraint(f"spo2 IS NULL OR spo2 BETWEEN {SPO2_RANGE[0]} AND {SPO2_RANGE[1]}",
                        name="spo2_range"),
        CheckConstraint("respiratory_rate IS NULL OR respiratory_rate BETWEEN "
                        f"{RESPIRATORY_RATE_RANGE[0]} AND {RESPIRATORY_RATE_RANGE[1]}",
                        name="respiratory_rate_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    phase: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    spo2: Mapped[int | None] = mapped_column(Integer)
    respiratory_rate: Mapped[int | None] = mapped_column(Integer)

    # Not stored: the overdose response an unresponsive check opened, for the caller.
    opened_response = None
