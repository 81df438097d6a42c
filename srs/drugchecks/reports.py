"""The early-warning programme's figures for reviewers: checks by method and by finding,
alerts issued, and how long after a cluster's first overdose its advisory was published.

Read on the drug-checking figures page (by month) and in the weekly review packet (the
incident package asks through ``srs.signals.weekly_packet_sections``; this module answers).
"""

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.orm import selectinload

from srs import signals
from srs.drugchecks.models import ALERT_KINDS, METHODS, STRIPS, DrugAlert, DrugCheck
from srs.extensions import db
from srs.sites.models import Site

# A positive strip counts as a finding of the substance it tests for.
STRIP_FINDS = {"fentanyl": "Fentanyl", "benzodiazepine": "Benzodiazepine",
               "nitazene": "Nitazene", "xylazine": "Xylazine"}
MONTHS_SHOWN = 6


@dataclass
class Period:
    """One period's figures (a month on the page, a week in the packet)."""

    start: datetime
    end: datetime
    label: str
    checks: int = 0
    by_method: Counter = field(default_factory=Counter)
    by_finding: Counter = field(default_factory=Counter)
    alerts: Counter = field(default_factory=Counter)
    # (alert, hours from the cluster's first overdose to publication)
    advisories: list = field(default_factory=list)

    @property
    def median_hours(self) -> float | None:
        hours = [h for _alert, h in self.advisories]
        return round(statistics.median(hours), 1) if hours else None


def findings_of(check: DrugCheck) -> set[str]:
    """What a check found: each component's substance and each positive strip's."""
    found = {c.substance for c in check.components}
    found |= {STRIP_FINDS[name] for name in STRIPS if check.strip_result(name) == "positive"}
    return found


def period_figures(site: Site, start: datetime, end: datetime, label: str) -> Period:
    """The site's figures for checks recorded and alerts published in [start, end)."""
    period = Period(start=start, end=end, label=label)
    checks = db.session.execute(db.select(DrugCheck).where(
        DrugCheck.site_id == site.id, DrugCheck.checked_at >= start, DrugCheck.checked_at < end)
        .options(selectinload(DrugCheck.components))).scalars()
    for check in checks:
        period.checks += 1
        period.by_method.update(set(check.methods or []))
        period.by_finding.update(findings_of(check))
    alerts = db.session.execute(db.select(DrugAlert).where(
        DrugAlert.published_at >= start, DrugAlert.published_at < end)
        .order_by(DrugAlert.published_at)).scalars()
    for alert in alerts:
        if not alert.covers(site.id):
            continue
        period.alerts[alert.kind] += 1
        if alert.first_overdose_at is not None:
            hours = (alert.published_at - alert.first_overdose_at).total_seconds() / 3600
            period.advisories.append((alert, round(hours, 1)))
    return period


def _month_start(day: date, back: int) -> date:
    first = day.replace(day=1)
    for _ in range(back):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def monthly_figures(site: Site, month: date, *, months: int = MONTHS_SHOWN) -> dict:
    """``months`` months of figures ending with ``month`` (oldest first), with the methods
    and findings that occur in any of them as the tables' columns."""
    periods = []
    for back in range(months - 1, -1, -1):
        first = _month_start(month, back)
        following = (first + timedelta(days=32)).replace(day=1)
        periods.append(period_figures(site, site.midnight(first), site.midnight(following),
                                      f"{first:%b %Y}"))
    methods = [m for m in METHODS if any(p.by_method[m] for p in periods)]
    findings = sorted({f for p in periods for f in p.by_finding})
    return {"site": site, "month": month, "periods": periods, "methods": methods,
            "method_labels": METHODS, "findings": findings, "kinds": ALERT_KINDS}


@signals.weekly_packet_sections.connect
def _packet_section(site: Site, *, start: datetime, end: datetime, **_kwargs) -> dict | None:
    """The packet's "Drug checking and alerts" section for the week [start, end)."""
    week = period_figures(site, start, end, "This week")
    if not week.checks and not week.alerts:
        return None
    tables = [
        {"caption": "Checks by method", "head": ["Method", "Checks"],
         "rows": [[METHODS[m], n] for m, n in sorted(week.by_method.items())]},
        {"caption": "Checks by finding", "head": ["Found", "Checks"],
         "rows": [[f, n] for f, n in sorted(week.by_finding.items())]},
        {"caption": "Alerts published", "head": ["Kind", "Published"],
         "rows": [[ALERT_KINDS[k], n] for k, n in sorted(week.alerts.items())]},
    ]
    if week.advisories:
        tables.append({"caption": "From a cluster's first overdose to its advisory",
                       "head": ["Advisory", "Hours"],
                       "rows": [[a.title, h] for a, h in week.advisories]})
    return {"title": "Drug checking and alerts",
            "summary": f"{week.checks} check{'s' if week.checks != 1 else ''}, "
                       f"{sum(week.alerts.values())} alert(s) published.",
            "tables": [t for t in tables if t["rows"]]}
