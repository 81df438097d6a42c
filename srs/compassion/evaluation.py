"""The club's evaluation: members' quarterly surveys (DULF's questions) and the monthly report
a funder reads, with the evaluation export of supplies by program code.

A survey is due ``site.compassion_survey_days`` after the member's last one, or after they
became active when they have none; due on that local day at the site. The report counts,
never names: no client code reaches it, and the export numbers members afresh in each file.

A month runs from the 1st in the site's timezone. A client is a member at a moment when
they became active at the site before it and their membership had not ended by then (a
suspension does not end membership).
"""

import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, or_

from srs.auth.models import AuditEvent, Role
from srs.auth.service import Actor, record
from srs.booths.models import Visit
from srs.compassion.models import (
    LINKAGE_OUTCOMES,
    STATES,
    STREET_SUPPLY,
    LinkageConversation,
    Member,
    MemberSurvey,
    Supply,
    SupplyBatch,
)
from srs.errors import Conflict, NotFound
from srs.extensions import db
from srs.overdose.models import OverdoseResponse
from srs.sites.models import Site

# Who asks a member the survey's questions: the floor's staff and the health providers
# (prescribers, screeners).
SURVEY_TAKERS = (Role.NURSE, Role.SUPERVISOR, Role.PRESCRIBER, Role.SCREENER)
# Who reads the club's monthly report: the incident reviewers' readers of the monthly report.
REPORT_READERS = (Role.REVIEWER, Role.SUPERVISOR, Role.ADMIN)
LIMIT_REACHED = "compassion_limit_reached"
STREET_SUPPLY_LABELS = {"none": "None", "less": "Less than before", "same": "About the same",
                        "more": "More than before"}
LINKAGE_LABELS = {"offered": "Offered", "accepted": "Accepted", "declined": "Declined",
                  "not_now": "Not now"}
STATE_LABELS = {"applicant": "Applicants", "active": "Active", "suspended": "Suspended",
                "ended": "Ended"}
EXPORT_COLUMNS = ("member", "program_code", "date", "substance", "quantity_g", "mode")


def _midnight(site: Site, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=site.zone).astimezone(UTC)


def _next_month(first: date) -> date:
    return (first.replace(day=1) + timedelta(days=32)).replace(day=1)


def grams(mg: int) -> float:
    """Whole milligrams as grams (3 decimals at most)."""
    return round(mg / 1000, 3)


# --- Surveys -----------------------------------------------------------------------------------


def get_member(site: Site, member_id: int) -> Member:
    """:raises NotFound: for an unknown member or one of another site."""
    member = db.session.get(Member, member_id)
    if member is None or member.site_id != site.id:
        raise NotFound("No such member at this site.")
    return member


def last_survey(member: Member) -> MemberSurvey | None:
    return db.session.scalars(
        db.select(MemberSurvey).where(MemberSurvey.member_id == member.id)
        .order_by(MemberSurvey.at.desc(), MemberSurvey.id.desc()).limit(1)).first()


def survey_due_on(member: Member, site: Site, last: MemberSurvey | None = None) -> date | None:
    """The local day the member's next survey is due; None for someone never active."""
    if last is None and member.state in ("applicant", "ended") and member.active_since is None:
        return None
    # A member made active without its time kept counts from their application.
    since = last.at if last is not None else (member.active_since or member.applied_at)
    return site.local_date(since) + timedelta(days=site.compassion_survey_days)


@dataclass
class SurveyDue:
    member: Member
    due_on: date
    last_at: datetime | None


def members_due(site: Site, *, now: datetime) -> list[SurveyDue]:
    """Active and suspended members whose survey is due by today (site time), longest
    overdue first."""
    today = site.local_date(now)
    members = db.session.scalars(db.select(Member).where(
        Member.site_id == site.id, Member.state.in_(("active", "suspended")))).all()
    due = []
    for member in members:
        last = last_survey(member)
        due_on = survey_due_on(member, site, last)
        if due_on is not None and due_on <= today:
            due.append(SurveyDue(member, due_on, last.at if last else None))
    return sorted(due, key=lambda d: (d.due_on, d.member.id))


def record_member_survey(site: Site, member_id: int, data: dict, *, actor: Actor,
                         now: datetime) -> MemberSurvey:
    """Record a member's check-in: overdoses since the last one, street supply (none, less,
    same, more), treatment contact, a note. Audited (``compassion_survey_recorded``, ids
    only).

    :raises NotFound: for an unknown member or one of another site.
    :raises Conflict: for an applicant or an ended membership.
    """
    member = get_member(site, member_id)
    if member.state not in ("active", "suspended"):
        raise Conflict("Only an active or suspended member is surveyed.")
    survey = MemberSurvey(member_id=member.id, at=now, by=actor.staff_id,
                          overdoses_since=data["overdoses_since"],
                          street_supply=data["street_supply"],
                          treatment_contact=data["treatment_contact"],
                          note=data.get("note") or None)
    db.session.add(survey)
    db.session.flush()
    record(actor, "compassion_survey_recorded", "compassion_member", member.id,
           site_id=site.id, detail={"survey_id": survey.id}, now=now)
    db.session.commit()
    return survey


# --- The monthly report ------------------------------------------------------------------------


def _member_at(moment):
    """The client was a member of the site at ``moment`` (a column or a value)."""
    return and_(Member.active_since.is_not(None), Member.active_since <= moment,
                or_(Member.ended_at.is_(None), Member.ended_at > moment))


@dataclass
class ClubReport:
    site: Site
    month: date
    start: datetime
    end: datetime
    members_by_state: dict[str, int]
    supplies_by_substance: dict[str, dict]  # substance: {"supplies", "quantity_mg"}
    limits_reached: dict[str, int]
    linkage: dict[str, int]
    surveys: int
    survey_overdoses: int
    street_supply: dict[str, int]
    treatment_contact: int
    member_visits: int
    member_overdoses: int
    other_visits: int
    other_overdoses: int

    @property
    def supplies(self) -> int:
        return sum(s["supplies"] for s in self.supplies_by_substance.values())

    @property
    def quantity_g(self) -> float:
        return grams(sum(s["quantity_mg"] for s in self.supplies_by_substance.values()))

    @property
    def limits_total(self) -> int:
        return sum(self.limits_reached.values())

    @staticmethod
    def _rate(overdoses: int, visits: int) -> float | None:
        return round(1000 * overdoses / visits, 1) if visits else None

    @property
    def member_rate(self) -> float | None:
        """Overdoses among members per 1,000 of their visits (None without a visit)."""
        return self._rate(self.member_overdoses, self.member_visits)

    @property
    def other_rate(self) -> float | None:
        """Overdoses among the site's other clients per 1,000 of their visits."""
        return self._rate(self.other_overdoses, self.other_visits)

    @property
    def active(self) -> bool:
        """Whether the site runs a club at all (a member ever)."""
        return self.site.id in sites_running_a_club([self.site.id])


def sites_running_a_club(site_ids: list[int]) -> set[int]:
    """Which of the sites run a club at all: a member ever."""
    return set(db.session.scalars(db.select(Member.site_id).where(
        Member.site_id.in_(site_ids)).distinct()))


def _state_at(member: Member, end: datetime) -> str | None:
    """The member's state at ``end``: the records keep when they applied, became active and
    ended; a suspension's start is not kept, so a current one counts back to activation."""
    if member.applied_at >= end:
        return None
    if member.ended_at is not None and member.ended_at < end:
        return "ended"
    if member.active_since is None or member.active_since >= end:
        return "ended" if member.state == "ended" and member.ended_at is None else "applicant"
    if member.state == "suspended" and (member.suspended_until is None
                                        or member.suspended_until > end):
        return "suspended"
    return "active"


def _members_by_state(site: Site, end: datetime) -> dict[str, int]:
    counts = Counter()
    for member in db.session.scalars(db.select(Member).where(Member.site_id == site.id)):
        state = _state_at(member, end)
        if state:
            counts[state] += 1
    return {state: counts[state] for state in STATES}


def _supplies(site: Site, start: datetime, end: datetime) -> dict[str, dict]:
    rows = db.session.execute(
        db.select(SupplyBatch.substance, db.func.count(Supply.id),
                  db.func.sum(Supply.quantity_mg))
        .join(SupplyBatch, SupplyBatch.id == Supply.batch_id)
        .where(Supply.site_id == site.id, Supply.at >= start, Supply.at < end)
        .group_by(SupplyBatch.substance).order_by(SupplyBatch.substance)).all()
    return {substance: {"supplies": n, "quantity_mg": int(mg or 0)}
            for substance, n, mg in rows}


def _limits(site: Site, start: datetime, end: datetime) -> dict[str, int]:
    details = db.session.scalars(db.select(AuditEvent.detail).where(
        AuditEvent.site_id == site.id, AuditEvent.action == LIMIT_REACHED,
        AuditEvent.at >= start, AuditEvent.at < end)).all()
    counts = Counter(str((d or {}).get("limit") or "unknown") for d in details)
    return dict(sorted(counts.items()))


def _linkage(site: Site, start: datetime, end: datetime) -> dict[str, int]:
    rows = dict(db.session.execute(
        db.select(LinkageConversation.outcome, db.func.count(LinkageConversation.id))
        .join(Member, Member.id == LinkageConversation.member_id)
        .where(Member.site_id == site.id, LinkageConversation.at >= start,
               LinkageConversation.at < end)
        .group_by(LinkageConversation.outcome)).all())
    return {outcome: rows.get(outcome, 0) for outcome in LINKAGE_OUTCOMES}


def _visits_and_overdoses(site: Site, start: datetime, end: datetime) -> tuple[int, ...]:
    """(members' visits, overdoses among members, others' visits, overdoses among others)."""
    visit_member = db.select(Member.id).where(
        Member.site_id == site.id, Member.client_id == Visit.client_id,
        _member_at(Visit.arrived_at)).exists()
    in_month = (Visit.site_id == site.id, Visit.arrived_at >= start, Visit.arrived_at < end)
    visits = db.session.scalar(db.select(db.func.count(Visit.id)).where(*in_month))
    member_visits = db.session.scalar(
        db.select(db.func.count(Visit.id)).where(*in_month, visit_member))
    client = db.func.coalesce(OverdoseResponse.client_id, Visit.client_id)
    response_member = db.select(Member.id).where(
        Member.site_id == site.id, Member.client_id == client,
        _member_at(OverdoseResponse.started_at)).exists()
    responses = (db.select(db.func.count(OverdoseResponse.id))
                 .outerjoin(Visit, Visit.id == OverdoseResponse.visit_id)
                 .where(OverdoseResponse.site_id == site.id,
                        OverdoseResponse.started_at >= start,
                        OverdoseResponse.started_at < end))
    overdoses = db.session.scalar(responses)
    member_overdoses = db.session.scalar(responses.where(response_member))
    return member_visits, member_overdoses, visits - member_visits, overdoses - member_overdoses


def month_report(site: Site, month: date) -> ClubReport:
    """The club's figures for ``site`` and the local month holding ``month``."""
    first = month.replace(day=1)
    start, end = _midnight(site, first), _midnight(site, _next_month(first))
    surveys = db.session.execute(
        db.select(MemberSurvey.overdoses_since, MemberSurvey.street_supply,
                  MemberSurvey.treatment_contact)
        .join(Member, Member.id == MemberSurvey.member_id)
        .where(Member.site_id == site.id, MemberSurvey.at >= start,
               MemberSurvey.at < end)).all()
    street = Counter(s.street_supply for s in surveys)
    member_visits, member_overdoses, other_visits, other_overdoses = _visits_and_overdoses(
        site, start, end)
    return ClubReport(
        site=site, month=first, start=start, end=end,
        members_by_state=_members_by_state(site, end),
        supplies_by_substance=_supplies(site, start, end),
        limits_reached=_limits(site, start, end), linkage=_linkage(site, start, end),
        surveys=len(surveys), survey_overdoses=sum(s.overdoses_since for s in surveys),
        street_supply={value: street[value] for value in STREET_SUPPLY},
        treatment_contact=sum(1 for s in surveys if s.treatment_contact),
        member_visits=member_visits, member_overdoses=member_overdoses,
        other_visits=other_visits, other_overdoses=other_overdoses)


def evaluation_csv(site: Site, month: date) -> str:
    """The month's supplies for an evaluation: one row each with a member number given in
    this file alone (1, 2... in order of a member's first supply), the program code, the
    local date, the substance, the quantity in grams and the mode. No client code."""
    first = month.replace(day=1)
    start, end = _midnight(site, first), _midnight(site, _next_month(first))
    rows = db.session.execute(
        db.select(Supply.member_id, Supply.program_code, Supply.at, SupplyBatch.substance,
                  Supply.quantity_mg, Supply.mode)
        .join(SupplyBatch, SupplyBatch.id == Supply.batch_id)
        .where(Supply.site_id == site.id, Supply.at >= start, Supply.at < end)
        .order_by(Supply.at, Supply.id)).all()
    numbers: dict[int, int] = {}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for member_id, program_code, at, substance, mg, mode in rows:
        number = numbers.setdefault(member_id, len(numbers) + 1)
        writer.writerow((number, program_code or "", site.local_date(at).isoformat(),
                         substance, f"{grams(mg):g}", mode))
    return out.getvalue()
