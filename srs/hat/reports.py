"""Treatment's monthly figures, for the reviewers' page and the regulator's monthly report.

A month runs from the 1st in the site's timezone. The figures count, never name: patients
in treatment, enrolments begun and ended; doses given, withheld, declined and missed per
day and why; retention at 3, 6 and 12 months (of the treatments begun at least that long
before the month's end, the share not ended by then); overdoses among patients (responses
whose client was in treatment when it started); and the controlled-drug register's lines,
from their balance on the 1st to their balance at the month's end.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, or_

from srs.auth.models import Role
from srs.booths.models import Visit
from srs.controlled.models import ControlledDrug
from srs.controlled.service import period_balances
from srs.extensions import db
from srs.hat.models import DOSE_OUTCOMES, HatDose, HatEnrolment
from srs.overdose.models import OverdoseResponse
from srs.sites.models import Site

# Who reads the report: the incident reviewers' readers of the monthly report, and
# treatment's own two roles.
REPORT_READERS = (Role.REVIEWER, Role.SUPERVISOR, Role.ADMIN, Role.PRESCRIBER,
                  Role.PHARMACIST)
RETENTION_MONTHS = (3, 6, 12)
OUTCOME_LABELS = {"given": "Given", "withheld": "Withheld", "declined": "Declined",
                  "missed": "Missed"}


def _midnight(site: Site, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=site.zone).astimezone(UTC)


def months_before(day: date, months: int) -> date:
    """The 1st of the month ``months`` before ``day``'s month (``day`` a 1st)."""
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def month_days(month: date) -> list[date]:
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return [first + timedelta(days=i) for i in range((following - first).days)]


@dataclass
class Retention:
    months: int
    cohort: int  # treatments begun at least ``months`` before the month's end
    retained: int  # of them, not ended by the month's end

    @property
    def percent(self) -> int | None:
        return round(100 * self.retained / self.cohort) if self.cohort else None


@dataclass
class DayDoses:
    day: date
    counts: dict[str, int]  # by DOSE_OUTCOMES
    reasons: list[tuple[str, str, int]] = field(default_factory=list)  # outcome, reason, n


@dataclass
class HatReport:
    site: Site
    month: date
    start: datetime
    end: datetime
    in_treatment: int
    new_enrolments: int
    ended: int
    days: list[DayDoses]
    retention: list[Retention]
    overdoses: int
    register: list[dict]  # srs.controlled.service.period_balances

    @property
    def dose_totals(self) -> dict[str, int]:
        return {o: sum(d.counts[o] for d in self.days) for o in DOSE_OUTCOMES}

    @property
    def reasons(self) -> dict[str, int]:
        """Doses not given in the month, by "outcome: reason"."""
        counts = Counter()
        for d in self.days:
            for outcome, reason, n in d.reasons:
                counts[f"{outcome}: {reason}"] += n
        return dict(sorted(counts.items()))

    @property
    def active(self) -> bool:
        """Whether the site runs treatment at all (a patient ever, or a register line)."""
        return self.site.id in sites_running_treatment([self.site.id])


def sites_running_treatment(site_ids: list[int]) -> set[int]:
    """Which of the sites run treatment at all: a patient ever, or a register line."""
    patients = db.select(HatEnrolment.site_id).where(HatEnrolment.site_id.in_(site_ids))
    lines = db.select(ControlledDrug.site_id).where(ControlledDrug.site_id.in_(site_ids))
    return set(db.session.scalars(patients.union(lines)))


def _not_ended_by(moment: datetime):
    """The enrolment had not ended before ``moment`` (an ended one without a time had)."""
    return or_(HatEnrolment.ended_at >= moment,
               and_(HatEnrolment.ended_at.is_(None), HatEnrolment.state != "ended"))


def _count(*where) -> int:
    return db.session.scalar(db.select(db.func.count(HatEnrolment.id)).where(*where))


def _dose_days(site: Site, month: date) -> list[DayDoses]:
    days = month_days(month)
    rows = db.session.execute(
        db.select(HatDose.day, HatDose.outcome, HatDose.reason, db.func.count(HatDose.id))
        .where(HatDose.site_id == site.id, HatDose.day >= days[0], HatDose.day <= days[-1])
        .group_by(HatDose.day, HatDose.outcome, HatDose.reason)).all()
    by_day = {d: DayDoses(d, dict.fromkeys(DOSE_OUTCOMES, 0)) for d in days}
    for day, outcome, reason, n in rows:
        by_day[day].counts[outcome] += n
        if outcome != "given":
            by_day[day].reasons.append((outcome, reason or "", n))
    for d in by_day.values():
        d.reasons.sort()
    return list(by_day.values())


def _overdoses_among_patients(site: Site, start: datetime, end: datetime) -> int:
    """Responses in the month whose client (named, or of the visit) was in treatment at the
    site when the response started."""
    client = db.func.coalesce(OverdoseResponse.client_id, Visit.client_id)
    in_treatment = db.select(HatEnrolment.id).where(
        HatEnrolment.site_id == site.id, HatEnrolment.client_id == client,
        HatEnrolment.enrolled_at <= OverdoseResponse.started_at,
        or_(HatEnrolment.ended_at.is_(None),
            HatEnrolment.ended_at > OverdoseResponse.started_at)).exists()
    return db.session.scalar(
        db.select(db.func.count(OverdoseResponse.id))
        .outerjoin(Visit, Visit.id == OverdoseResponse.visit_id)
        .where(OverdoseResponse.site_id == site.id, OverdoseResponse.started_at >= start,
               OverdoseResponse.started_at < end, in_treatment))


def month_report(site: Site, month: date) -> HatReport:
    """Treatment's figures for ``site`` and the local month holding ``month``."""
    first = month.replace(day=1)
    following = months_before(first, -1)
    start, end = _midnight(site, first), _midnight(site, following)
    at_site = HatEnrolment.site_id == site.id
    retention = []
    for months in RETENTION_MONTHS:
        cutoff = _midnight(site, months_before(following, months))
        begun = (at_site, HatEnrolment.enrolled_at <= cutoff)
        retention.append(Retention(months, _count(*begun),
                                   _count(*begun, _not_ended_by(end))))
    return HatReport(
        site=site, month=first, start=start, end=end,
        in_treatment=_count(at_site, HatEnrolment.enrolled_at < end, _not_ended_by(end)),
        new_enrolments=_count(at_site, HatEnrolment.enrolled_at >= start,
                              HatEnrolment.enrolled_at < end),
        ended=_count(at_site, HatEnrolment.ended_at >= start, HatEnrolment.ended_at < end),
        days=_dose_days(site, first), retention=retention,
        overdoses=_overdoses_among_patients(site, start, end),
        register=period_balances(site, start=start, end=end))
