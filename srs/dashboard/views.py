"""The home page and the supervisor's dashboard: every site's figures, board, queue and
after-care, read-only and live."""

from dataclasses import dataclass

from flask import (
    Blueprint,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from srs.alerts.service import open_alerts
from srs.auth.access import ANY_STAFF, any_site_role_required, staff_required
from srs.auth.models import DISPLAY, Role
from srs.booths.views import live_board
from srs.common import utcnow
from srs.jobs import scheduler_status
from srs.live import channel_status
from srs.sites import service
from srs.sites.access import site_role_required

bp = Blueprint("dashboard", __name__)

SUPERVISING = (Role.SUPERVISOR, Role.ADMIN)


# --- The home page: a link to every page a person may use ------------------------------------
#
# ONE list: a new page is one line here. A line shows to whoever the page's own declaration
# (``srs_roles``) lets in at that site, narrowed by ``roles`` where a page open to more people
# belongs in one group only; a line whose endpoint does not exist (yet) is skipped.
# tests/test_dashboard_home.py fails for a page a role may open that no line links.


@dataclass(frozen=True)
class Link:
    label: str
    endpoint: str
    testid: str
    group: str
    roles: tuple[str, ...] | None = None  # None: whoever the page's declaration lets in
    anchor: bool = False  # a page of every site (no slug): jump to this site's part of it
    org_admin: bool = False  # for the organisation admin flag, not a role at a site


ACCOUNT, ORGANISATION = "account", "organisation"
GROUPS = {"work": "Floor and day", "review": "Review and reports", "admin": "Administration",
          ORGANISATION: "Organisation", ACCOUNT: "Your account"}
# What the admin group is called for someone who may open some of its pages but is no admin.
NOT_ADMIN_GROUP = "Stock and records"

LINKS = (
    Link("Open the floor", "booths.floor", "floor-link", "work"),
    Link("Supervisor dashboard", "dashboard.supervise", "dashboard-link", "work", anchor=True),
    Link("Incident reports", "incidents.index", "incidents-link", "work"),
    Link("Referral follow-ups", "referrals.follow_ups", "follow-ups-link", "work"),
    Link("Drug checks", "drugchecks.checks_page", "drug-checks-link", "work"),
    Link("Drug alerts", "drugchecks.alerts_page", "drug-alerts-link", "work"),
    Link("Dosing today", "hat_dosing.dosing_page", "hat-dosing-link", "work"),
    Link("Treatment patients", "hat.patients", "hat-link", "work"),
    Link("Enrol a treatment patient", "hat.enrol_form", "hat-enrol-link", "work"),
    Link("Compassion club members", "club.members_page", "club-link", "work"),
    Link("Enrol a club member", "club.enrol_form", "club-enrol-link", "work"),
    Link("Club consent text", "club.consent_page", "club-consent-link", "admin"),
    Link("Club surveys due", "club_eval.surveys_due", "club-surveys-link", "work"),
    Link("Weekly review", "incidents.week", "week-link", "review"),
    Link("Monthly report", "incidents.monthly", "monthly-link", "review"),
    Link("Monthly report, every site", "incidents.sites_monthly", "sites-monthly-link", "review",
         anchor=True),
    Link("Drug checking figures", "earlywarning.figures", "drug-figures-link", "review"),
    Link("Treatment report", "hatreports.report", "hat-report-link", "review"),
    Link("Compassion club report", "club_eval.report", "club-report-link", "review"),
    Link("Referral uptake", "referrals.uptake", "uptake-link", "review"),
    Link("Booths", "booths.booth_admin", "booths-link", "admin"),
    Link("Staff", "sites.staff", "staff-link", "admin"),
    Link("Settings", "sites.settings", "settings-link", "admin"),
    Link("Wall displays", "sites.displays", "displays-link", "admin"),
    Link("Staff API tokens", "auth.tokens", "site-tokens-link", "admin", roles=(Role.ADMIN,),
         anchor=True),
    Link("Referral rules", "referrals.rules_page", "rules-link", "admin"),
    Link("Referral services", "referrals.services_page", "services-link", "admin"),
    Link("Naloxone stock", "naloxone.stock_page", "naloxone-link", "admin"),
    Link("Controlled-drug register", "controlled.register_page", "controlled-link", "work"),
    Link("Club batches", "club_supply.batches_page", "club-batches-link", "work"),
    Link("Naloxone kits", "naloxone.kit_register", "naloxone-kits-link", "admin"),
    Link("Record naloxone training", "training.form_page", "training-link", "work"),
    Link("Naloxone training sessions", "training.sessions", "training-sessions-link", "work"),
    Link("Naloxone refreshers due", "training.refreshers", "refreshers-link", "admin"),
    Link("Naloxone refreshers due, every site", "training.org_refreshers",
         "org-refreshers-link", ORGANISATION, org_admin=True),
    Link("Incident factors", "incidents.factors", "factors-link", "admin"),
    Link("Clients", "clients.index", "clients-link", "admin"),
    Link("Audit trail", "audit.index", "audit-link", "admin"),
    Link("Retention", "retention.page", "retention-link", "admin"),
    Link("Sites", "org.sites", "org-sites-link", ORGANISATION, org_admin=True),
    Link("Organisation admins", "org.org_admins", "org-admins-link", ORGANISATION,
         org_admin=True),
    Link("API tokens", "auth.tokens", "tokens-link", ACCOUNT),
)


def _may_open(link: Link, staff, site=None) -> bool:
    """Whether ``staff`` may open ``link``'s page (at ``site``), as its declaration says."""
    if link.org_admin:
        return bool(getattr(staff, "org_admin", False))
    declared = getattr(current_app.view_functions[link.endpoint], "srs_roles", None)
    if declared == ANY_STAFF:
        allowed = set(Role)
    elif isinstance(declared, frozenset):
        allowed = declared
    else:
        return False
    if link.roles is not None:
        allowed = set(allowed) & set(link.roles)
    if site is None:
        return any(role.role in allowed for role in staff.roles)
    return staff.has_role(site.id, *allowed)


def _href(link: Link, site=None) -> str:
    takes_slug = any("slug" in rule.arguments
                     for rule in current_app.url_map.iter_rules(link.endpoint))
    if site is not None and takes_slug:
        return url_for(link.endpoint, slug=site.slug)
    return url_for(link.endpoint, _anchor=f"site-{site.slug}" if site and link.anchor else None)


def links_for(staff, site=None) -> list[tuple[str, list[tuple[Link, str]]]]:
    """The home page's groups of links of ``staff`` at ``site`` (without a site: those of
    their account and the organisation), each group as (title, [(link, href)])."""
    groups: dict[str, list] = {}
    for link in LINKS:
        if link.endpoint not in current_app.view_functions:
            continue  # a page still to come
        if (link.group in (ACCOUNT, ORGANISATION)) != (site is None):
            continue
        if _may_open(link, staff, site):
            groups.setdefault(link.group, []).append((link, _href(link, site)))
    admin = site is not None and staff.has_role(site.id, Role.ADMIN)
    return [(NOT_ADMIN_GROUP if key == "admin" and not admin else GROUPS[key], items)
            for key, items in groups.items()]


@bp.get("/start")
@staff_required
def start():
    """Where signing in (or unlocking) lands: a nurse of one site on its floor, everyone
    else on their home page."""
    sites = service.sites_for(current_user)
    floor_sites = [s for s in sites if current_user.has_role(s.id, Role.NURSE)]
    only_nurse = all(r.role == Role.NURSE for r in current_user.roles)
    if len(floor_sites) == 1 and only_nurse:
        return redirect(url_for("booths.floor", slug=floor_sites[0].slug))
    return redirect(url_for("dashboard.home"))


@bp.get("/")
@staff_required
def home():
    """Per site, a link to every page this person may use there (the header's SRS mark
    leads here from every page, the floor's nurse included)."""
    sites = service.sites_for(current_user)
    return render_template("dashboard/home.html",
                           sites=[(site, links_for(current_user, site)) for site in sites],
                           general=links_for(current_user))


@bp.get("/supervise")
@any_site_role_required(*SUPERVISING, DISPLAY)
def supervise():
    """Each site the person supervises or administers, one section each, on one page; on a
    wall display, its site's."""
    now = utcnow()
    sites = [s for s in service.sites_for(current_user)
             if current_user.has_role(s.id, *SUPERVISING, DISPLAY)]
    alerts_by_site = {site.id: open_alerts(site) for site in sites}
    return render_template("dashboard/supervise.html",
                           boards=[live_board(site) for site in sites],
                           alerts_by_site=alerts_by_site,
                           unowned_by_site={site_id: sum(a.acknowledged_at is None for a in alerts)
                                            for site_id, alerts in alerts_by_site.items()},
                           floor=False, **_status(now))


# How often a dashboard asks whether the scheduler runs and the live channel works.
STATUS_POLL_SECONDS = 10


def _status(now) -> dict:
    return {"scheduler": scheduler_status(now=now), "channel": channel_status(),
            "poll_seconds": STATUS_POLL_SECONDS}


@bp.get("/supervise/status")
@any_site_role_required(*SUPERVISING, DISPLAY)
def status():
    """The dashboard's warnings (no scheduler, a degraded live channel), asked in the
    background. While the channel is degraded, and once when it is back, the answer tells
    the page to re-read everything it shows: what other servers changed never came live."""
    context = _status(utcnow())
    response = make_response(render_template("dashboard/_status.html", **context))
    if "degraded" in (context["channel"], request.args.get("was")):
        response.headers["HX-Trigger"] = "srs:resync"
    return response


@bp.get("/sites/<slug>/today")
@site_role_required(*SUPERVISING, DISPLAY)
def today(site):
    """Today's figures of one site: the dashboard re-fetches it when the site changes."""
    return render_template("dashboard/_today.html", board=live_board(site, parts=("today",)))
