"""The weekly review packet: the review page as a PDF, and the week's reports as CSV.

``build_weekly_packets`` is the scheduled job: on Monday at 07:00 in each
site's own timezone it builds the packet of the week that just ended, once
(the unique (site, week) row makes a second run, or a second scheduler, do
nothing), and tells the site's reviewers in the app.
"""

import logging
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import exc
from sqlalchemy.orm import selectinload

from srs import live, signals
from srs.errors import NotFound
from srs.extensions import db, reading_first
from srs.incidents.models import VOCABULARY, Incident, ReviewerNotice, ReviewPacket, Stage
from srs.incidents.reports import (
    incidents_csv,
    local_zone,
    week_bounds,
    weekly_review,
)
from srs.incidents.service import reviewers_of
from srs.sites.models import Site

log = logging.getLogger(__name__)
PACKET_HOUR = 7


def open_packet(site: Site, packet_id: int, *, actor, now: datetime) -> ReviewPacket:
    """A reviewer opens a week's packet (its PDF or CSV): their notice of it is read from
    now on, and the reading is in the audit trail. Raises NotFound."""
    from srs.auth.service import record

    packet = db.session.get(ReviewPacket, packet_id)
    if packet is None or packet.site_id != site.id:
        raise NotFound("No such review packet at this site.")
    db.session.execute(db.update(ReviewerNotice).where(
        ReviewerNotice.packet_id == packet.id, ReviewerNotice.staff_id == actor.staff_id,
        ReviewerNotice.read_at.is_(None)).values(read_at=now))
    record(actor, "review_packet_read", "review_packet", packet.id, site_id=site.id, now=now)
    db.session.commit()
    return packet


def render_pdf(html: str) -> bytes:
    """WeasyPrint: HTML and CSS to PDF (no JavaScript; the charts are SVG images)."""
    from weasyprint import HTML

    return HTML(string=html).write_pdf()


def packet_html(site: Site, week_start: date, filters: dict, *, today: date,
                generated_at: datetime) -> str:
    from srs.incidents.charts import weekly_charts  # matplotlib: loaded on first use

    review = weekly_review(site, week_start, filters, today=today)
    start, end = week_bounds(site, week_start)
    # Other programmes' figures for the week (drug checking), each a section of its own.
    sections = [section for _receiver, section in signals.weekly_packet_sections.send(
        site, start=start, end=end) if section]
    # Rendered from the template alone: the job has no request (and no signed-in user).
    template = current_app.jinja_env.get_template("incidents/packet.html")
    return template.render(review=review, charts=weekly_charts(review), sections=sections,
                           generated_at=generated_at, **VOCABULARY)


def week_incidents(site: Site, week_start: date) -> list[Incident]:
    start, end = week_bounds(site, week_start)
    return list(db.session.execute(
        db.select(Incident).where(Incident.site_id == site.id, Incident.stage != Stage.DRAFT,
                                  Incident.occurred_at >= start, Incident.occurred_at < end)
        .options(selectinload(Incident.clients), selectinload(Incident.factors),
                 selectinload(Incident.actions), selectinload(Incident.booth))
        .order_by(Incident.occurred_at)).scalars())


def due_week(site: Site, now: datetime) -> date | None:
    """The week whose packet is due at ``now``: the one before the latest local Monday 07:00."""
    local = now.astimezone(local_zone(site))
    monday = local.date() - timedelta(days=local.weekday())
    if local.weekday() == 0 and local.hour < PACKET_HOUR:
        monday -= timedelta(days=7)
    return monday - timedelta(days=7)


def build_packet(site: Site, week_start: date, *, now: datetime) -> ReviewPacket | None:
    """Build and keep one site's packet for one week; None if it exists already."""
    exists = db.session.execute(db.select(ReviewPacket.id).filter_by(
        site_id=site.id, week_start=week_start)).scalar_one_or_none()
    if exists is not None:
        return None
    local_today = now.astimezone(local_zone(site)).date()
    html = packet_html(site, week_start, {}, today=local_today, generated_at=now)
    packet = ReviewPacket(site_id=site.id, week_start=week_start, created_at=now,
                          pdf=render_pdf(html),
                          csv=incidents_csv(site, week_incidents(site, week_start)))
    db.session.add(packet)
    try:
        db.session.flush()
    except exc.IntegrityError:  # another scheduler built it a moment ago
        db.session.rollback()
        return None
    for reviewer in reviewers_of(site):
        db.session.add(ReviewerNotice(packet_id=packet.id, staff_id=reviewer.id,
                                      created_at=now))
    from srs.auth.service import Actor, record

    record(Actor.system("scheduler"), "review_packet_built", "review_packet", packet.id,
           site_id=site.id, now=now, detail={"week_start": week_start.isoformat()})
    live.announce(site.id, "incidents")
    try:
        db.session.commit()
    except exc.IntegrityError:
        db.session.rollback()
        return None
    return packet


def build_weekly_packets(*, now: datetime) -> list[ReviewPacket]:
    """The scheduled job: each site's packet for the week that ended, once it is due."""
    built = []
    # Rendering a packet takes seconds: on SQLite, holding the write lock meanwhile would keep
    # every tap of every site waiting (and failing, past the busy timeout). A packet is read
    # and drawn first; the lock is taken at its INSERT, whose unique week guards a race.
    with reading_first():
        for site in db.session.execute(db.select(Site).order_by(Site.id)).scalars().all():
            week = due_week(site, now)
            if week_bounds(site, week)[1] <= site.created_at:
                continue  # the site did not exist that week: nothing to review
            packet = build_packet(site, week, now=now)
            if packet is not None:
                log.info("review packet built site=%s packet=%s", site.id, packet.id)
                built.append(packet)
    return built
