"""Referral suggestions and what became of them; the directory and the rules behind them.

Callers: referrals views, the API, the CLI's demo seeding, the scheduler's daily follow-up job
and the monthly report (``uptake``). Each function takes ``now`` and an ``Actor`` where it
writes, is one unit of work (check, change, commit, announce) and raises a DomainError.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import exc
from sqlalchemy.orm import selectinload

from srs import live
from srs.auth.service import Actor, record
from srs.booths.models import Visit
from srs.clients.models import Client
from srs.errors import Conflict, Invalid, NotFound
from srs.extensions import db
from srs.referrals import facts as facts_module
from srs.referrals.models import (
    FOLLOW_UP_OUTCOMES,
    SERVICE_TYPES,
    CareProfile,
    OfferStatus,
    Referral,
    ReferralOffer,
    ReferralRule,
    Service,
)
from srs.referrals.rules import RuleSchema, holds, reason_text, windows
from srs.sites.models import Site

TOPIC = "referrals"
MAX_SUGGESTIONS = 3
DEFAULT_FOLLOW_UP_DAYS = 7

# The defaults every site starts from. Thresholds nobody publishes are choices, not facts:
# each site's admin can change them, and every suggestion says which facts made it.
DEFAULT_RULES = (
    {"key": "overdose-oat", "name": "Recent overdose: opioid agonist treatment",
     "condition": {"all": [{"fact": "opioid_overdoses", "days": 30, "op": ">=", "value": 1},
                           {"fact": "on_oat", "op": "==", "value": False}]},
     "service_type": "oat",
     "reason_template": "Overdose on {last_overdose}, not on OAT: OAT cuts the risk of "
                        "another",
     "priority": 90, "reoffer_days": 14},
    {"key": "overdose-naloxone", "name": "Recent overdose: naloxone training and a kit",
     "condition": {"fact": "overdoses", "days": 30, "op": ">=", "value": 1},
     "service_type": "naloxone_training",
     "reason_template": "Overdose on {last_overdose}: naloxone training and a take-home kit",
     "priority": 80, "reoffer_days": 30},
    # Canada's iOAT guideline: severe opioid use disorder not helped by oral OAT, with ongoing
    # injection. Swiss HAT admission adds age 18+ and two or more failed treatments.
    {"key": "ioat", "name": "Oral OAT did not work, still injecting: injectable OAT / HAT",
     "condition": {"all": [{"fact": "failed_oral_oat", "op": ">=", "value": 2},
                           {"fact": "injecting_share", "days": 90, "op": ">=", "value": 0.5},
                           {"fact": "age", "op": ">=", "value": 18}]},
     "service_type": "ioat",
     "reason_template": "{failed_oral_oat} oral OAT attempts did not work and "
                        "{injecting_share} of uses in 90 days were injected",
     "priority": 85, "reoffer_days": 30},
    {"key": "hcv-testing", "name": "No HCV test in 12 months: testing",
     "condition": {"fact": "days_since_hcv_test", "op": ">=", "value": 365},
     "service_type": "testing",
     "reason_template": "No HCV test in the last 12 months (last: {last_hcv_test})",
     "priority": 50, "reoffer_days": 30},
    {"key": "wound-care", "name": "Wound noted: wound care",
     "condition": {"fact": "days_since_wound_noted", "op": "<=", "value": 14},
     "service_type": "wound_care",
     "reason_template": "Wound noted on {wound_noted_on}",
     "priority": 70, "reoffer_days": 3},
    {"key": "housing", "name": "No fixed address: housing",
     "condition": {"fact": "housing", "op": "==", "value": "no_fixed_address"},
     "service_type": "housing",
     "reason_template": "No fixed address",
     "priority": 40, "reoffer_days": 30},
    {"key": "treatment-interest", "name": "Asked about detox or treatment: withdrawal "
                                          "management",
     "condition": {"fact": "days_since_treatment_interest", "op": "<=", "value": 30},
     "service_type": "withdrawal",
     "reason_template": "Asked about detox or treatment on {treatment_interest_on}",
     "priority": 95, "reoffer_days": 7},
)

DEMO_SERVICES = (
    {"name": "On-site wound care", "service_type": "wound_care", "on_site": True,
     "hours": "Every day 10:00-18:00"},
    {"name": "On-site testing (HIV, HCV, STI)", "service_type": "testing", "on_site": True,
     "hours": "Tue and Thu 12:00-16:00"},
    {"name": "Naloxone training at the front desk", "service_type": "naloxone_training",
     "on_site": True, "hours": "Any time the site is open"},
    {"name": "Rapid access OAT clinic", "service_type": "oat", "on_site": False,
     "contact": "Walk in; ask for the intake nurse", "hours": "Mon-Fri 09:00-15:00"},
    {"name": "Injectable OAT programme", "service_type": "ioat", "on_site": False,
     "contact": "Referral form by fax or phone", "hours": "Mon-Fri 08:00-16:00"},
    {"name": "Withdrawal management centre", "service_type": "withdrawal", "on_site": False,
     "contact": "Call for a bed check", "hours": "24 hours"},
    {"name": "Housing outreach", "service_type": "housing", "on_site": False,
     "contact": "Outreach worker visits Wednesdays", "hours": "Wed 13:00-17:00"},
)


def _announce(site_id: int) -> None:
    live.announce(site_id, TOPIC)


def _as_utc(site: Site, day: date) -> datetime:
    return site.midnight(day)


# --- The service directory ----------------------------------------------------------------------


def services(site: Site, *, service_type: str | None = None,
             active_only: bool = False) -> list[Service]:
    query = db.select(Service).filter_by(site_id=site.id)
    if service_type:
        query = query.filter_by(service_type=service_type)
    if active_only:
        query = query.filter_by(active=True)
    return list(db.session.execute(
        query.order_by(Service.service_type, Service.name)).scalars())


def get_service(site: Site, service_id: int) -> Service:
    service = db.session.get(Service, service_id)
    if service is None or service.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no service with id {service_id}.")
    return service


def save_service(site: Site, data: dict, *, actor: Actor, now: datetime,
                 service: Service | None = None) -> Service:
    """Add a directory entry, or change ``service``; ``data`` comes from ServiceSchema."""
    created = service is None
    if created:
        service = Service(site_id=site.id, created_at=now)
        db.session.add(service)
    else:
        service.updated_at = now
    for name, value in data.items():
        setattr(service, name, value)
    db.session.flush()
    record(actor, "referral_service_created" if created else "referral_service_changed",
           "referral_service", service.id, site_id=site.id, now=now)
    _announce(site.id)
    db.session.commit()
    return service


# --- Rules ----------------------------------------------------------------------------------


def current_rules(site: Site, *, active_only: bool = False) -> list[ReferralRule]:
    query = db.select(ReferralRule).where(ReferralRule.site_id == site.id,
                                          ReferralRule.superseded_at.is_(None))
    if active_only:
        query = query.where(ReferralRule.active.is_(True))
    return list(db.session.execute(
        query.order_by(ReferralRule.priority.desc(), ReferralRule.key)).scalars())


def get_rule(site: Site, rule_id: int) -> ReferralRule:
    rule = db.session.get(ReferralRule, rule_id)
    if rule is None or rule.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no referral rule with id {rule_id}.")
    return rule


def rule_history(rule: ReferralRule) -> list[ReferralRule]:
    return list(db.session.execute(db.select(ReferralRule).filter_by(
        site_id=rule.site_id, key=rule.key).order_by(ReferralRule.version.desc())).scalars())


def _slug(name: str) -> str:
    out = "".join(ch if ch.isalnum() else "-" for ch in name.lower())
    return "-".join(part for part in out.split("-") if part)[:50] or "rule"


def create_rule(site: Site, data: dict, *, actor: Actor, now: datetime,
                key: str | None = None) -> ReferralRule:
    """Add a rule (version 1); ``data`` is checked by RuleSchema (raises Invalid)."""
    data = _checked_rule(data)
    key = key or _slug(data["name"])
    taken = {k for (k,) in db.session.execute(
        db.select(ReferralRule.key).filter_by(site_id=site.id).distinct())}
    base, n = key, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    rule = ReferralRule(site_id=site.id, key=key, version=1, created_at=now,
                        created_by=actor.staff_id, **data)
    db.session.add(rule)
    db.session.flush()
    record(actor, "referral_rule_created", "referral_rule", rule.id, site_id=site.id, now=now,
           detail={"key": key, "version": 1})
    _announce(site.id)
    db.session.commit()
    return rule


def update_rule(rule: ReferralRule, data: dict, *, actor: Actor, now: datetime) -> ReferralRule:
    """Save a change as a new version; the old one stays, for the offers it made.

    Raises Conflict when ``rule`` is not the current version (someone saved first).
    """
    data = _checked_rule(data)
    if rule.superseded_at is not None:
        raise Conflict(f"Version {rule.version} of this rule was replaced: open the current "
                       f"version and change that.", current_version=_current_version(rule))
    rule.superseded_at = now
    db.session.flush()
    new = ReferralRule(site_id=rule.site_id, key=rule.key, version=rule.version + 1,
                       created_at=now, created_by=actor.staff_id, **data)
    db.session.add(new)
    try:
        db.session.flush()
    except exc.IntegrityError:
        db.session.rollback()
        raise Conflict("Someone saved this rule a moment ago: open it again.") from None
    record(actor, "referral_rule_changed", "referral_rule", new.id, site_id=rule.site_id,
           now=now, detail={"key": rule.key, "version": new.version, "replaces": rule.id})
    _announce(rule.site_id)
    db.session.commit()
    return new


def _current_version(rule: ReferralRule) -> int | None:
    return db.session.scalar(db.select(ReferralRule.version).filter_by(
        site_id=rule.site_id, key=rule.key, superseded_at=None))


def _checked_rule(data: dict) -> dict:
    from marshmallow import ValidationError

    try:
        return RuleSchema().load(data)
    except ValidationError as err:
        raise Invalid("The rule is not valid.", err.messages) from None


def seed_default_rules(site: Site, *, actor: Actor, now: datetime) -> list[ReferralRule]:
    """Give ``site`` the default rules it does not have yet (by key); return those added."""
    have = {k for (k,) in db.session.execute(
        db.select(ReferralRule.key).filter_by(site_id=site.id).distinct())}
    added = []
    for rule in DEFAULT_RULES:
        if rule["key"] in have:
            continue
        data = {k: v for k, v in rule.items() if k != "key"}
        added.append(create_rule(site, data, actor=actor, now=now, key=rule["key"]))
    return added


def seed_demo_directory(site: Site, *, actor: Actor, now: datetime) -> None:
    """The demo site's rules and a small directory to refer to."""
    seed_default_rules(site, actor=actor, now=now)
    for entry in DEMO_SERVICES:
        save_service(site, {"contact": None, "hours": None, "notes": None, "active": True,
                            **entry}, actor=actor, now=now)


# --- Care profile ---------------------------------------------------------------------------


def care_profile(client: Client, *, site: Site, actor: Actor, now: datetime) -> CareProfile:
    """The client's care profile (empty if none yet); the read is audited."""
    profile = db.session.get(CareProfile, client.id) or CareProfile(
        client_id=client.id, oat_medication="none", failed_oral_oat=0, housing="unknown")
    record(actor, "care_profile_viewed", "client", client.id, site_id=site.id, now=now)
    db.session.commit()
    return profile


def save_care_profile(client: Client, data: dict, *, site: Site, actor: Actor,
                      now: datetime) -> CareProfile:
    """Store what the client told staff (CareProfileSchema's fields); announce."""
    profile = db.session.get(CareProfile, client.id)
    if profile is None:
        profile = CareProfile(client_id=client.id)
        db.session.add(profile)
    for name, value in data.items():
        setattr(profile, name, value)
    profile.updated_at = now
    profile.updated_by = actor.staff_id
    record(actor, "care_profile_changed", "client", client.id, site_id=site.id, now=now,
           detail={"fields": sorted(data)})
    _announce(site.id)
    db.session.commit()
    return profile


# --- Suggestions during a visit ---------------------------------------------------------------


@dataclass
class Suggestion:
    """One thing to offer, why, and what has happened to it in this visit so far."""

    service_type: str
    reason: str
    priority: int
    rule: ReferralRule | None
    offer: ReferralOffer | None = None

    @property
    def label(self) -> str:
        return SERVICE_TYPES[self.service_type]

    @property
    def status(self) -> str | None:
        return self.offer.status if self.offer else None


def _offers_of_visit(visit: Visit) -> dict[str, ReferralOffer]:
    offers = db.session.execute(db.select(ReferralOffer).filter_by(visit_id=visit.id)
                                .options(selectinload(ReferralOffer.referral))).scalars()
    return {offer.service_type: offer for offer in offers}


def _resting(visit: Visit, rule: ReferralRule, now: datetime) -> bool:
    """Whether an earlier answer keeps this suggestion away for now.

    Declined: back only after the rule's re-offer interval. Accepted: not while the
    referral awaits its outcome, nor within the interval. "Not now", or an offer left
    unanswered, asks again next visit.
    """
    last = db.session.execute(
        db.select(ReferralOffer).where(
            ReferralOffer.client_id == visit.client_id,
            ReferralOffer.service_type == rule.service_type,
            ReferralOffer.visit_id != visit.id,
            ReferralOffer.status.in_([OfferStatus.DECLINED, OfferStatus.ACCEPTED]))
        .order_by(ReferralOffer.decided_at.desc()).limit(1)).scalar_one_or_none()
    if last is None:
        return False
    if last.status == OfferStatus.ACCEPTED and last.referral is not None \
            and last.referral.outcome is None:
        return True
    return now < last.decided_at + timedelta(days=rule.reoffer_days)


def suggestions(visit: Visit, *, actor: Actor, now: datetime,
                limit: int = MAX_SUGGESTIONS) -> tuple[list[Suggestion], list[ReferralOffer]]:
    """What to offer ``visit``'s client now, highest priority first, at most ``limit``;
    and the offers already answered in this visit. The read is audited."""
    site = db.session.get(Site, visit.site_id)
    rules = current_rules(site, active_only=True)
    wanted = set().union(*(windows(r.condition) for r in rules)) if rules else set()
    facts = facts_module.gather(visit, site, now=now, windows=wanted)
    offers = _offers_of_visit(visit)
    found: dict[str, Suggestion] = {}
    for rule in rules:  # highest priority first
        if rule.service_type in found or not holds(rule.condition, facts):
            continue
        offer = offers.get(rule.service_type)
        if offer is not None and offer.status != OfferStatus.OFFERED:
            continue  # answered in this visit: listed as done
        if offer is None and _resting(visit, rule, now):
            continue
        found[rule.service_type] = Suggestion(
            rule.service_type, reason_text(rule.reason_template, rule.condition, facts),
            rule.priority, rule, offer)
    # Offered in this visit but no longer suggested (a rule changed): still awaits its answer.
    for service_type, offer in offers.items():
        if offer.status == OfferStatus.OFFERED and service_type not in found:
            found[service_type] = Suggestion(service_type, offer.reason or "", -1, offer.rule,
                                             offer)
    ranked = sorted(found.values(), key=lambda s: (s.offer is None, -s.priority))[:limit]
    answered = [o for o in offers.values() if o.status != OfferStatus.OFFERED]
    record(actor, "referral_suggestions_viewed", "visit", visit.id, site_id=site.id, now=now,
           detail={"client": visit.client_id, "shown": [s.service_type for s in ranked]})
    db.session.commit()
    return ranked, answered


def _reason_now(visit: Visit, rule: ReferralRule, now: datetime) -> str | None:
    site = db.session.get(Site, visit.site_id)
    found = facts_module.gather(visit, site, now=now, windows=windows(rule.condition))
    if not holds(rule.condition, found):
        return None
    return reason_text(rule.reason_template, rule.condition, found)


def record_offer(visit: Visit, data: dict, *, actor: Actor, now: datetime) -> ReferralOffer:
    """Record that a suggestion was offered, accepted, declined or put off ("not now").

    ``data`` (OfferSchema): ``service_type``, ``status``, optional ``rule_id``; when
    accepted also ``service_id`` (an active service of that type at the site),
    ``consent`` (must be true) and ``follow_up_days``. An offer goes from offered to
    one answer, once; a second answer raises Conflict with the current status.
    """
    site = db.session.get(Site, visit.site_id)
    service_type, status = data["service_type"], data["status"]
    rule = None
    if data.get("rule_id") is not None:
        rule = get_rule(site, data["rule_id"])
        if rule.service_type != service_type:
            raise Invalid("That rule suggests something else.", {"rule_id": [
                f"Rule {rule.key} suggests {rule.service_type}, not {service_type}."]})
    offer = db.session.execute(db.select(ReferralOffer).filter_by(
        visit_id=visit.id, service_type=service_type)).scalar_one_or_none()
    if offer is not None and offer.status != OfferStatus.OFFERED:
        raise Conflict(f"{SERVICE_TYPES[service_type]} was already recorded as "
                       f"{offer.status.replace('_', ' ')} in this visit.",
                       current_state=offer.status, offer_id=offer.id)
    if offer is not None and status == OfferStatus.OFFERED:
        return offer  # offered twice: nothing new to record
    service = None
    if status == OfferStatus.ACCEPTED:
        service = _referral_target(site, service_type, data)
    if offer is None:
        offer = ReferralOffer(site_id=site.id, visit_id=visit.id, client_id=visit.client_id,
                              service_type=service_type, rule_id=rule.id if rule else None,
                              reason=_reason_now(visit, rule, now) if rule else None,
                              status=OfferStatus.OFFERED, offered_at=now,
                              offered_by=actor.staff_id)
        db.session.add(offer)
        try:
            db.session.flush()
        except exc.IntegrityError:
            db.session.rollback()
            raise Conflict("Someone recorded this offer a moment ago.") from None
        record(actor, "referral_offered", "referral_offer", offer.id, site_id=site.id, now=now,
               detail={"visit": visit.id, "service_type": service_type,
                       "rule": offer.rule_id})
    if status != OfferStatus.OFFERED:
        offer.status = status
        offer.decided_at = now
        offer.decided_by = actor.staff_id
        record(actor, f"referral_{status}", "referral_offer", offer.id, site_id=site.id,
               now=now, detail={"visit": visit.id, "service_type": service_type})
    if service is not None:
        today = facts_module.local_today(site, now)
        days = data.get("follow_up_days") or DEFAULT_FOLLOW_UP_DAYS
        referral = Referral(site_id=site.id, offer=offer, client_id=visit.client_id,
                            service_id=service.id, consent_given=True, referred_at=now,
                            referred_by=actor.staff_id,
                            follow_up_due=today + timedelta(days=days))
        db.session.add(referral)
        db.session.flush()
        record(actor, "referral_made", "referral", referral.id, site_id=site.id, now=now,
               detail={"offer": offer.id, "service": service.id,
                       "follow_up_due": referral.follow_up_due.isoformat()})
    _announce(site.id)
    db.session.commit()
    return offer


def _referral_target(site: Site, service_type: str, data: dict) -> Service:
    errors = {}
    if data.get("service_id") is None:
        errors["service_id"] = [f"Choose where to refer them ({SERVICE_TYPES[service_type]})."]
    if not data.get("consent"):
        errors["consent"] = ["Record that the client agreed to this referral."]
    if errors:
        raise Invalid("A referral needs a service and the client's consent.", errors)
    service = get_service(site, data["service_id"])
    if service.service_type != service_type or not service.active:
        raise Invalid("Choose an active service of this type.", {"service_id": [
            f"{service.name} is not an active {SERVICE_TYPES[service_type]} service."]})
    return service


# --- Follow-ups -----------------------------------------------------------------------------


def get_referral(site: Site, referral_id: int) -> Referral:
    referral = db.session.get(Referral, referral_id)
    if referral is None or referral.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no referral with id {referral_id}.")
    return referral


def follow_ups_due(site: Site, *, actor: Actor, now: datetime) -> list[Referral]:
    """Referrals whose follow-up date has come and whose outcome is not recorded; audited."""
    today = facts_module.local_today(site, now)
    due = list(db.session.execute(
        db.select(Referral).where(Referral.site_id == site.id, Referral.outcome.is_(None),
                                  Referral.follow_up_due <= today)
        .options(selectinload(Referral.client), selectinload(Referral.service),
                 selectinload(Referral.offer))
        .order_by(Referral.follow_up_due, Referral.id)).scalars())
    if due:
        record(actor, "referral_follow_ups_viewed", "referral", None, site_id=site.id, now=now,
               detail={"shown": [r.id for r in due]})
        db.session.commit()
    return due


def record_outcome(referral: Referral, outcome: str, *, actor: Actor,
                   now: datetime) -> Referral:
    """Whether the client presented for assessment; once (Conflict if already recorded)."""
    if outcome not in FOLLOW_UP_OUTCOMES:
        raise Invalid("Choose what happened.", {"outcome": [
            f"Choose one of: {', '.join(FOLLOW_UP_OUTCOMES)}."]})
    if referral.outcome is not None:
        raise Conflict(f"The outcome was already recorded: "
                       f"{FOLLOW_UP_OUTCOMES[referral.outcome].lower()}.",
                       current_state=referral.outcome, referral_id=referral.id)
    referral.outcome = outcome
    referral.outcome_at = now
    referral.outcome_by = actor.staff_id
    record(actor, "referral_outcome", "referral", referral.id, site_id=referral.site_id,
           now=now, detail={"outcome": outcome})
    _announce(referral.site_id)
    db.session.commit()
    return referral


def list_due_follow_ups(*, now: datetime) -> int:
    """The daily job: mark follow-ups that came due since the last run and tell the sites.

    Idempotent: a follow-up is listed once. Returns how many were newly listed.
    """
    listed = 0
    sites = set()
    for site in db.session.execute(db.select(Site)).scalars():
        today = facts_module.local_today(site, now)
        due = list(db.session.execute(db.select(Referral).where(
            Referral.site_id == site.id, Referral.outcome.is_(None),
            Referral.follow_up_listed_at.is_(None),
            Referral.follow_up_due <= today)).scalars())
        for referral in due:
            referral.follow_up_listed_at = now
            record(Actor.system("scheduler"), "referral_follow_up_due", "referral",
                   referral.id, site_id=site.id, now=now)
        if due:
            sites.add(site.id)
            listed += len(due)
    for site_id in sites:
        _announce(site_id)
    db.session.commit()
    return listed


# --- Uptake ---------------------------------------------------------------------------------


def _bounds(site: Site, start, end) -> tuple[datetime, datetime]:
    def one(value):
        return value if isinstance(value, datetime) else _as_utc(site, value)

    return one(start), one(end)


def uptake(site: Site, month_start, month_end) -> dict:
    """Offered, accepted and presented per service type in ``[month_start, month_end)``.

    Dates are the site's local days; datetimes are taken as they are. Offered counts offers
    made in the period; accepted, referrals made in it; presented, those referrals whose
    client presented for assessment (whenever that was recorded). ``referrals_outside`` and
    ``services_inside`` split the period's referrals the way Health Canada counts them.
    """
    start, end = _bounds(site, month_start, month_end)
    offers = list(db.session.execute(db.select(ReferralOffer).where(
        ReferralOffer.site_id == site.id, ReferralOffer.offered_at >= start,
        ReferralOffer.offered_at < end)).scalars())
    referrals = list(db.session.execute(
        db.select(Referral).where(Referral.site_id == site.id, Referral.referred_at >= start,
                                  Referral.referred_at < end)
        .options(selectinload(Referral.service), selectinload(Referral.offer))).scalars())
    by_type = {t: {"label": label, "offered": 0, "accepted": 0, "presented": 0}
               for t, label in SERVICE_TYPES.items()}
    for offer in offers:
        by_type[offer.service_type]["offered"] += 1
    for referral in referrals:
        row = by_type[referral.offer.service_type]
        row["accepted"] += 1
        row["presented"] += referral.outcome == "presented"
    totals = {key: sum(row[key] for row in by_type.values())
              for key in ("offered", "accepted", "presented")}
    totals["declined"] = sum(1 for o in offers if o.status == OfferStatus.DECLINED)
    totals["not_now"] = sum(1 for o in offers if o.status == OfferStatus.NOT_NOW)
    return {
        "start": start, "end": end, "by_type": by_type, "totals": totals,
        "referrals_outside": sum(1 for r in referrals if not r.service.on_site),
        "services_inside": sum(1 for r in referrals if r.service.on_site),
    }


def month_starts(site: Site, *, now: datetime, months: int) -> list[date]:
    """The first days of the last ``months`` months at the site, newest first."""
    first = facts_module.local_today(site, now).replace(day=1)
    out = []
    for _ in range(months):
        out.append(first)
        first = (first - timedelta(days=1)).replace(day=1)
    return out


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def uptake_by_month(site: Site, *, now: datetime, months: int = 6) -> list[tuple[date, dict]]:
    return [(first, uptake(site, first, next_month(first)))
            for first in month_starts(site, now=now, months=months)]
