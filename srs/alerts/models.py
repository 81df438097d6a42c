"""Alerts: what is due or dangerous on a site, at a priority and level, until it clears.

The floor packages raise them (a due time passed, an unresponsive client, an overdose
response) and resolve them; this package keeps, escalates and sounds them.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from srs.common import UTCDateTime
from srs.extensions import db


class Priority(StrEnum):
    """Alarm priorities after IEC 60601-1-8."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class AlertKind:
    """What an alert is about, its priority at each level, and how far it escalates."""

    name: str
    label: str
    priorities: tuple[Priority, ...]  # one per level; its length is the highest level

    @property
    def max_level(self) -> int:
        return len(self.priorities)

    def priority_at(self, level: int) -> Priority:
        return self.priorities[level - 1]


_M, _H, _L = Priority.MEDIUM, Priority.HIGH, Priority.LOW
ALERT_KINDS: dict[str, AlertKind] = {kind.name: kind for kind in (
    # A missed check past grace is high (DESIGN: "missed check past grace").
    AlertKind("booth_check_due", "Booth check due", (_M, _H, _H)),
    AlertKind("booth_time_limit", "Booth time limit", (_M, _M, _H)),
    AlertKind("observation_check_due", "After-care check due", (_M, _H, _H)),
    # Information, not danger: the client may leave. It is not pushed to supervisors.
    AlertKind("observation_complete", "Observation time complete", (_L,)),
    AlertKind("unresponsive", "Unresponsive", (_H, _H, _H)),
    # An overdose response is running: every screen hears it until someone is on it.
    AlertKind("overdose", "Overdose response", (_H, _H, _H)),
    # The site's re-dose interval passed since the last naloxone: reassess.
    AlertKind("redose_due", "Reassess: re-dose time", (_M, _M, _H)),
    # A controlled-drug loss found 7 days ago is not yet reported (the law allows 10).
    AlertKind("controlled_loss_report_due", "Report the controlled-drug loss", (_M,)),
)}
MAX_LEVEL = 3


def kind_label(kind: str) -> str:
    """What the screens call an alert of ``kind``."""
    return ALERT_KINDS[kind].label if kind in ALERT_KINDS else kind


class Alert(db.Model):
    """A due time that passed, or a danger a nurse reported, until its condition clears.

    One row per subject, kind and due time (the unique key makes raising
    idempotent); each level it reaches is a row of ``alert_escalation`` (unique
    per alert and level). ``escalate_at`` and ``resound_at`` are the due times
    the scan reads next.
    """

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("kind", "subject_type", "subject_id", "due_at"),
        CheckConstraint("priority IN ('high', 'medium', 'low')", name="priority_known"),
        CheckConstraint(f"level BETWEEN 1 AND {MAX_LEVEL}", name="level_range"),
        CheckConstraint("subject_type IN ('visit', 'booth', 'site', 'response')",
                        name="subject_known"),
        Index("ix_alert_open", "site_id", sqlite_where=text("resolved_at IS NULL"),
              postgresql_where=text("resolved_at IS NULL")),
        Index("ix_alert_escalate_at", "escalate_at", sqlite_where=text("resolved_at IS NULL"),
              postgresql_where=text("resolved_at IS NULL")),
        Index("ix_alert_resound_at", "resound_at", sqlite_where=text("resolved_at IS NULL"),
              postgresql_where=text("resolved_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    priority: Mapped[str] = mapped_column(String(10))
    level: Mapped[int] = mapped_column(Integer, default=1)
    subject_type: Mapped[str] = mapped_column(String(10))
    subject_id: Mapped[int] = mapped_column(Integer)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visit.id", ondelete="CASCADE"),
                                                 index=True)
    booth_id: Mapped[int | None] = mapped_column(ForeignKey("booth.id", ondelete="SET NULL"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resounds: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    resolution: Mapped[str | None] = mapped_column(String(40))

    visit: Mapped["Visit | None"] = relationship()  # noqa: F821
    booth: Mapped["Booth | None"] = relationship()  # noqa: F821
    site: Mapped["Site"] = relationship()  # noqa: F821
    owner: Mapped["Staff | None"] = relationship(  # noqa: F821
        foreign_keys=[acknowledged_by])

    @property
    def label(self) -> str:
        return kind_label(self.kind)

    def __repr__(self) -> str:
        return f"<Alert {self.id} {self.kind} L{self.level}>"


class AlertEscalation(db.Model):
    """When an alert reached a level: who was told what, and when."""

    __tablename__ = "alert_escalation"
    __table_args__ = (UniqueConstraint("alert_id", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"))
    level: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
