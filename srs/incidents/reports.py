"""The weekly review's figures and the regulator's monthly report, computed from the records.

Weeks run Monday to Sunday and months from the 1st, both in the site's timezone;
a visit counts in the week, month and time band of its arrival.

The monthly report is a table of figures: each row is a name, a label and a
small function of one ``MonthData``. A figure that another record feeds (an
overdose response, a naloxone dose, a referral) is one more row. A breakdown is
keyed by the values the API takes (``needle_stick``, ``fentanyl``); its figure
labels each key for people (the page, the CSV).
"""

import csv
import gc
import io
import json
import statistics
from collections import Counter
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, lru_cache
from numbers import Number
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Text, and_, cast, exists, func
from sqlalchemy.orm import aliased, selectinload

from srs.booths.models import SUBSTANCES, Booth, Consumption, Visit
from srs.clients.models import GENDERS, Client
from srs.extensions import db
from srs.incidents.models import (
    HARM_GRADES,
    INCIDENT_TYPES,
    OVERDOSE_TYPES,
    STAGE_LABELS,
    Incident,
    IncidentAction,
    Stage,
)
from srs.incidents.service import overdue_actions
from srs.naloxone.models import KIT_FORMS, REPLACEMENT_REASONS, TRAINEE_KINDS, USE_OUTCOMES
from srs.naloxone.training import month_days, trained_by_kind
from srs.referrals.models import SERVICE_TYPES
from srs.sites.models import TIME_BANDS, Site, time_band

TREND_WEEKS = 12
AGE_BANDS = ("<20", "20-29", "30-39", "40-49", "50-59", "60+", "unknown")


def local_zone(site: Site) -> ZoneInfo:
    return site.zone


def band_of(moment: datetime, zone: ZoneInfo) -> str:
    return time_band(moment.astimezone(zone).hour)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def week_start_of(site: Site, moment: datetime) -> date:
    """The Monday of the site's local week that holds ``moment``."""
    day = moment.astimezone(local_zone(site)).date()
    return day - timedelta(days=day.weekday())


def week_bounds(site: Site, monday: date) -> tuple[datetime, datetime]:
    """The UTC instants of local Monday 00:00 and the next Monday 00:00."""
    zone = local_zone(site)
    return _local_midnight(monday, zone), _local_midnight(monday + timedelta(days=7), zone)


# The weeks and months a report can be asked for: its twelve trend weeks and its next week
# stay inside the calendar, and no site kept records before 2000.
FIRST_REPORT_DAY, LAST_REPORT_DAY = date(2000, 1, 1), date(2100, 12, 31)
REPORT_RANGE = "from 2000 to 2100"


def reportable(day: date) -> bool:
    """Whether a week or month starting on ``day`` can be reported on."""
    return FIRST_REPORT_DAY <= day <= LAST_REPORT_DAY


def month_bounds(site: Site, month: date) -> tuple[datetime, datetime]:
    zone = local_zone(site)
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return _local_midnight(first, zone), _local_midnight(following, zone)


# --- The weekly review -----------------------------------------------------------------------


@dataclass
class WeeklyReview:
    site: Site
    week_start: date
    filters: dict
    incidents: list[Incident]
    by_stage: dict
    overdue_actions: list[IncidentAction]
    trend_weeks: list[date]
    type_per_week: dict
    by_band: Counter
    by_booth: Counter
    visits_per_week: list[int]
    overdoses_per_week: list[int]
    booths: list[Booth]
    # From the overdose console's records, per week: naloxone doses per overdose response,
    # and the median minutes from a response's start to its first dose.
    naloxone_per_overdose: list[float | None]
    minutes_to_naloxone: list[float | None]

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)

    @property
    def overdoses_per_1000_visits(self) -> list[float | None]:
        return [round(o * 1000 / v, 2) if v else None
                for o, v in zip(self.overdoses_per_week, self.visits_per_week, strict=True)]


def _matches(incident: Incident, filters: dict, zone: ZoneInfo) -> bool:
    if filters.get("type") and incident.type != filters["type"]:
        return False
    if filters.get("harm") and incident.harm != filters["harm"]:
        return False
    if filters.get("booth_id") and incident.booth_id != filters["booth_id"]:
        return False
    return not (filters.get("band") and band_of(incident.occurred_at, zone) != filters["band"])


def weekly_review(site: Site, week_start: date, filters: dict, *, today: date) -> WeeklyReview:
    """The week's submitted reports by stage (filtered), open actions past due, and the
    12-week trends the charts draw."""
    zone = local_zone(site)
    start, end = week_bounds(site, week_start)
    first_week = week_start - timedelta(weeks=TREND_WEEKS - 1)
    trend_start, _ = week_bounds(site, first_week)
    weeks = [first_week + timedelta(weeks=i) for i in range(TREND_WEEKS)]

    def week_of(moment: datetime) -> int:
        """Which of the 12 trend weeks a moment falls in, by the site's calendar."""
        return (moment.astimezone(zone).date() - first_week).days // 7

    rows = list(db.session.execute(
        db.select(Incident).where(Incident.site_id == site.id, Incident.stage != Stage.DRAFT,
                                  Incident.occurred_at >= trend_start,
                                  Incident.occurred_at < end)
        .options(selectinload(Incident.booth))
        .order_by(Incident.occurred_at)).scalars())
    this_week = [i for i in rows if start <= i.occurred_at < end and _matches(i, filters, zone)]
    by_stage = {stage: [i for i in this_week if i.stage == stage]
                for stage in STAGE_LABELS if stage != Stage.DRAFT}
    type_per_week = {t: [0] * TREND_WEEKS for t in INCIDENT_TYPES}
    overdoses = [0] * TREND_WEEKS
    by_band, by_booth = Counter(), Counter()
    for incident in rows:
        index = week_of(incident.occurred_at)
        type_per_week[incident.type][index] += 1
        if incident.type in OVERDOSE_TYPES:
            overdoses[index] += 1
        by_band[band_of(incident.occurred_at, zone)] += 1
        by_booth[incident.booth.label if incident.booth else "Elsewhere"] += 1
    visits = []
    for monday in weeks:
        w_start, w_end = week_bounds(site, monday)
        visits.append(db.session.scalar(db.select(func.count(Visit.id)).where(
            Visit.site_id == site.id, Visit.arrived_at >= w_start, Visit.arrived_at < w_end)))
    from srs.overdose.service import naloxone_timing

    per_week = [[] for _ in weeks]
    for started_at, doses, minutes in naloxone_timing(site, start=trend_start, end=end):
        per_week[week_of(started_at)].append((doses, minutes))
    naloxone_per_overdose = [round(sum(d for d, _ in week) / len(week), 2) if week else None
                             for week in per_week]
    minutes_to_naloxone = [
        round(statistics.median(m for _, m in week if m is not None), 1)
        if any(m is not None for _, m in week) else None for week in per_week]
    booths = list(db.session.execute(db.select(Booth).filter_by(site_id=site.id)
                                     .order_by(Booth.position, Booth.label)).scalars())
    return WeeklyReview(site=site, week_start=week_start, filters=filters, incidents=this_week,
                        by_stage=by_stage, overdue_actions=overdue_actions(site, today=today),
                        trend_weeks=weeks, type_per_week=type_per_week, by_band=by_band,
                        by_booth=by_booth, visits_per_week=visits,
                        overdoses_per_week=overdoses, booths=booths,
                        naloxone_per_overdose=naloxone_per_overdose,
                        minutes_to_naloxone=minutes_to_naloxone)


CSV_COLUMNS = ("id", "stage", "type", "occurred_at_local", "time_band", "location", "harm",
               "client_codes", "staff_involved", "ems_involved", "police_involved",
               "follow_up_needed", "narrative", "immediate_actions", "contributing_factors",
               "actions", "lessons_learned", "feedback", "submitted_at", "closed_at")


def _csv_safe(value) -> str:
    """Keep a spreadsheet from running a cell as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def incidents_csv(site: Site, incidents: list[Incident]) -> str:
    zone = local_zone(site)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for i in incidents:
        writer.writerow([_csv_safe(v) for v in (
            i.id, i.stage, INCIDENT_TYPES[i.type],
            i.occurred_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            band_of(i.occurred_at, zone), i.location, HARM_GRADES[i.harm],
            " ".join(c.code for c in i.clients), i.staff_involved or "",
            "yes" if i.ems_involved else "no", "yes" if i.police_involved else "no",
            "yes" if i.follow_up_needed else "no", i.narrative, i.immediate_actions,
            "; ".join(f.full_label for f in i.factors),
            "; ".join(f"{a.description} ({a.owner.display_name}, due {a.due_on:%Y-%m-%d}"
                      f"{', done' if a.done_at else ''})" for a in i.actions),
            i.lessons_learned, i.feedback,
            i.submitted_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if i.submitted_at else "",
            i.closed_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if i.closed_at else "")])
    return out.getvalue()


# --- The monthly report ----------------------------------------------------------------------


class ConsumptionRow(NamedTuple):
    visit_id: int
    substances: tuple[str, ...]
    split_or_shared: bool
    peer_assisted: bool


@lru_cache(maxsize=1024)
def _substance_list(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text) or ()) if text else ()


class SiteReads:
    """The visit-level reads of one local month for one or more sites sharing its bounds
    (sites in one timezone): each one query for all the sites, its rows grouped by site,
    loaded once when a figure asks. One site's report is the case of a single site."""

    def __init__(self, site_ids: list[int], start: datetime, end: datetime):
        self.site_ids, self.start, self.end = list(site_ids), start, end

    def _in_month(self):
        return and_(Visit.site_id.in_(self.site_ids), Visit.arrived_at >= self.start,
                    Visit.arrived_at < self.end)

    def _by_site(self, query, make=None) -> dict[int, list]:
        """The rows of ``query`` (its first column the site's id) by site, each through
        ``make`` if given. Plain rows, not the ORM's: a month of many sites is tens of
        thousands of them."""
        grouped: dict[int, list] = {site_id: [] for site_id in self.site_ids}
        db.session.flush()
        for row in db.session.connection().execute(query).all():
            grouped[row[0]].append(make(*row) if make else row)
        return grouped

    @cached_property
    def visits(self) -> dict[int, list]:
        return self._by_site(db.select(Visit.site_id, Visit.id, Visit.client_id,
                                       Visit.arrived_at, Visit.booth_id)
                             .where(self._in_month()))

    @cached_property
    def clients(self) -> dict[int, list]:
        """(site_id, id, gender, birth_year) of each client who visited, once per site."""
        ids = db.select(Visit.site_id, Visit.client_id).where(
            self._in_month()).distinct().subquery()
        return self._by_site(db.select(ids.c.site_id, Client.id, Client.gender,
                                       Client.birth_year)
                             .join(ids, ids.c.client_id == Client.id))

    @cached_property
    def consumptions(self) -> dict[int, list]:
        ids = [v.id for rows in self.visits.values() for v in rows]
        if not ids:
            return {site_id: [] for site_id in self.site_ids}
        # The month's visits' ids bound the consumptions to read through their own index;
        # without it, for many sites' months, PostgreSQL reads every consumption there is.
        # The substances come as their JSON text, read once per distinct list: decoding
        # each row's took longer than the query.
        return self._by_site(
            db.select(Visit.site_id, Consumption.visit_id,
                      cast(Consumption.substances, Text), Consumption.split_or_shared,
                      Consumption.peer_assisted)
            .join(Visit, Visit.id == Consumption.visit_id)
            .where(self._in_month(), Consumption.visit_id.between(min(ids), max(ids))),
            lambda site_id, visit_id, substances, split, peer: ConsumptionRow(
                visit_id, _substance_list(substances), split, peer))

    @cached_property
    def new_client_counts(self) -> dict[int, int]:
        earlier = aliased(Visit)
        before = exists().where(earlier.client_id == Visit.client_id,
                                earlier.site_id == Visit.site_id,
                                earlier.arrived_at < self.start)
        # A client whose earlier visits retention gave to a placeholder came before too.
        counts = dict(db.session.execute(
            db.select(Visit.site_id, func.count(func.distinct(Visit.client_id)))
            .join(Client, Client.id == Visit.client_id)
            .where(self._in_month(), ~before, Client.earlier_visits_retired.is_(False))
            .group_by(Visit.site_id)).all())
        return {site_id: counts.get(site_id, 0) for site_id in self.site_ids}

    @cached_property
    def running_treatment(self) -> set[int]:
        """The sites that run treatment (their report has its figures)."""
        from srs.hat.reports import sites_running_treatment

        return sites_running_treatment(self.site_ids)

    @cached_property
    def running_a_club(self) -> set[int]:
        from srs.compassion.evaluation import sites_running_a_club

        return sites_running_a_club(self.site_ids)

    @cached_property
    def incidents(self) -> dict[int, list]:
        return self._by_site(db.select(Incident.site_id, Incident.type, Incident.harm).where(
            Incident.site_id.in_(self.site_ids), Incident.stage != Stage.DRAFT,
            Incident.occurred_at >= self.start, Incident.occurred_at < self.end))


class MonthData:
    """One site's records for one local month, each loaded once when a figure asks; the
    visit-level ones through ``reads``, which a report of several sites shares among them."""

    def __init__(self, site: Site, month: date, reads: SiteReads | None = None):
        self.site = site
        self.month = month.replace(day=1)
        self.start, self.end = month_bounds(site, self.month)
        self.zone = local_zone(site)
        self.reads = reads or SiteReads([site.id], self.start, self.end)

    @property
    def visits(self) -> list:
        return self.reads.visits[self.site.id]

    @property
    def clients(self) -> list:
        """(site_id, id, gender, birth_year) of each client who visited, once."""
        return self.reads.clients[self.site.id]

    @property
    def consumptions(self) -> list:
        return self.reads.consumptions[self.site.id]

    @property
    def new_client_count(self) -> int:
        return self.reads.new_client_counts[self.site.id]

    @property
    def incidents(self) -> list:
        return self.reads.incidents[self.site.id]

    @cached_property
    def overdoses(self) -> dict:
        """The overdose console's counts for the month (responses, naloxone, EMS, kits)."""
        from srs.overdose.service import monthly_figures

        return monthly_figures(self.site, start=self.start, end=self.end)

    @cached_property
    def naloxone_kits(self) -> dict:
        """Take-home kits first or replacement and why, kits reported used and outcomes."""
        from srs.naloxone.kits import monthly_figures

        return monthly_figures(self.site, start=self.start, end=self.end)

    @cached_property
    def hat(self):
        """Treatment's figures (srs.hat.reports): patients, doses, retention, overdoses
        among patients, the register's balances."""
        from srs.hat.reports import month_report

        return month_report(self.site, self.month)

    @cached_property
    def club(self):
        """The compassion club's figures (srs.compassion.evaluation): members, supplies,
        limits reached, linkage, surveys, overdoses among members and the other clients."""
        from srs.compassion.evaluation import month_report

        return month_report(self.site, self.month)

    @cached_property
    def referrals(self) -> dict:
        from srs.referrals.service import uptake

        return uptake(self.site, self.start, self.end)


def _visits_by_band(m: MonthData) -> dict:
    counts = Counter(time_band(v.arrived_at.astimezone(m.zone).hour) for v in m.visits)
    return {band: counts[band] for band in TIME_BANDS}


def _age_band(month: date, birth_year: int | None) -> str:
    if birth_year is None:
        return "unknown"
    age = month.year - birth_year
    if age < 20:
        return "<20"
    if age >= 60:
        return "60+"
    low = age // 10 * 10
    return f"{low}-{low + 9}"


def _clients_by_age(m: MonthData) -> dict:
    counts = Counter(_age_band(m.month, c.birth_year) for c in m.clients)
    return {band: counts[band] for band in AGE_BANDS}


# The client code's gender letters (what the API's codes carry), and their words.
GENDER_LABELS = {**GENDERS, "unknown": "unknown"}


def _clients_by_gender(m: MonthData) -> dict:
    counts = Counter(c.gender or "unknown" for c in m.clients)  # stored as the word
    return {letter: counts[word] for letter, word in GENDER_LABELS.items()}


# --- Totals across sites (the report of several sites): counts add up (a client is a record
# of one site: the same code at another is another person's), a percentage or a rate is of
# the added-up counts.


def _retention_percent_across(months: list[MonthData]) -> dict:
    from srs.hat.reports import Retention

    summed: dict[int, Retention] = {}
    for m in months:
        for r in m.hat.retention:
            total = summed.setdefault(r.months, Retention(r.months, 0, 0))
            total.cohort += r.cohort
            total.retained += r.retained
    return {str(r.months): r.percent for r in summed.values()}


def _club_rate_across(kind: str):
    def compute(months: list[MonthData]) -> str:
        from srs.compassion.evaluation import ClubReport

        return _club_rate(ClubReport._rate(sum(getattr(m.club, f"{kind}_overdoses")
                                               for m in months),
                                           sum(getattr(m.club, f"{kind}_visits")
                                               for m in months)))
    return compute


def _drugs_by_type(m: MonthData) -> dict:
    """Visits in which each substance was used (a visit counts once per substance)."""
    per_visit: dict[int, set] = {}
    for c in m.consumptions:
        per_visit.setdefault(c.visit_id, set()).update(c.substances or [])
    counts = Counter(s for substances in per_visit.values() for s in substances)
    return {s: counts[s] for s in SUBSTANCES}


def _visits_where(m: MonthData, attribute: str) -> int:
    return len({c.visit_id for c in m.consumptions if getattr(c, attribute)})


def _referrals_by_type(m: MonthData) -> dict:
    return {t: row["accepted"] for t, row in m.referrals["by_type"].items()}


def _kits_by_form(m: MonthData) -> dict:
    return {form: m.overdoses["take_home_kits"][form] for form in KIT_FORMS}


def _trained_by_kind(m: MonthData) -> dict:
    return trained_by_kind(m.site, *month_days(m.month))


def _retention(attribute: str):
    return lambda m: {str(r.months): getattr(r, attribute) for r in m.hat.retention}


RETENTION_LABELS = {"3": "3 months", "6": "6 months", "12": "12 months"}


def _register_closing(m: MonthData) -> dict:
    return {line["drug"].label: line["closing"] for line in m.hat.register}


def _runs_treatment(m: MonthData) -> bool:
    return m.site.id in m.reads.running_treatment


def _runs_club(m: MonthData) -> bool:
    return m.site.id in m.reads.running_a_club


def _club_mg(m: MonthData) -> dict:
    return {substance: s["quantity_mg"] for substance, s in m.club.supplies_by_substance.items()}


def _club_rate(value) -> str:
    return "" if value is None else f"{value:g}"


CLUB_STATES = {"applicant": "Applicants", "active": "Active", "suspended": "Suspended",
               "ended": "Ended"}
CLUB_LINKAGE = {"offered": "Offered", "accepted": "Accepted", "declined": "Declined",
                "not_now": "Not now"}
CLUB_STREET = {"none": "None", "less": "Less than before", "same": "About the same",
               "more": "More than before"}


def _overdose(key: str):
    return lambda m: m.overdoses[key]


def _incidents_by_type(m: MonthData) -> dict:
    counts = Counter(i.type for i in m.incidents)
    return {key: counts[key] for key in INCIDENT_TYPES}


SUM = "sum"


@dataclass(frozen=True)
class Figure:
    name: str
    label: str
    compute: object  # MonthData -> int | str | dict[str, int] (a breakdown, by API value)
    # A breakdown's words for people, by key; a key without one (a time band) is its own.
    labels: Mapping[str, str] | None = None
    # Whether the site reports it at all (treatment's figures: a site that runs treatment).
    shown: object = None  # MonthData -> bool; None: always
    # Its total across several sites (the report of every site a person reads): SUM adds
    # the sites' values (a breakdown key by key); a function of the sites' MonthData
    # computes it across them; None: per site only (words, a site's own register).
    total: object = SUM

    def label_of(self, key: str) -> str:
        return (self.labels or {}).get(key, key)


# Health Canada's monthly indicators and Ontario's additions, in the order the forms ask.
FIGURES: tuple[Figure, ...] = (
    Figure("total_visits", "Total visits", lambda m: len(m.visits)),
    Figure("unique_clients", "Unique clients (once per site per month)",
           lambda m: len(m.clients)),
    Figure("new_clients", "New clients (first visit at this site in the month)",
           lambda m: m.new_client_count),
    Figure("clients_by_gender", "Unique clients by gender", _clients_by_gender,
           GENDER_LABELS),
    Figure("clients_by_age_band", "Unique clients by age band (from the code's birth year)",
           _clients_by_age),
    Figure("visits_by_time_band", "Visits by time band (arrival, site time)", _visits_by_band),
    Figure("visits_with_consumption", "Visits with consumption recorded",
           lambda m: len({c.visit_id for c in m.consumptions})),
    Figure("drugs_consumed_by_type", "Drugs consumed, by type (visits)", _drugs_by_type,
           SUBSTANCES),
    Figure("split_or_shared_visits", "Visits with splitting or sharing",
           lambda m: _visits_where(m, "split_or_shared")),
    Figure("peer_assisted_visits", "Peer-assisted visits",
           lambda m: _visits_where(m, "peer_assisted")),
    Figure("booths_in_operation", "Booths in operation (used at least once)",
           lambda m: len({v.booth_id for v in m.visits if v.booth_id is not None})),
    Figure("opening_hours", "Opening hours (site setting)",
           lambda m: m.site.opening_hours or "not set", total=None),
    Figure("services_inside", "Services given inside the site (referrals made to them)",
           lambda m: m.referrals["services_inside"]),
    Figure("referrals_outside", "Referrals outside the site",
           lambda m: m.referrals["referrals_outside"]),
    Figure("referrals_by_service_type", "Referrals made, by service type", _referrals_by_type,
           SERVICE_TYPES),
    Figure("overdoses", "Overdoses (opioid and stimulant)", _overdose("overdoses")),
    Figure("opioid_overdoses", "Opioid overdoses", _overdose("opioid_overdoses")),
    Figure("stimulant_overdoses", "Stimulant overdoses", _overdose("stimulant_overdoses")),
    Figure("overdoses_with_naloxone", "Overdoses needing naloxone (treated with staff naloxone)",
           _overdose("overdoses_with_naloxone")),
    Figure("overdoses_without_naloxone",
           "Overdoses treated only with oxygen, rescue breathing or stimulation",
           _overdose("overdoses_without_naloxone")),
    Figure("naloxone_doses", "Naloxone doses given by staff", _overdose("naloxone_doses")),
    Figure("overdoses_treated_by_ems", "Overdoses treated by EMS", _overdose("treated_by_ems")),
    Figure("ems_calls", "EMS calls (911), every emergency", _overdose("ems_calls")),
    Figure("overdose_911_calls", "Overdose 911 calls", _overdose("overdose_ems_calls")),
    Figure("other_medical_emergencies", "Other medical emergencies",
           _overdose("other_medical_emergencies")),
    Figure("deaths", "Deaths", _overdose("deaths")),
    Figure("take_home_kits_by_form", "Take-home naloxone kits given, by form", _kits_by_form,
           KIT_FORMS),
    Figure("take_home_kits_replacing_used", "Take-home kits replacing a used kit",
           _overdose("take_home_kits_replacing_used")),
    Figure("take_home_kits_with_training", "Take-home kits given with training",
           _overdose("take_home_kits_with_training")),
    Figure("people_trained_by_kind", "People trained in naloxone, by kind (each once)",
           _trained_by_kind, TRAINEE_KINDS),
    Figure("take_home_kits_first_or_replacement", "Take-home kits given, first or replacement",
           lambda m: m.naloxone_kits["first_or_replacement"],
           {"first": "First kit", "replacement": "Replacement"}),
    Figure("take_home_kits_replaced_by_reason", "Take-home kits replacing another, by reason",
           lambda m: m.naloxone_kits["replacements_by_reason"], REPLACEMENT_REASONS),
    Figure("take_home_kits_reported_used", "Take-home kits reported used",
           lambda m: m.naloxone_kits["reported_used"]),
    Figure("take_home_kit_use_outcomes", "Take-home kits reported used, by outcome",
           lambda m: m.naloxone_kits["use_outcomes"], USE_OUTCOMES),
    Figure("incident_reports_by_type", "Incident reports, by type", _incidents_by_type,
           INCIDENT_TYPES),
    # Heroin-assisted treatment (srs.hat.reports), at sites that run it.
    Figure("hat_patients_in_treatment", "Treatment patients in treatment at the month's end",
           lambda m: m.hat.in_treatment, shown=_runs_treatment),
    Figure("hat_new_enrolments", "Treatment patients enrolled in the month",
           lambda m: m.hat.new_enrolments, shown=_runs_treatment),
    Figure("hat_treatments_ended", "Treatments ended in the month", lambda m: m.hat.ended,
           shown=_runs_treatment),
    Figure("hat_doses_by_outcome", "Treatment doses, given or not", lambda m: m.hat.dose_totals,
           {"given": "Given", "withheld": "Withheld", "declined": "Declined",
            "missed": "Missed"}, shown=_runs_treatment),
    Figure("hat_doses_not_given_by_reason", "Treatment doses not given, by why",
           lambda m: m.hat.reasons, shown=_runs_treatment),
    Figure("hat_retention_cohort", "Treatment patients enrolled at least this long before "
           "the month's end", _retention("cohort"), RETENTION_LABELS, shown=_runs_treatment),
    Figure("hat_retained", "Of them, still in treatment at the month's end",
           _retention("retained"), RETENTION_LABELS, shown=_runs_treatment),
    Figure("hat_retention_percent", "Retention in treatment, % (empty: nobody enrolled that "
           "long)", _retention("percent"), RETENTION_LABELS, shown=_runs_treatment,
           total=_retention_percent_across),
    Figure("hat_overdoses_among_patients", "Overdoses among treatment patients",
           lambda m: m.hat.overdoses, shown=_runs_treatment),
    Figure("hat_register_closing_balance", "Controlled-drug register balance at the month's "
           "end, by line", _register_closing, shown=_runs_treatment, total=None),
    # The compassion club (srs.compassion.evaluation), at sites that run one.
    Figure("club_members_by_state", "Club members at the month's end, by state",
           lambda m: m.club.members_by_state, CLUB_STATES, shown=_runs_club),
    Figure("club_supplies_by_substance", "Club supplies, by substance",
           lambda m: {s: v["supplies"] for s, v in m.club.supplies_by_substance.items()},
           shown=_runs_club),
    Figure("club_mg_by_substance", "Club supplies, milligrams by substance", _club_mg,
           shown=_runs_club),
    Figure("club_limits_reached", "Club supplies refused at a limit, by limit",
           lambda m: m.club.limits_reached, shown=_runs_club),
    Figure("club_linkage_by_outcome", "Club treatment-linkage conversations, by outcome",
           lambda m: m.club.linkage, CLUB_LINKAGE, shown=_runs_club),
    Figure("club_surveys", "Club member surveys recorded", lambda m: m.club.surveys,
           shown=_runs_club),
    Figure("club_survey_overdoses", "Overdoses told of in club surveys",
           lambda m: m.club.survey_overdoses, shown=_runs_club),
    Figure("club_survey_street_supply", "Club surveys, by street supply",
           lambda m: m.club.street_supply, CLUB_STREET, shown=_runs_club),
    Figure("club_survey_treatment_contact", "Club surveys with treatment contact",
           lambda m: m.club.treatment_contact, shown=_runs_club),
    Figure("club_member_overdoses", "Overdoses among club members",
           lambda m: m.club.member_overdoses, shown=_runs_club),
    Figure("club_member_visits", "Visits by club members", lambda m: m.club.member_visits,
           shown=_runs_club),
    Figure("club_member_rate", "Overdoses among club members per 1,000 of their visits",
           lambda m: _club_rate(m.club.member_rate), shown=_runs_club,
           total=_club_rate_across("member")),
    Figure("club_other_rate", "Overdoses among other clients per 1,000 of their visits",
           lambda m: _club_rate(m.club.other_rate), shown=_runs_club,
           total=_club_rate_across("other")),
)


def monthly_report(site: Site, month: date) -> dict:
    """Every figure of the table for ``site`` and the local month holding ``month``."""
    data = MonthData(site, month)
    return {"site": site, "month": data.month, "start": data.start, "end": data.end,
            "figures": [(f, f.compute(data)) for f in FIGURES
                        if f.shown is None or f.shown(data)]}


def monthly_csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("site", "month", "figure", "breakdown", "value"))
    month = report["month"].strftime("%Y-%m")
    for figure, value in report["figures"]:
        if isinstance(value, dict):
            for key, count in value.items():
                writer.writerow((report["site"].slug, month, figure.name,
                                 figure.label_of(key), count))
        else:
            writer.writerow((report["site"].slug, month, figure.name, "", value))
    return out.getvalue()


# --- The monthly report of several sites -----------------------------------------------------


@dataclass
class SitesRow:
    """One figure across the sites: each showing site's value (by site id), the total (None:
    per site only), and a breakdown's keys in order (None for a single value)."""
    figure: Figure
    values: dict[int, object]
    total: object
    keys: list[str] | None


def _summed(values: list):
    """The sites' values added up (a breakdown key by key); None if any is no count."""
    if all(isinstance(v, Mapping) for v in values):
        keys = list(dict.fromkeys(k for v in values for k in v))
        sums = {k: _summed([v[k] for v in values if k in v]) for k in keys}
        return None if any(total is None for total in sums.values()) else sums
    if all(isinstance(v, Number) and not isinstance(v, bool) for v in values):
        return sum(values)
    return None


@contextmanager
def _cycle_collector_paused():
    """Python's cycle collector held off while a report makes and drops a hundred thousand
    rows, none of them in a cycle: left on, it walks the whole application's objects again
    and again over them (a third of the twenty-site report's CPU). It runs as usual after."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def sites_monthly_report(sites: list[Site], month: date) -> dict:
    """Every figure of the table for each of ``sites`` in the local month holding ``month``,
    and their total. The visit-level records are read once for all the sites that share a
    timezone (one query per kind, grouped by site); the figures other records feed are
    each site's own, as on its page. A figure a site does not report (treatment at a site
    without it) is blank there and left out of the total."""
    month = month.replace(day=1)
    bounds = {site.id: month_bounds(site, month) for site in sites}
    by_bounds: dict[tuple, list[int]] = {}
    for site in sites:
        by_bounds.setdefault(bounds[site.id], []).append(site.id)
    shared = {both: SiteReads(site_ids, *both) for both, site_ids in by_bounds.items()}
    months = [MonthData(site, month, shared[bounds[site.id]]) for site in sites]
    with _cycle_collector_paused():
        rows = _sites_rows(months)
    return {"sites": sites, "month": month, "rows": rows}


def _sites_rows(months: list[MonthData]) -> list[SitesRow]:
    rows = []
    for figure in FIGURES:
        showing = [m for m in months if figure.shown is None or figure.shown(m)]
        if not showing:
            continue
        values = {m.site.id: figure.compute(m) for m in showing}
        if figure.total is None:
            total = None
        elif figure.total == SUM:
            total = _summed(list(values.values()))
        else:
            total = figure.total(showing)
        keys = None
        if all(isinstance(v, Mapping) for v in values.values()):
            keys = list(dict.fromkeys(k for v in [*values.values(), total or {}] for k in v))
        rows.append(SitesRow(figure, values, total, keys))
    return rows


def sites_monthly_csv(report: dict) -> str:
    """The page's table: a row per figure (and breakdown), a column per site, the total."""
    out = io.StringIO()
    writer = csv.writer(out)
    sites = report["sites"]
    writer.writerow(("month", "figure", "breakdown", *(s.slug for s in sites), "all sites"))
    month = report["month"].strftime("%Y-%m")

    def cell(value):
        return _csv_safe(value) if isinstance(value, str) else "" if value is None else value

    for row in report["rows"]:
        name = row.figure.name
        if row.keys is None:
            writer.writerow((month, name, "", *(cell(row.values.get(s.id)) for s in sites),
                             cell(row.total)))
            continue
        for key in row.keys:
            writer.writerow((month, name, _csv_safe(row.figure.label_of(key)),
                             *(cell((row.values.get(s.id) or {}).get(key)) for s in sites),
                             cell((row.total or {}).get(key))))
    return out.getvalue()
