"""A published drug alert on the screens of the sites it covers: in the alarm strip of every
tablet, dashboard and wall display (its own kind, sounding only when urgent, until someone
at the site acknowledges it by name), and at every check-in until the client is told.

Callers: the alarm strip and the check-in panel ask through signals (srs/signals.py: the
alerts and booths packages import nothing of this one); the drug-alert views call
:func:`hear_alert` and :func:`tell_client`. Each write is one unit of work: check, change,
audit, commit once, announce after the commit. Audit details hold ids only.
"""

from datetime import datetime

from sqlalchemy.exc import IntegrityError

from srs import live, signals
from srs.auth.service import Actor, record
from srs.booths.models import Visit
from srs.clients.export import Section, section
from srs.clients.models import Client
from srs.drugchecks.models import DrugAlert, DrugAlertHeard, DrugAlertTold
from srs.drugchecks.service import TOPIC
from srs.errors import Conflict, NotFound
from srs.extensions import db
from srs.sites.models import Site

STRIP_TEMPLATE = "drugchecks/_strip_alert.html"
CHECKIN_TEMPLATE = "drugchecks/_checkin_alerts.html"


def in_force(site: Site, *, now: datetime) -> list[DrugAlert]:
    """The published alerts covering a site and still valid at ``now`` (an alert past its
    ``valid_until`` leaves the screens at once, before the scan marks it expired), urgent
    first, then the newest."""
    rows = db.session.execute(db.select(DrugAlert).where(
        DrugAlert.status == "published", DrugAlert.valid_until > now)
        .order_by(DrugAlert.urgent.desc(), DrugAlert.published_at.desc(), DrugAlert.id.desc()))
    return [alert for alert in rows.scalars() if alert.covers(site.id)]


def get_in_force(site: Site, alert_id: int, *, now: datetime) -> DrugAlert:
    """An alert in force at the site.

    :raises NotFound: for an alert of another site, or none.
    :raises Conflict: for one no longer (or not yet) in force.
    """
    alert = db.session.get(DrugAlert, alert_id)
    if alert is None or not alert.covers(site.id) or alert.status in ("draft", "validated"):
        raise NotFound(f"Site {site.slug} has no published drug alert with id {alert_id}.")
    if alert.status != "published" or alert.valid_until <= now:
        raise Conflict("This drug alert is no longer in force.")
    return alert


def get_published(site: Site, alert_id: int) -> DrugAlert:
    """A published (or since retracted or expired) alert covering the site, for reading.

    :raises NotFound: for a draft, an alert of another site, or none.
    """
    alert = db.session.get(DrugAlert, alert_id)
    if alert is None or not alert.covers(site.id) or alert.published_at is None:
        raise NotFound(f"Site {site.slug} has no published drug alert with id {alert_id}.")
    return alert


# --- The alarm strip --------------------------------------------------------------------------


def strip_alerts(site: Site, *, now: datetime) -> list[dict]:
    """What the strip shows of drug alerts: each alert in force, who heard it at this site
    if it is urgent, and whether it still sounds (urgent and nobody has acknowledged it)."""
    alerts = in_force(site, now=now)
    if not alerts:
        return []
    heard = {row.drug_alert_id: row for row in db.session.execute(
        db.select(DrugAlertHeard).where(DrugAlertHeard.site_id == site.id,
                                        DrugAlertHeard.drug_alert_id.in_([a.id for a in alerts]))
    ).scalars()}
    notices = [{"template": STRIP_TEMPLATE, "alert": alert, "heard": heard.get(alert.id),
                "sounding": alert.urgent and alert.id not in heard} for alert in alerts]
    notices.sort(key=lambda notice: not notice["sounding"])
    return notices


@signals.alarm_strip.connect
def _strip_notices(site: Site, *, now: datetime) -> list[dict]:
    return strip_alerts(site, now=now)


def hear_alert(alert: DrugAlert, site: Site, *, actor: Actor, now: datetime) -> DrugAlertHeard:
    """A named person acknowledges an urgent alert at their site: it stops sounding on the
    site's screens (and stays in the strip while it is in force).

    :raises Conflict: for an alert that is not urgent, or already acknowledged at the site
        (naming who did).
    """
    if not alert.urgent:
        raise Conflict("This drug alert does not sound: there is nothing to acknowledge.")
    existing = _heard(alert, site)
    if existing is not None:
        raise _already_heard(existing)
    row = DrugAlertHeard(drug_alert_id=alert.id, site_id=site.id, heard_at=now,
                         heard_by=actor.staff_id)
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:  # someone else acknowledged it a moment before
        db.session.rollback()
        raise _already_heard(_heard(alert, site)) from None
    record(actor, "drug_alert_heard", "drug_alert", alert.id, site_id=site.id, now=now)
    live.announce(site.id, TOPIC)
    db.session.commit()
    return row


def _heard(alert: DrugAlert, site: Site) -> DrugAlertHeard | None:
    return db.session.scalar(db.select(DrugAlertHeard).where(
        DrugAlertHeard.drug_alert_id == alert.id, DrugAlertHeard.site_id == site.id))


def _already_heard(row: DrugAlertHeard | None) -> Conflict:
    name = row.staff.display_name if row is not None and row.staff else "Someone"
    return Conflict(f"{name} already acknowledged this drug alert.")


# --- Check-in -----------------------------------------------------------------------------------


def untold_alerts(visit: Visit, site: Site, *, now: datetime) -> list[DrugAlert]:
    """The alerts in force at the site that the visit's client has not been told of, at
    this visit or any earlier one."""
    alerts = in_force(site, now=now)
    if not alerts:
        return []
    told = set(db.session.execute(
        db.select(DrugAlertTold.drug_alert_id).join(Visit, Visit.id == DrugAlertTold.visit_id)
        .where(Visit.client_id == visit.client_id,
               DrugAlertTold.drug_alert_id.in_([a.id for a in alerts]))).scalars())
    return [alert for alert in alerts if alert.id not in told]


def checkin_notice(visit: Visit, site: Site, *, now: datetime,
                   told: DrugAlert | None = None) -> dict | None:
    """The check-in panel's notice: the alerts to tell this client (and the one just told,
    to say so); None when there is nothing to say."""
    alerts = untold_alerts(visit, site, now=now)
    if not alerts and told is None:
        return None
    return {"template": CHECKIN_TEMPLATE, "visit": visit, "alerts": alerts, "told": told}


@signals.visit_notices.connect
def _checkin_notice(visit: Visit, *, site: Site, now: datetime) -> dict | None:
    return checkin_notice(visit, site, now=now)


def tell_client(alert: DrugAlert, visit: Visit, site: Site, *, actor: Actor,
                now: datetime) -> DrugAlertTold | None:
    """Record that a member of staff told the visit's client of an alert; nothing when the
    client was told already (at this visit or another). Audited on the visit.

    :raises NotFound: for a visit of another site.
    """
    if visit.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no visit with id {visit.id}.")
    if alert not in untold_alerts(visit, site, now=now):
        return None
    row = DrugAlertTold(drug_alert_id=alert.id, visit_id=visit.id, site_id=site.id,
                        told_at=now, told_by=actor.staff_id)
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:  # the same tap twice at once: told either way
        db.session.rollback()
        return None
    record(actor, "drug_alert_told", "visit", visit.id, site_id=site.id,
           detail={"drug_alert_id": alert.id}, now=now)
    db.session.commit()
    return row


@signals.client_record.connect
def _told_records(client: Client) -> list[Section]:
    """A client's access request: the drug alerts they were told of, when and by whom."""
    rows = db.session.execute(
        db.select(DrugAlertTold).join(Visit, Visit.id == DrugAlertTold.visit_id)
        .where(Visit.client_id == client.id)
        .order_by(DrugAlertTold.told_at, DrugAlertTold.id)).scalars()
    return [section("drug_alert_told", "Drug alerts they were told of", rows, (
        "id", "visit_id", "drug_alert_id", "told_at", "told_by"))]
