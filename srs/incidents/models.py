"""Incident reports and their review, after hospital incident management (Datix).

A report is written as a draft, submitted, taken under review, sent for
approval and closed. Every change after submission is an amendment with a
reason; amendments and stage changes are kept in ``IncidentHistory`` and never
edited. Reviewers pick contributing factors from a two-level list the site's
admin keeps, and set actions that someone owns by a due date.
"""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from srs.booths.models import Booth, Visit
from srs.clients.models import Client
from srs.common import UTCDateTime, utcnow
from srs.extensions import db
from srs.sites.models import TIME_BANDS

INCIDENT_TYPES = {
    "overdose": "Overdose",
    "stimulant_overdose": "Stimulant overdose",
    "medical_emergency": "Other medical emergency",
    "violence": "Violence or aggression",
    "threat": "Threat",
    "needle_stick": "Needle-stick injury",
    "substance_left": "Substance left behind",
    "property_damage": "Property damage",
    "police": "Police involvement",
    "service_restriction": "Service restriction",
    "complaint": "Complaint",
    "other": "Other",
}
OVERDOSE_TYPES = ("overdose", "stimulant_overdose")

HARM_GRADES = {
    "none": "None",
    "low": "Low",
    "moderate": "Moderate",
    "severe": "Severe",
    "death": "Death",
}


class Stage(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    AWAITING_APPROVAL = "awaiting_approval"
    CLOSED = "closed"


STAGE_LABELS = {
    Stage.DRAFT: "Draft",
    Stage.SUBMITTED: "Submitted",
    Stage.UNDER_REVIEW: "Under review",
    Stage.AWAITING_APPROVAL: "Awaiting approval",
    Stage.CLOSED: "Closed",
}

# What every incident page and the weekly packet label codes with.
VOCABULARY = {"INCIDENT_TYPES": INCIDENT_TYPES, "HARM_GRADES": HARM_GRADES,
              "STAGE_LABELS": STAGE_LABELS, "TIME_BANDS": TIME_BANDS, "Stage": Stage}


def _in(values, column: str, name: str) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


incident_client = Table(
    "incident_client", db.metadata,
    Column("incident_id", ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True),
    Column("client_id", ForeignKey("client.id"), primary_key=True, index=True),
)

incident_factor = Table(
    "incident_factor", db.metadata,
    Column("incident_id", ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True),
    Column("factor_id", ForeignKey("contributing_factor.id"), primary_key=True),
)


class Incident(db.Model):
    """One incident report: what happened, to whom (by code), how bad, and its review."""

    __tablename__ = "incident"
    __table_args__ = (
        _in(INCIDENT_TYPES, "type", "type_known"),
        _in(HARM_GRADES, "harm", "harm_known"),
        _in([s.value for s in Stage], "stage", "stage_known"),
        Index("ix_incident_site_occurred", "site_id", "occurred_at"),
        Index("ix_incident_site_stage", "site_id", "stage"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(20), default=Stage.DRAFT)
    type: Mapped[str] = mapped_column(String(30), default="other")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    booth_id: Mapped[int | None] = mapped_column(ForeignKey("booth.id"), index=True)
    # Where, when not a booth: "waiting room", "after-care", "entrance"...
    area: Mapped[str | None] = mapped_column(String(80))
    staff_involved: Mapped[str | None] = mapped_column(String(300))
    harm: Mapped[str] = mapped_column(String(20), default="none")
    narrative: Mapped[str] = mapped_column(Text, default="")
    immediate_actions: Mapped[str] = mapped_column(Text, default="")
    ems_involved: Mapped[bool] = mapped_column(Boolean, default=False)
    police_involved: Mapped[bool] = mapped_column(Boolean, default=False)
    follow_up_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    # The overdose response this report came from (the overdose console's close fills it).
    response_id: Mapped[int | None] = mapped_column(Integer, index=True)

    reported_by: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    lessons_learned: Mapped[str] = mapped_column(Text, default="")
    feedback: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    booth: Mapped[Booth | None] = relationship()
    clients: Mapped[list[Client]] = relationship(secondary=incident_client,
                                                 order_by=Client.code)
    factors: Mapped[list["ContributingFactor"]] = relationship(secondary=incident_factor)
    actions: Mapped[list["IncidentAction"]] = relationship(
        back_populates="incident", order_by="IncidentAction.due_on",
        cascade="all, delete-orphan")
    history: Mapped[list["IncidentHistory"]] = relationship(
        back_populates="incident", order_by="IncidentHistory.id", cascade="all, delete-orphan")
    reporter: Mapped["Staff"] = relationship(foreign_keys=[reported_by])  # noqa: F821
    reviewer: Mapped["Staff | None"] = relationship(foreign_keys=[reviewer_id])  # noqa: F821

    @property
    def location(self) -> str:
        if self.booth is not None:
            return f"Booth {self.booth.label}"
        return self.area or ""

    def __repr__(self) -> str:
        return f"<Incident {self.id} {self.stage}>"


# What a history row records: a move from one stage to another, or an amendment.
HISTORY_KINDS = ("stage", "amendment")


class IncidentHistory(db.Model):
    """Append-only: a stage change or an amendment (what changed, by whom, why)."""

    __tablename__ = "incident_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"),
                                             index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    kind: Mapped[str] = mapped_column(String(20))  # one of HISTORY_KINDS
    stage_from: Mapped[str | None] = mapped_column(String(20))
    stage_to: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    # {field: [before, after]} for an amendment.
    changes: Mapped[dict | None] = mapped_column(JSON)

    incident: Mapped[Incident] = relationship(back_populates="history")
    staff: Mapped["Staff | None"] = relationship()  # noqa: F821


class ContributingFactor(db.Model):
    """A contributing factor: a top-level group (no parent) or an item under one."""

    __tablename__ = "contributing_factor"
    __table_args__ = (UniqueConstraint("site_id", "parent_id", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("contributing_factor.id"))
    label: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    parent: Mapped["ContributingFactor | None"] = relationship(remote_side=[id])

    @property
    def full_label(self) -> str:
        return f"{self.parent.label}: {self.label}" if self.parent else self.label


class IncidentAction(db.Model):
    """Something a reviewer decided must be done, by whom and by when."""

    __tablename__ = "incident_action"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"),
                                             index=True)
    description: Mapped[str] = mapped_column(String(300))
    owner_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    due_on: Mapped[date] = mapped_column(Date, index=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    incident: Mapped[Incident] = relationship(back_populates="actions")
    owner: Mapped["Staff"] = relationship(foreign_keys=[owner_id])  # noqa: F821


class ReviewPacket(db.Model):
    """A site's weekly review packet (PDF and CSV), built once per week."""

    __tablename__ = "review_packet"
    __table_args__ = (UniqueConstraint("site_id", "week_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    week_start: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    csv: Mapped[str] = mapped_column(Text)


class ReviewerNotice(db.Model):
    """Tells one reviewer that a packet is ready; read when they open it."""

    __tablename__ = "reviewer_notice"
    __table_args__ = (UniqueConstraint("packet_id", "staff_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    packet_id: Mapped[int] = mapped_column(ForeignKey("review_packet.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"),
                                          index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    packet: Mapped[ReviewPacket] = relationship()


# The monthly report finds each client's first visit at a site through this index.
Index("ix_visit_client_site_arrived", Visit.client_id, Visit.site_id, Visit.arrived_at)
