"""What the rules look at: a client's facts at one visit, from the care profile and the records.

Callers: ``srs.referrals.service``. Reads only; the caller audits the read.
"""

from datetime import date, datetime, timedelta

from sqlalchemy import func, or_

from srs.booths.models import Consumption, Visit
from srs.extensions import db
from srs.overdose.models import OverdoseResponse, ResponseKind
from srs.referrals.models import CareProfile


def local_today(site, now: datetime) -> date:
    return site.local_date(now)


def _days_since(day: date | None, today: date) -> int | None:
    return None if day is None else max(0, (today - day).days)


def gather(visit: Visit, site, *, now: datetime, windows: set[tuple[str, int]]) -> dict:
    """The facts of ``visit``'s client at ``now``; windowed facts once per (fact, days)."""
    client = visit.client
    today = local_today(site, now)
    profile = db.session.get(CareProfile, client.id)
    facts: dict = {
        "age": today.year - client.birth_year if client.birth_year else None,
        "first_visit": _is_first_visit(visit),
        "on_oat": bool(profile and profile.oat_medication != "none"),
        "oat_medication": profile.oat_medication if profile else "none",
        "failed_oral_oat": profile.failed_oral_oat if profile else 0,
        "housing": profile.housing if profile else "unknown",
        "last_hiv_test": profile.last_hiv_test if profile else None,
        "last_hcv_test": profile.last_hcv_test if profile else None,
        "wound_noted_on": profile.wound_noted_on if profile else None,
        "treatment_interest_on": profile.treatment_interest_on if profile else None,
    }
    facts["days_since_hiv_test"] = _days_since(facts["last_hiv_test"], today)
    facts["days_since_hcv_test"] = _days_since(facts["last_hcv_test"], today)
    facts["days_since_wound_noted"] = _days_since(facts["wound_noted_on"], today)
    facts["days_since_treatment_interest"] = _days_since(facts["treatment_interest_on"], today)
    for fact, days in windows:
        since = now - timedelta(days=days)
        facts[f"{fact}@{days}"] = WINDOWED[fact](visit, site, since, now)
    facts.update(_overdose_dates(visit, site, now))
    return facts


def _is_first_visit(visit: Visit) -> bool:
    earlier = db.session.execute(db.select(Visit.id).where(
        Visit.client_id == visit.client_id, Visit.site_id == visit.site_id,
        Visit.arrived_at < visit.arrived_at).limit(1)).first()
    return earlier is None


def _visits(visit: Visit, site, since: datetime, now: datetime) -> int:
    return db.session.scalar(db.select(func.count(Visit.id)).where(
        Visit.client_id == visit.client_id, Visit.site_id == site.id,
        Visit.arrived_at >= since, Visit.arrived_at <= now))


def _injecting_share(visit: Visit, site, since: datetime, now: datetime) -> float:
    routes = list(db.session.execute(
        db.select(Consumption.route).join(Visit, Consumption.visit_id == Visit.id).where(
            Visit.client_id == visit.client_id, Visit.site_id == site.id,
            Consumption.recorded_at >= since, Consumption.recorded_at <= now)).scalars())
    if not routes:
        return 0.0
    return round(sum(1 for r in routes if r == "injects") / len(routes), 3)


def _overdose_query(visit: Visit, site, now: datetime):
    """This client's overdose responses at the site up to ``now``: those naming the client,
    and those attached to one of the client's visits."""
    return db.select(OverdoseResponse).outerjoin(
        Visit, OverdoseResponse.visit_id == Visit.id).where(
        OverdoseResponse.site_id == site.id, OverdoseResponse.started_at <= now,
        or_(OverdoseResponse.client_id == visit.client_id, Visit.client_id == visit.client_id))


def _overdoses(visit: Visit, site, since: datetime, now: datetime, *, kind=None) -> int:
    query = _overdose_query(visit, site, now).where(OverdoseResponse.started_at >= since)
    if kind is not None:
        query = query.where(OverdoseResponse.kind == kind)
    return db.session.scalar(db.select(func.count()).select_from(query.subquery()))


def _opioid_overdoses(visit: Visit, site, since: datetime, now: datetime) -> int:
    return _overdoses(visit, site, since, now, kind=ResponseKind.OPIOID)


def _overdose_dates(visit: Visit, site, now: datetime) -> dict:
    last = db.session.execute(_overdose_query(visit, site, now).order_by(
        OverdoseResponse.started_at.desc()).limit(1)).scalars().first()
    when = last.started_at.astimezone(site.zone).date() if last else None
    return {"last_overdose": when}


WINDOWED = {"overdoses": _overdoses, "opioid_overdoses": _opioid_overdoses, "visits": _visits,
            "injecting_share": _injecting_share}
