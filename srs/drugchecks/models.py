"""Drug checks, the site's substance and watch lists, and drug alerts (DOMAIN.md "Drug
checking and early warning").

A check names its substances by name, from the site's list as it stood when it was
recorded: editing the list never rewrites a past check. An alert is drafted from a check
with a finding on the watch list, from an overdose cluster, or by hand, and goes
draft -> validated (by a second person) -> published -> retracted or expired.
"""

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from srs.common import UTCDateTime
from srs.extensions import db


def _one_of(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


FAMILIES = {"opioid": "Opioid", "stimulant": "Stimulant", "benzodiazepine": "Benzodiazepine",
            "other": "Other"}
# The list a site starts with (it may add, rename by adding, and retire entries).
DEFAULT_SUBSTANCES = (
    ("Fentanyl", "opioid"), ("Heroin", "opioid"), ("Carfentanil", "opioid"),
    ("Nitazene", "opioid"), ("Oxycodone", "opioid"), ("Hydromorphone", "opioid"),
    ("Cocaine", "stimulant"), ("Crack cocaine", "stimulant"), ("Methamphetamine", "stimulant"),
    ("MDMA", "stimulant"), ("Benzodiazepine", "benzodiazepine"), ("Bromazolam", "benzodiazepine"),
    ("Etizolam", "benzodiazepine"), ("Xylazine", "other"), ("Medetomidine", "other"),
    ("Ketamine", "other"), ("Caffeine", "other"),
)

SAMPLE_TYPES = {"substance": "Substance", "used_equipment": "Used equipment"}
SAMPLE_FORMS = {"powder": "Powder", "crystal": "Crystal", "rock": "Rock", "tablet": "Tablet",
                "liquid": "Liquid", "paper": "Paper or blotter", "other": "Other"}
STRIPS = {"fentanyl": "Fentanyl strip", "benzodiazepine": "Benzodiazepine strip",
          "nitazene": "Nitazene strip", "xylazine": "Xylazine strip"}
METHODS = {**{f"{name}_strip": label for name, label in STRIPS.items()},
           "reagent": "Reagent", "ftir": "FTIR", "lab": "Lab"}
STRIP_RESULTS = {"positive": "Positive", "negative": "Negative", "invalid": "Invalid",
                 "not_done": "Not done"}
LAB_STATUSES = {"none": "None", "pending": "Pending", "received": "Received"}

# The watch list's rules: a substance found, or a finding that does not belong in what the
# client expected (DOMAIN.md: benzodiazepines in an expected opioid, fentanyl in an expected
# stimulant).
WATCH_RULES = {"found": "Found in any sample",
               "benzo_in_opioid": "Benzodiazepine found in an expected opioid",
               "fentanyl_in_stimulant": "Fentanyl found in an expected stimulant"}
DEFAULT_WATCH = (
    ("found", "Nitazene", "Nitazenes"), ("found", "Xylazine", "Xylazine"),
    ("found", "Medetomidine", "Medetomidine"), ("found", "Carfentanil", "Carfentanil"),
    ("benzo_in_opioid", None, "Benzodiazepines in an expected opioid"),
    ("fentanyl_in_stimulant", None, "Fentanyl in an expected stimulant"),
)

ALERT_KINDS = {"drug_alert": "Drug Alert", "overdose_advisory": "Overdose Advisory"}
ALERT_STATUSES = {"draft": "Draft", "validated": "Validated", "published": "Published",
                  "retracted": "Retracted", "expired": "Expired"}
EVIDENCE = {"reported": "Reported", "strip": "Test strip", "ftir": "FTIR",
            "lab": "Lab-confirmed"}
AUDIENCES = {"staff": "Staff", "public": "Public"}
SCOPES = {"site": "This site", "organisation": "Every site of the organisation"}
# The standard advice an alert may carry, ticked as it applies (BC's and Toronto's alerts).
ADVICE = {
    "test_first": "Get your drugs checked before use",
    "start_low": "Start with a small amount and go slow",
    "not_alone": "Don't use alone; use at a supervised site",
    "carry_naloxone": "Carry naloxone and know how to use it",
    "naloxone_may_not_reverse": "Naloxone may not reverse non-opioid sedation (xylazine, "
                                "medetomidine): call for help and give breaths",
    "call_911": "Call 911 for an overdose",
    "space_doses": "Space out doses; avoid mixing with alcohol or benzodiazepines",
}


class DrugSubstance(db.Model):
    """A name on the site's substance list: what a sample was sold as, or found in it."""

    __tablename__ = "drug_substance"
    __table_args__ = (
        UniqueConstraint("site_id", "name"),
        CheckConstraint(_one_of("family", FAMILIES), name="family_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    family: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class DrugWatchItem(db.Model):
    """A finding that drafts a drug alert at this site: a substance (matched in any name
    that contains it: "Nitazene" matches "Isotonitazene") or a mismatch rule."""

    __tablename__ = "drug_watch_item"
    __table_args__ = (
        UniqueConstraint("site_id", "rule", "substance"),
        CheckConstraint(_one_of("rule", WATCH_RULES), name="rule_known"),
        CheckConstraint("(rule = 'found') = (substance IS NOT NULL)", name="found_names_one"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(30))
    substance: Mapped[str | None] = mapped_column(String(80))
    label: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class DrugCheck(db.Model):
    """One sample checked at a site (DrugCheckingBC's record): what it was sold as, what it
    looked like, how it was tested and what was found."""

    __tablename__ = "drug_check"
    __table_args__ = (
        UniqueConstraint("site_id", "sample_code"),
        CheckConstraint(_one_of("sample_type", SAMPLE_TYPES), name="sample_type_known"),
        CheckConstraint(f"form IS NULL OR {_one_of('form', SAMPLE_FORMS)}", name="form_known"),
        CheckConstraint(_one_of("lab_status", LAB_STATUSES), name="lab_status_known"),
        *(CheckConstraint(f"{name}_strip IS NULL OR {_one_of(name + '_strip', STRIP_RESULTS)}",
                          name=f"{name}_strip_known") for name in STRIPS),
        Index("ix_drug_check_site_checked", "site_id", "checked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    sample_code: Mapped[str] = mapped_column(String(40))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Where the sample was bought or used, as the client names it (a neighbourhood).
    area: Mapped[str | None] = mapped_column(String(120))
    sample_type: Mapped[str] = mapped_column(String(20))
    expected: Mapped[str | None] = mapped_column(String(80))
    colour: Mapped[str | None] = mapped_column(String(40))
    form: Mapped[str | None] = mapped_column(String(20))
    methods: Mapped[list] = mapped_column(JSON, default=list)
    fentanyl_strip: Mapped[str | None] = mapped_column(String(10))
    benzodiazepine_strip: Mapped[str | None] = mapped_column(String(10))
    nitazene_strip: Mapped[str | None] = mapped_column(String(10))
    xylazine_strip: Mapped[str | None] = mapped_column(String(10))
    reagent_result: Mapped[str | None] = mapped_column(String(200))
    lab_status: Mapped[str] = mapped_column(String(10), default="none")
    lab_result: Mapped[str | None] = mapped_column(String(300))
    linked_overdose: Mapped[bool] = mapped_column(Boolean, default=False)
    overdose_response_id: Mapped[int | None] = mapped_column(
        ForeignKey("overdose_response.id", ondelete="SET NULL"))
    used_before: Mapped[bool | None] = mapped_column(Boolean)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visit.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    components: Mapped[list["DrugCheckComponent"]] = relationship(
        back_populates="check", cascade="all, delete-orphan",
        order_by="DrugCheckComponent.id")

    def strip_result(self, name: str) -> str | None:
        return getattr(self, f"{name}_strip")

    def __repr__(self) -> str:
        return f"<DrugCheck {self.id}>"


class DrugCheckComponent(db.Model):
    """A substance FTIR (or the lab) found in a sample, with its match and share."""

    __tablename__ = "drug_check_component"
    __table_args__ = (
        CheckConstraint("percent IS NULL OR percent BETWEEN 0 AND 100", name="percent_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("drug_check.id", ondelete="CASCADE"),
                                          index=True)
    substance: Mapped[str] = mapped_column(String(80))
    uncertain: Mapped[bool] = mapped_column(Boolean, default=False)
    percent: Mapped[int | None] = mapped_column(Integer)

    check: Mapped[DrugCheck] = relationship(back_populates="components")


class DrugAlert(db.Model):
    """A drug alert or overdose advisory, from draft to published and its end.

    ``drug_check_id`` is unique (one draft per check) and ``cluster_key`` names the cluster
    an advisory was drafted for (one per cluster, updated as it grows). ``site_ids`` are the
    sites it covers: the drafting site's, or every site for an organisation-wide cluster.
    """

    __tablename__ = "drug_alert"
    __table_args__ = (
        CheckConstraint(_one_of("kind", ALERT_KINDS), name="kind_known"),
        CheckConstraint(_one_of("status", ALERT_STATUSES), name="status_known"),
        CheckConstraint(_one_of("evidence", EVIDENCE), name="evidence_known"),
        CheckConstraint(_one_of("audience", AUDIENCES), name="audience_known"),
        CheckConstraint(_one_of("scope", SCOPES), name="scope_known"),
        CheckConstraint("valid_for_days BETWEEN 1 AND 365", name="valid_for_days_range"),
        Index("ix_drug_alert_status_valid", "status", "valid_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The drafting site; None for an organisation-wide advisory.
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"),
                                                index=True)
    scope: Mapped[str] = mapped_column(String(20), default="site")
    site_ids: Mapped[list] = mapped_column(JSON, default=list)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    title: Mapped[str] = mapped_column(String(240))
    area: Mapped[str | None] = mapped_column(String(120))
    expected: Mapped[str | None] = mapped_column(String(120))
    found: Mapped[str | None] = mapped_column(Text)
    appearance: Mapped[str | None] = mapped_column(String(200))
    packaging: Mapped[str | None] = mapped_column(String(200))
    effects: Mapped[str | None] = mapped_column(Text)
    advice: Mapped[list] = mapped_column(JSON, default=list)
    advice_text: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(String(20), default="reported")
    audience: Mapped[str] = mapped_column(String(20), default="staff")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    valid_for_days: Mapped[int] = mapped_column(Integer, default=14)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    drug_check_id: Mapped[int | None] = mapped_column(
        ForeignKey("drug_check.id", ondelete="SET NULL"), unique=True)
    cluster_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    cluster_count: Mapped[int | None] = mapped_column(Integer)
    first_overdose_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_overdose_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    drafted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # None: drafted by SRS itself (a watch-list finding, a cluster scan).
    drafted_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    edited_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    validated_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    retract_reason: Mapped[str | None] = mapped_column(String(300))

    check: Mapped[DrugCheck | None] = relationship()
    drafter: Mapped["Staff | None"] = relationship(foreign_keys=[drafted_by])  # noqa: F821
    editor: Mapped["Staff | None"] = relationship(foreign_keys=[edited_by])  # noqa: F821
    validator: Mapped["Staff | None"] = relationship(foreign_keys=[validated_by])  # noqa: F821
    publisher: Mapped["Staff | None"] = relationship(foreign_keys=[published_by])  # noqa: F821

    def covers(self, site_id: int) -> bool:
        return site_id in (self.site_ids or [])

    def __repr__(self) -> str:
        return f"<DrugAlert {self.id} {self.kind} {self.status}>"


class DrugAlertTold(db.Model):
    """A client told of a published alert at a visit: who told them, and when. One per
    alert and visit; the client counts as told once any of their visits has one."""

    __tablename__ = "drug_alert_told"
    __table_args__ = (UniqueConstraint("drug_alert_id", "visit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    drug_alert_id: Mapped[int] = mapped_column(ForeignKey("drug_alert.id", ondelete="CASCADE"))
    # A visit, not the client: retention hands a visit to a placeholder, and this with it.
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id", ondelete="CASCADE"),
                                          index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    told_at: Mapped[datetime] = mapped_column(UTCDateTime())
    told_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class DrugAlertHeard(db.Model):
    """An urgent alert acknowledged at a site by a named person: it stops sounding there."""

    __tablename__ = "drug_alert_heard"
    __table_args__ = (UniqueConstraint("drug_alert_id", "site_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    drug_alert_id: Mapped[int] = mapped_column(ForeignKey("drug_alert.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    heard_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heard_by: Mapped[int] = mapped_column(ForeignKey("staff.id"))

    staff: Mapped["Staff"] = relationship()  # noqa: F821
