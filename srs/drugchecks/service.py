"""Drug checks, the watch list, overdose clusters and the drug-alert lifecycle.

Callers: the drug-check and drug-alert pages, the API, and the scheduler's scan
(:func:`scan`). Every function that changes something is one unit of work: check, change,
audit, commit once, announce after the commit. Pieces reused by those (:func:`draft_from_check`,
:func:`scan_clusters`, :func:`expire_alerts`) never commit. Each takes ``now`` and, where a
person acts, an ``Actor``; each raises a DomainError: 404 for a record of another site, 409
for a step out of order or a second-person refusal, 422 with field messages.

Audit details hold ids and setting names only: never a client code or free text.
"""

import statistics
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError

from srs import live
from srs.auth.service import Actor, record
from srs.booths.models import Visit
from srs.drugchecks import outbox
from srs.drugchecks.models import (
    ALERT_KINDS,
    DEFAULT_SUBSTANCES,
    DEFAULT_WATCH,
    SAMPLE_FORMS,
    STRIPS,
    DrugAlert,
    DrugCheck,
    DrugCheckComponent,
    DrugSubstance,
    DrugWatchItem,
)
from srs.errors import Conflict, Invalid, NotFound
from srs.extensions import db
from srs.overdose.models import OverdoseResponse, ResponseKind
from srs.sites.models import Site

TOPIC = "drug_alerts"
# A day above the trend counts only from this many overdoses (a quiet site's median is 0).
TREND_MINIMUM = 2
TREND_DAYS = 28
# The organisation's own thresholds (app config; a site's are its settings).
ORG_DEFAULTS = {"SRS_ORG_CLUSTER_OVERDOSES": 5, "SRS_ORG_CLUSTER_WINDOW_SECONDS": 86400,
                "SRS_ORG_CLUSTER_TREND_FACTOR": 2.0}
OVERDOSE_KINDS = (ResponseKind.OPIOID.value, ResponseKind.STIMULANT.value)


def _field(name: str, message: str) -> Invalid:
    return Invalid(message, {name: [message]})


def organisation_name() -> str:
    return current_app.config.get("SRS_ORGANISATION_NAME") or "SRS"


def _org_setting(name: str):
    return current_app.config.get(name, ORG_DEFAULTS[name])


# --- The site's lists -----------------------------------------------------------------------


def substances(site: Site, *, active_only: bool = True) -> list[DrugSubstance]:
    """The site's substance list, seeded with the common ones the first time it is asked
    for (adds to the session; the caller's unit of work commits)."""
    rows = list(db.session.execute(db.select(DrugSubstance).where(
        DrugSubstance.site_id == site.id).order_by(DrugSubstance.name)).scalars())
    if not rows:
        rows = [DrugSubstance(site_id=site.id, name=name, family=family, active=True)
                for name, family in DEFAULT_SUBSTANCES]
        db.session.add_all(rows)
        db.session.flush()
        rows.sort(key=lambda r: r.name)
    return [r for r in rows if r.active or not active_only]


def watch_list(site: Site, *, active_only: bool = True) -> list[DrugWatchItem]:
    """The site's watch list, seeded from DOMAIN.md the first time (the caller commits)."""
    rows = list(db.session.execute(db.select(DrugWatchItem).where(
        DrugWatchItem.site_id == site.id).order_by(DrugWatchItem.id)).scalars())
    if not rows:
        rows = [DrugWatchItem(site_id=site.id, rule=rule, substance=substance, label=label,
                              active=True) for rule, substance, label in DEFAULT_WATCH]
        db.session.add_all(rows)
        db.session.flush()
    return [r for r in rows if r.active or not active_only]


def add_substance(site: Site, *, name: str, family: str, actor: Actor,
                  now: datetime) -> DrugSubstance:
    """Add a name to the site's list (or bring a retired one back).

    :raises Invalid: on ``name`` when it is already on the list.
    """
    known = {s.name.lower(): s for s in substances(site, active_only=False)}
    row = known.get(name.strip().lower())
    if row is not None and row.active:
        raise _field("name", f"{row.name} is already on the list.")
    if row is None:
        row = DrugSubstance(site_id=site.id, name=name.strip(), family=family)
        db.session.add(row)
    row.active, row.family = True, family
    db.session.flush()
    record(actor, "drug_substance_added", "drug_substance", row.id, site_id=site.id, now=now)
    db.session.commit()
    return row


def retire_substance(site: Site, substance_id: int, *, actor: Actor, now: datetime) -> None:
    """Take a name off the list offered for new checks; past checks keep it."""
    row = db.session.get(DrugSubstance, substance_id)
    if row is None or row.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no substance with id {substance_id}.")
    row.active = False
    record(actor, "drug_substance_retired", "drug_substance", row.id, site_id=site.id, now=now)
    db.session.commit()


def add_watch_item(site: Site, *, substance: str, actor: Actor, now: datetime) -> DrugWatchItem:
    """Watch for a substance found in any sample (a name contained in a finding matches).

    :raises Invalid: on ``substance`` when it is already watched.
    """
    name = substance.strip()
    known = {(w.substance or "").lower(): w for w in watch_list(site, active_only=False)
             if w.rule == "found"}
    row = known.get(name.lower())
    if row is not None and row.active:
        raise _field("substance", f"{row.substance} is already on the watch list.")
    if row is None:
        row = DrugWatchItem(site_id=site.id, rule="found", substance=name, label=name)
        db.session.add(row)
    row.active = True
    db.session.flush()
    record(actor, "drug_watch_added", "drug_watch_item", row.id, site_id=site.id, now=now)
    db.session.commit()
    return row


def retire_watch_item(site: Site, item_id: int, *, actor: Actor, now: datetime) -> None:
    """Stop drafting alerts for a watch-list entry."""
    row = db.session.get(DrugWatchItem, item_id)
    if row is None or row.site_id != site.id:
        raise NotFound(f"Site {site.slug} has no watch-list entry with id {item_id}.")
    row.active = False
    record(actor, "drug_watch_retired", "drug_watch_item", row.id, site_id=site.id, now=now)
    db.session.commit()


# --- Drug checks ----------------------------------------------------------------------------


def list_checks(site: Site, *, limit: int = 50) -> list[DrugCheck]:
    """The site's latest checks, newest first."""
    return list(db.session.execute(db.select(DrugCheck).where(DrugCheck.site_id == site.id)
                                   .order_by(DrugCheck.checked_at.desc(), DrugCheck.id.desc())
                                   .limit(limit)).scalars())


def next_sample_code(site: Site, *, now: datetime) -> str:
    """A sample id for a check recorded without one: the site's date and a number."""
    day = site.local_date(now)
    count = db.session.scalar(db.select(func.count(DrugCheck.id)).where(
        DrugCheck.site_id == site.id, DrugCheck.sample_code.like(f"{day:%Y%m%d}-%")))
    return f"{day:%Y%m%d}-{count + 1:03d}"


def record_check(site: Site, data: dict, *, actor: Actor, now: datetime) -> DrugCheck:
    """Record a sample's check; draft a drug alert when a finding is on the watch list.

    ``data`` is what the API's or the page's schema loaded. Strips named in ``methods``
    need a result; a strip result without its method adds the method.

    :raises Invalid: for an unknown substance, a strip without a result, a sample id
        already used at the site, an overdose response or visit of another site.
    :raises Conflict: never; the alert draft is idempotent.
    """
    names = {s.name.lower(): s for s in substances(site, active_only=False)}
    errors: dict[str, list[str]] = {}
    expected = data.get("expected")
    if expected and expected.lower() not in names:
        errors["expected"] = ["Choose a substance from the site's list."]
    methods = list(dict.fromkeys(data.get("methods") or []))
    strips = dict(data.get("strips") or {})
    for name in STRIPS:
        method = f"{name}_strip"
        if strips.get(name) and method not in methods:
            methods.append(method)
        if method in methods and not strips.get(name):
            errors.setdefault("strips", []).append(f"Give the {name} strip's result.")
    components = data.get("components") or []
    for item in components:
        if item["substance"].lower() not in names:
            errors.setdefault("components", []).append(
                f"{item['substance']} is not on the site's list.")
    if components and "ftir" not in methods and "lab" not in methods:
        methods.append("ftir")
    if not methods:
        errors["methods"] = ["Choose at least one method."]
    lab_status = data.get("lab_status") or ("pending" if "lab" in methods else "none")
    if lab_status == "received" and not data.get("lab_result"):
        errors["lab_result"] = ["Give the lab's result, or mark it pending."]
    response_id = data.get("overdose_response_id")
    if response_id is not None:
        response = db.session.get(OverdoseResponse, response_id)
        if response is None or response.site_id != site.id:
            errors["overdose_response_id"] = ["No overdose response of this site has this id."]
    visit_id = data.get("visit_id")
    if visit_id is not None:
        visit = db.session.get(Visit, visit_id)
        if visit is None or visit.site_id != site.id:
            errors["visit_id"] = ["No visit of this site has this id."]
    code = (data.get("sample_code") or "").strip() or next_sample_code(site, now=now)
    if db.session.scalar(db.select(DrugCheck.id).where(DrugCheck.site_id == site.id,
                                                       DrugCheck.sample_code == code)):
        errors["sample_code"] = [f"Sample {code} is already recorded at this site."]
    if errors:
        raise Invalid("The check could not be recorded: see the marked fields.", errors)
    check = DrugCheck(
        site_id=site.id, sample_code=code, checked_at=data.get("checked_at") or now,
        area=data.get("area"), sample_type=data.get("sample_type") or "substance",
        expected=names[expected.lower()].name if expected else None,
        colour=data.get("colour"), form=data.get("form"), methods=methods,
        reagent_result=data.get("reagent_result"), lab_status=lab_status,
        lab_result=data.get("lab_result"),
        linked_overdose=bool(data.get("linked_overdose") or response_id),
        overdose_response_id=response_id, used_before=data.get("used_before"),
        visit_id=visit_id, recorded_at=now, recorded_by=actor.staff_id)
    for name in STRIPS:
        setattr(check, f"{name}_strip", strips.get(name))
    for item in components:
        check.components.append(DrugCheckComponent(
            substance=names[item["substance"].lower()].name,
            uncertain=bool(item.get("uncertain")), percent=item.get("percent")))
    db.session.add(check)
    db.session.flush()
    record(actor, "drug_check_recorded", "drug_check", check.id, site_id=site.id,
           detail={"methods": methods}, now=now)
    alert = draft_from_check(check, site, now=now)
    db.session.commit()
    check.drug_alert_id = alert.id if alert is not None else None
    return check


def watch_findings(check: DrugCheck, site: Site) -> list[DrugWatchItem]:
    """The active watch-list entries a check's findings match."""
    families = {s.name.lower(): s.family for s in substances(site, active_only=False)}
    expected_family = families.get((check.expected or "").lower())
    found = [c.substance.lower() for c in check.components]
    found += [name for name in ("nitazene", "xylazine")
              if check.strip_result(name) == "positive"]
    benzo = check.strip_result("benzodiazepine") == "positive" or any(
        families.get(c.substance.lower()) == "benzodiazepine" for c in check.components)
    fentanyl = check.strip_result("fentanyl") == "positive" or any(
        "fentanyl" in c.substance.lower() for c in check.components)
    hits = []
    for item in watch_list(site):
        if item.rule == "found":
            if any(item.substance.lower() in name for name in found):
                hits.append(item)
        elif item.rule == "benzo_in_opioid":
            if benzo and expected_family == "opioid":
                hits.append(item)
        elif item.rule == "fentanyl_in_stimulant" and fentanyl \
                and expected_family == "stimulant":
            hits.append(item)
    return hits


def evidence_of(check: DrugCheck) -> str:
    """The strongest evidence a check gives: lab-confirmed, FTIR, strip, else reported."""
    if check.lab_status == "received":
        return "lab"
    if check.components or "ftir" in check.methods:
        return "ftir"
    if any(check.strip_result(name) for name in STRIPS):
        return "strip"
    return "reported"


def _found_text(check: DrugCheck, hits: list[DrugWatchItem]) -> str:
    parts = [f"{STRIPS[name]} positive" for name in STRIPS
             if check.strip_result(name) == "positive"]
    for c in check.components:
        share = f" {c.percent}%" if c.percent is not None else ""
        parts.append(f"{c.substance}{share}{' (uncertain match)' if c.uncertain else ''}")
    watched = ", ".join(item.label for item in hits)
    return f"{'; '.join(parts)}. On the watch list: {watched}."


def draft_from_check(check: DrugCheck, site: Site, *, now: datetime) -> DrugAlert | None:
    """Draft a drug alert for a check with a watch-list finding; one per check. Adds to
    the session; the caller commits."""
    hits = watch_findings(check, site)
    if not hits:
        return None
    existing = db.session.scalar(db.select(DrugAlert).where(
        DrugAlert.drug_check_id == check.id))
    if existing is not None:
        return existing
    appearance = ", ".join(p for p in (check.colour, SAMPLE_FORMS.get(check.form or "")) if p)
    alert = DrugAlert(
        site_id=site.id, scope="site", site_ids=[site.id], kind="drug_alert", status="draft",
        area=check.area, expected=check.expected, found=_found_text(check, hits),
        appearance=appearance or None, advice=_default_advice(hits), evidence=evidence_of(check),
        audience="staff", urgent=False, valid_for_days=site.alert_valid_for_days,
        drug_check_id=check.id, drafted_at=now, drafted_by=None)
    alert.title = title_for(alert, site, now)
    db.session.add(alert)
    db.session.flush()
    record(Actor.system("watch list"), "drug_alert_drafted", "drug_alert", alert.id,
           site_id=site.id, detail={"drug_check_id": check.id,
                                    "watch_item_ids": [h.id for h in hits]}, now=now)
    live.announce(site.id, TOPIC)
    return alert


def _default_advice(hits) -> list[str]:
    advice = ["test_first", "start_low", "not_alone", "carry_naloxone"]
    if any((h.substance or "").lower() in ("xylazine", "medetomidine") for h in hits):
        advice.append("naloxone_may_not_reverse")
    return advice


def title_for(alert: DrugAlert, site: Site | None, moment: datetime) -> str:
    """"[organisation] - Drug Alert|Overdose Advisory - [area] - [date]" (BC's form)."""
    where = alert.area or (site.name if site is not None else "All sites")
    day = site.local_date(moment) if site is not None else moment.astimezone(UTC).date()
    return f"{organisation_name()} - {ALERT_KINDS[alert.kind]} - {where} - {day:%Y-%m-%d}"[:240]


# --- Overdose clusters ----------------------------------------------------------------------


def _starts(site_ids, since: datetime, until: datetime) -> list[datetime]:
    return list(db.session.execute(db.select(OverdoseResponse.started_at).where(
        OverdoseResponse.site_id.in_(site_ids), OverdoseResponse.kind.in_(OVERDOSE_KINDS),
        OverdoseResponse.started_at > since, OverdoseResponse.started_at <= until)
        .order_by(OverdoseResponse.started_at)).scalars())


def _cluster_draft(key: str) -> DrugAlert | None:
    return db.session.scalar(db.select(DrugAlert).where(DrugAlert.cluster_key == key))


def _advisory(key: str, *, site: Site | None, site_ids: list[int], starts: list[datetime],
              rule: str, now: datetime, valid_for_days: int) -> DrugAlert | None:
    """Draft the advisory of cluster ``key``, or update its count and last overdose."""
    alert = _cluster_draft(key)
    site_id = site.id if site is not None else None
    if alert is not None:
        if alert.cluster_count == len(starts) and alert.last_overdose_at == starts[-1]:
            return None
        alert.cluster_count, alert.last_overdose_at = len(starts), starts[-1]
        if alert.status == "draft":
            alert.effects = _cluster_effects(len(starts), starts[0], starts[-1], site, rule)
        record(Actor.system("cluster scan"), "drug_alert_cluster_grew", "drug_alert", alert.id,
               site_id=site_id, detail={"count": len(starts)}, now=now)
        return alert
    alert = DrugAlert(
        site_id=site_id, scope="site" if site is not None else "organisation",
        site_ids=site_ids, kind="overdose_advisory", status="draft",
        area=None, found=None, advice=["not_alone", "carry_naloxone", "start_low",
                                       "test_first", "call_911"],
        evidence="reported", audience="staff", urgent=False, valid_for_days=valid_for_days,
        cluster_key=key, cluster_count=len(starts), first_overdose_at=starts[0],
        last_overdose_at=starts[-1], drafted_at=now, drafted_by=None,
        effects=_cluster_effects(len(starts), starts[0], starts[-1], site, rule))
    alert.title = title_for(alert, site, now)
    try:
        with db.session.begin_nested():
            db.session.add(alert)
    except IntegrityError:
        # Another scan (the scheduler beside a run by hand) drafted this cluster's advisory
        # a moment before: the cluster has its one draft, which the next scan grows.
        return None
    record(Actor.system("cluster scan"), "drug_alert_drafted", "drug_alert", alert.id,
           site_id=site_id, detail={"rule": rule, "count": len(starts)}, now=now)
    return alert


def _cluster_effects(count, first, last, site, rule) -> str:
    where = "at this site" if site is not None else "across the organisation's sites"
    why = ("above the usual daily count" if rule == "trend" else "close together")
    fmt = (lambda m: site.local(m).strftime("%Y-%m-%d %H:%M")) if site is not None \
        else (lambda m: m.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    return f"{count} overdoses {where}, {why}: the first at {fmt(first)}, the last at {fmt(last)}."


def _window_cluster(prefix: str, site_ids, *, threshold: int, window: int, now: datetime):
    """The starts of an ongoing count cluster and its key, or None.

    A cluster begins when ``threshold`` overdoses fall within ``window`` seconds; it goes on
    while each next overdose comes within ``window`` of the one before (it grows rather than
    starting a second draft).
    """
    recent = _starts(site_ids, now - timedelta(seconds=window), now)
    if len(recent) < threshold:
        return None
    ongoing = db.session.scalar(db.select(DrugAlert).where(
        DrugAlert.cluster_key.like(f"{prefix}:%"),
        DrugAlert.last_overdose_at > now - timedelta(seconds=2 * window))
        .order_by(DrugAlert.first_overdose_at.desc()).limit(1))
    if ongoing is not None and recent[0] - ongoing.last_overdose_at <= timedelta(seconds=window):
        since = ongoing.first_overdose_at - timedelta(microseconds=1)
        return ongoing.cluster_key, _starts(site_ids, since, now)
    return f"{prefix}:count:{recent[0].astimezone(UTC):%Y%m%dT%H%M%S}", recent


def _daily_counts(site_ids, day_starts: list[datetime]) -> list[int]:
    """Overdoses in each [day_starts[i], day_starts[i+1])."""
    starts = _starts(site_ids, day_starts[0] - timedelta(microseconds=1), day_starts[-1])
    counts = [0] * (len(day_starts) - 1)
    for moment in starts:
        for i in range(len(counts)):
            if day_starts[i] <= moment < day_starts[i + 1]:
                counts[i] += 1
                break
    return counts


def _trend_exceeded(today: int, history: list[int], factor: float) -> bool:
    """A day above ``factor`` times the trailing median (Dane County). With no trend (a
    median of 0) there is nothing to be above: the count rule watches a quiet site."""
    median = statistics.median(history)
    return median > 0 and today >= TREND_MINIMUM and today > factor * median


def _one_advisory(hits, *, site: Site | None, site_ids: list[int], now: datetime,
                  valid_for_days: int) -> DrugAlert | None:
    """One advisory for what both rules found: the draft one of them already has (by its
    cluster key), grown to the larger count; else a new one under the first rule's key."""
    found = [(key, starts, rule) for key, starts, rule in hits if starts]
    if not found:
        return None
    key, _starts_, rule = next(
        (hit for hit in found if db.session.scalar(
            db.select(DrugAlert.id).where(DrugAlert.cluster_key == hit[0]))), found[0])
    starts = max((hit[1] for hit in found), key=len)
    return _advisory(key, site=site, site_ids=site_ids, starts=starts, rule=rule, now=now,
                     valid_for_days=valid_for_days)


def scan_site(site: Site, *, now: datetime) -> list[DrugAlert]:
    """Draft or grow a site's overdose advisory by either rule: ``cluster_overdoses`` within
    ``cluster_window_seconds``, or a day above ``cluster_trend_factor`` times the trailing
    28-day median. The caller commits."""
    hits = []
    window = _window_cluster(f"site:{site.id}", [site.id], threshold=site.cluster_overdoses,
                             window=site.cluster_window_seconds, now=now)
    if window:
        hits.append((*window, "count"))
    today = site.local_date(now)
    bounds = [site.midnight(today - timedelta(days=n)) for n in range(TREND_DAYS, -2, -1)]
    counts = _daily_counts([site.id], bounds)
    if _trend_exceeded(counts[-1], counts[:-1], site.cluster_trend_factor):
        hits.append((f"site:{site.id}:trend:{today:%Y%m%d}",
                     _starts([site.id], bounds[-2] - timedelta(microseconds=1), now), "trend"))
    made = _one_advisory(hits, site=site, site_ids=[site.id], now=now,
                         valid_for_days=site.alert_valid_for_days)
    return [made] if made is not None else []


def scan_organisation(*, now: datetime) -> list[DrugAlert]:
    """The same rules across every site with the organisation's thresholds (app config:
    ``SRS_ORG_CLUSTER_OVERDOSES``, ``..._WINDOW_SECONDS``, ``..._TREND_FACTOR``). Its day is
    the last 24 hours against the 28 before. Nothing to do with one site. The caller
    commits."""
    site_ids = list(db.session.execute(db.select(Site.id).order_by(Site.id)).scalars())
    if len(site_ids) < 2:
        return []
    hits = []
    window = _window_cluster("org", site_ids, threshold=_org_setting("SRS_ORG_CLUSTER_OVERDOSES"),
                             window=_org_setting("SRS_ORG_CLUSTER_WINDOW_SECONDS"), now=now)
    if window:
        hits.append((*window, "count"))
    bounds = [now - timedelta(days=n) for n in range(TREND_DAYS + 1, -1, -1)]
    counts = _daily_counts(site_ids, bounds)
    if _trend_exceeded(counts[-1], counts[:-1], _org_setting("SRS_ORG_CLUSTER_TREND_FACTOR")):
        # One advisory per UTC day the rule holds on.
        hits.append((f"org:trend:{now.astimezone(UTC):%Y%m%d}",
                     _starts(site_ids, bounds[-2], now), "trend"))
    made = _one_advisory(hits, site=None, site_ids=site_ids, now=now,
                         valid_for_days=current_app.config.get("SRS_ORG_ALERT_VALID_FOR_DAYS", 14))
    return [made] if made is not None else []


def scan_clusters(*, now: datetime) -> list[DrugAlert]:
    """Every site's clusters, then the organisation's. The caller commits."""
    made = []
    for site in db.session.execute(db.select(Site).order_by(Site.id)).scalars():
        made += scan_site(site, now=now)
    made += scan_organisation(now=now)
    return made


def expire_alerts(*, now: datetime) -> list[DrugAlert]:
    """Published alerts past their ``valid_until`` become expired. The caller commits."""
    due = list(db.session.execute(db.select(DrugAlert).where(
        DrugAlert.status == "published", DrugAlert.valid_until <= now)).scalars())
    for alert in due:
        alert.status, alert.ended_at = "expired", now
        record(Actor.system("expiry"), "drug_alert_expired", "drug_alert", alert.id,
               site_id=alert.site_id, now=now)
    return due


def scan(*, now: datetime) -> int:
    """The scheduler's job: draft or grow cluster advisories, expire old alerts, commit,
    announce to the sites concerned; return how many alerts changed."""
    changed = scan_clusters(now=now) + expire_alerts(now=now)
    for site_id in sorted({s for alert in changed for s in alert.site_ids}):
        live.announce(site_id, TOPIC)
    db.session.commit()
    return len(changed)


# --- The alert lifecycle --------------------------------------------------------------------


def alerts_for(site: Site, *, statuses=None) -> list[DrugAlert]:
    """The alerts covering a site, newest first; ``statuses`` narrows them."""
    query = db.select(DrugAlert).order_by(DrugAlert.drafted_at.desc(), DrugAlert.id.desc())
    if statuses:
        query = query.where(DrugAlert.status.in_(statuses))
    return [a for a in db.session.execute(query).scalars() if a.covers(site.id)]


def get_alert(site: Site, alert_id: int) -> DrugAlert:
    """An alert covering the site; raises NotFound for another site's or none."""
    alert = db.session.get(DrugAlert, alert_id)
    if alert is None or not alert.covers(site.id):
        raise NotFound(f"Site {site.slug} has no drug alert with id {alert_id}.")
    return alert


EDITABLE = ("area", "expected", "found", "appearance", "packaging", "effects", "advice",
            "advice_text", "evidence", "audience", "urgent", "valid_for_days")


def create_alert(site: Site, data: dict, *, actor: Actor, now: datetime) -> DrugAlert:
    """A drug alert or advisory drafted by hand (a report from a client or a partner):
    evidence "reported" unless given; covers this site, or every site with ``scope``
    "organisation"."""
    kind = data.get("kind") or "drug_alert"
    if data.get("scope") == "organisation":
        site_ids = list(db.session.execute(db.select(Site.id).order_by(Site.id)).scalars())
    else:
        site_ids = [site.id]
    alert = DrugAlert(site_id=site.id, scope=data.get("scope") or "site", site_ids=site_ids,
                      kind=kind, status="draft", drafted_at=now, drafted_by=actor.staff_id,
                      valid_for_days=site.alert_valid_for_days, evidence="reported",
                      audience="staff", urgent=False, advice=[])
    for name in EDITABLE:
        if name in data and data[name] is not None:
            setattr(alert, name, data[name])
    alert.title = title_for(alert, site, now)
    db.session.add(alert)
    db.session.flush()
    record(actor, "drug_alert_drafted", "drug_alert", alert.id, site_id=site.id,
           detail={"kind": kind, "scope": alert.scope}, now=now)
    _announce(alert)
    db.session.commit()
    return alert


def update_alert(alert: DrugAlert, site: Site, data: dict, *, actor: Actor,
                 now: datetime) -> DrugAlert:
    """Edit a draft or a validated alert; a validated one goes back to draft (what was
    validated has changed) and the editor may not validate it.

    :raises Conflict: once published, retracted or expired.
    """
    if alert.status not in ("draft", "validated"):
        raise Conflict(f"This alert is {alert.status}: it can no longer be edited. Retract it "
                       f"and draft a new one.")
    changed = sorted(name for name in EDITABLE
                     if name in data and getattr(alert, name) != data[name])
    for name in changed:
        setattr(alert, name, data[name])
    if not changed:
        return alert
    alert.edited_at, alert.edited_by = now, actor.staff_id
    was = alert.status
    if was == "validated":
        alert.status, alert.validated_at, alert.validated_by = "draft", None, None
    alert.title = title_for(alert, _site_of(alert, site), alert.drafted_at)
    record(actor, "drug_alert_edited", "drug_alert", alert.id, site_id=site.id,
           detail={"fields": changed, "validation_cleared": was == "validated"}, now=now)
    _announce(alert)
    db.session.commit()
    return alert


def _site_of(alert: DrugAlert, fallback: Site) -> Site | None:
    if alert.scope == "organisation":
        return None
    return db.session.get(Site, alert.site_id) if alert.site_id else fallback


def may_validate(alert: DrugAlert, staff_id: int | None) -> bool:
    """Whether this person may validate: a draft, and not drafted or last edited by them."""
    return (alert.status == "draft" and staff_id is not None
            and staff_id not in (alert.drafted_by, alert.edited_by))


def may_publish(alert: DrugAlert, staff_id: int | None) -> bool:
    """Whether this person may publish: a validated alert that someone besides them has
    signed for. An alert SRS drafted (a watch-list finding, a cluster) and nobody edited
    has its validator as its only signer: another person publishes it, so that two people
    always sign for what reaches every screen."""
    if alert.status != "validated":
        return False
    if staff_id is None or staff_id != alert.validated_by:
        return True
    return bool({alert.drafted_by, alert.edited_by} - {None, staff_id})


def validate_alert(alert: DrugAlert, site: Site, *, actor: Actor, now: datetime) -> DrugAlert:
    """A second person checks the draft (RADAR: never one person alone).

    :raises Conflict: for an alert that is not a draft, or for the person who drafted or
        last edited it.
    """
    if alert.status != "draft":
        raise Conflict(f"Only a draft can be validated; this alert is {alert.status}.")
    if actor.staff_id is not None and actor.staff_id in (alert.drafted_by, alert.edited_by):
        raise Conflict("You drafted or last edited this alert: a second person must validate "
                       "it.")
    alert.status, alert.validated_at, alert.validated_by = "validated", now, actor.staff_id
    record(actor, "drug_alert_validated", "drug_alert", alert.id, site_id=site.id, now=now)
    _announce(alert)
    db.session.commit()
    return alert


def publish_alert(alert: DrugAlert, site: Site, *, actor: Actor, now: datetime) -> DrugAlert:
    """Publish a validated alert: it runs ``valid_for_days`` from now, its title takes
    today's date, and the sites it covers hear ``drug_alert`` on the live channel.

    :raises Conflict: for an alert not validated, or for its validator when nobody else
        signed for it (:func:`may_publish`).
    """
    if alert.status != "validated":
        raise Conflict("An alert is published once a second person has validated it."
                       if alert.status == "draft"
                       else f"This alert is {alert.status}: it cannot be published.")
    if not may_publish(alert, actor.staff_id):
        raise Conflict("You validated this alert and nobody else has signed for it: a second "
                       "person must publish it.")
    alert.status, alert.published_at, alert.published_by = "published", now, actor.staff_id
    alert.valid_until = now + timedelta(days=alert.valid_for_days)
    alert.title = title_for(alert, _site_of(alert, site), now)
    record(actor, "drug_alert_published", "drug_alert", alert.id, site_id=site.id,
           detail={"site_ids": alert.site_ids, "audience": alert.audience,
                   "urgent": alert.urgent}, now=now)
    _announce(alert)
    live.send_to_sites("drug_alert", alert_event(alert), site_ids=alert.site_ids)
    outbox.queue_for_alert(alert, now=now)
    db.session.commit()
    return alert


def alert_event(alert: DrugAlert) -> dict:
    """The ``drug_alert`` socket event: what a screen needs to show and fetch the alert."""
    return {"id": alert.id, "site_ids": list(alert.site_ids), "kind": alert.kind,
            "title": alert.title, "evidence": alert.evidence,
            "published_at": alert.published_at.astimezone(UTC).isoformat(timespec="seconds")}


def retract_alert(alert: DrugAlert, site: Site, *, reason: str, actor: Actor,
                  now: datetime) -> DrugAlert:
    """Withdraw an alert (the EU system's retraction): a published one found wrong, or a
    draft not worth publishing. The reason is kept, not audited (free text).

    :raises Conflict: for an alert already retracted or expired.
    """
    if alert.status in ("retracted", "expired"):
        raise Conflict(f"This alert is already {alert.status}.")
    was = alert.status
    alert.status, alert.ended_at, alert.ended_by = "retracted", now, actor.staff_id
    alert.retract_reason = reason
    outbox.cancel_for_alert(alert, now=now)
    record(actor, "drug_alert_retracted", "drug_alert", alert.id, site_id=site.id,
           detail={"was": was}, now=now)
    _announce(alert)
    db.session.commit()
    return alert


def renew_alert(alert: DrugAlert, site: Site, *, actor: Actor, now: datetime) -> DrugAlert:
    """Extend a published (or expired) alert by its ``valid_for_days`` from now, or from its
    current end when that is later.

    :raises Conflict: for an alert never published, or retracted.
    """
    if alert.status not in ("published", "expired"):
        raise Conflict(f"Only a published or expired alert can be renewed; this one is "
                       f"{alert.status}.")
    start = max(now, alert.valid_until or now)
    alert.valid_until = start + timedelta(days=alert.valid_for_days)
    was = alert.status
    alert.status, alert.ended_at, alert.ended_by = "published", None, None
    record(actor, "drug_alert_renewed", "drug_alert", alert.id, site_id=site.id,
           detail={"was": was, "valid_for_days": alert.valid_for_days}, now=now)
    _announce(alert)
    if was == "expired":
        live.send_to_sites("drug_alert", alert_event(alert), site_ids=alert.site_ids)
    db.session.commit()
    return alert


def _announce(alert: DrugAlert) -> None:
    for site_id in alert.site_ids:
        live.announce(site_id, TOPIC)

