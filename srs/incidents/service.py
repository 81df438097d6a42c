"""Incident reports: drafts, submission, review stages, amendments, contributing factors.

Callers: incident views, the API, the overdose console's close (through
``signals.response_closed``: ``draft_from_response``, which never commits: the close's
unit of work does) and the
weekly packet job. Each other function is one unit of work (check, change, record in
the audit trail, announce, commit once),
takes ``now`` and an ``Actor``, and raises ``Invalid`` (422, field messages),
``Forbidden`` (403) or ``Conflict`` (409 with the current stage).
"""

import re
from datetime import date, datetime

from sqlalchemy import func
from sqlalchemy.orm import selectinload

from srs import live, signals
from srs.auth.models import Role, Staff, StaffRole
from srs.auth.service import Actor, record
from srs.booths.models import Booth
from srs.clients.models import Client
from srs.errors import Conflict, Forbidden, Invalid, NotFound
from srs.extensions import db
from srs.incidents.models import (
    HARM_GRADES,
    INCIDENT_TYPES,
    STAGE_LABELS,
    ContributingFactor,
    Incident,
    IncidentAction,
    IncidentHistory,
    Stage,
)
from srs.overdose.models import OverdoseResponse
from srs.overdose.service import response_timeline
from srs.sites.models import Site
from srs.unit import commit

# The report's own fields: what a draft edit or an amendment may change.
REPORT_FIELDS = ("type", "occurred_at", "booth_id", "area", "staff_involved", "harm",
                 "narrative", "immediate_actions", "ems_involved", "police_involved",
                 "follow_up_needed")
FREE_TEXT = ("narrative", "immediate_actions")

# Review decisions: the stage each starts from and the stage it leads to.
TRANSITIONS = {
    "start_review": (Stage.SUBMITTED, Stage.UNDER_REVIEW),
    "request_approval": (Stage.UNDER_REVIEW, Stage.AWAITING_APPROVAL),
    "return": (Stage.AWAITING_APPROVAL, Stage.UNDER_REVIEW),
    "approve": (Stage.AWAITING_APPROVAL, Stage.CLOSED),
}
REVIEWING = (Stage.UNDER_REVIEW, Stage.AWAITING_APPROVAL)

DEFAULT_FACTORS = {
    "Client factors": ["Substance potency or contamination", "Polysubstance use",
                       "Mental health crisis", "Communication or language"],
    "Staff factors": ["Staffing level", "Training or experience", "Fatigue or workload",
                      "Handover or communication"],
    "Environment": ["Booth layout or sightlines", "Equipment failure", "Crowding or noise",
                    "Lighting or ventilation"],
    "Process": ["Policy unclear or missing", "Policy not followed", "Check interval missed",
                "Escalation delayed"],
    "External": ["Police presence", "EMS delay", "Supply or drug alert", "Other agency"],
}


class IncidentStageConflict(Conflict):
    code = "incident_stage"


def _stage_conflict(incident: Incident, doing: str) -> IncidentStageConflict:
    label = STAGE_LABELS[Stage(incident.stage)].lower()
    return IncidentStageConflict(f"Cannot {doing}: this report is {label}.",
                                 current_stage=incident.stage, incident_id=incident.id)


REPORT_CHANGED = "Someone else changed this report a moment ago. Reload to see it."


# --- Identifiers in free text ----------------------------------------------------------------

_PHONE = re.compile(r"(?<![\w-])(?:\+?\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?![\w-])"
                    r"|\+\d[\d\s.-]{7,}\d")
_NAME_WORD = r"[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?"
_FULL_NAME = re.compile(rf"\b({_NAME_WORD})\s+({_NAME_WORD})\b")
_WORD = re.compile(r"[\w'-]+")
# Capitalised words that start ordinary phrases in a report, not names.
NOT_NAMES = frozenset("""
    a an the this that these those he she they it his her their we our i my you your
    client clients staff nurse nurses peer worker supervisor reviewer security police ems
    booth booths room area waiting after-care aftercare entrance washroom site front
    naloxone narcan oxygen fentanyl heroin cocaine crack methamphetamine ambulance paramedics
    monday tuesday wednesday thursday friday saturday sunday january february march april may
    june july august september october november december at on in after before then when while
    called gave given found noticed observed reported client's
""".split())


def identifier_findings(text: str, *, site: Site) -> list[str]:
    """Likely identifiers in free text: the site's client handles, phone numbers, full names.

    Returns one message per finding, for the reporter to replace with client codes.
    """
    text = text or ""
    findings: list[str] = []
    for match in _PHONE.finditer(text):
        findings.append(f"\u201c{match.group(0).strip()}\u201d looks like a phone number.")
    for match in _FULL_NAME.finditer(text):
        first, second = match.group(1), match.group(2)
        if first.lower() in NOT_NAMES or second.lower() in NOT_NAMES:
            continue
        findings.append(f"\u201c{match.group(0)}\u201d looks like a person's full name.")
    words = [w.lower().strip("'-") for w in _WORD.findall(text)]
    candidates = set(words)
    candidates.update(" ".join(words[i:i + 2]) for i in range(len(words) - 1))
    candidates = {c for c in candidates if len(c) >= 3}
    if candidates:
        handles = db.session.execute(
            db.select(Client.handle, Client.code)
            .where(Client.site_id == site.id,
                   func.lower(Client.handle).in_(sorted(candidates)))).all()
        for handle, code in handles:
            findings.append(f"\u201c{handle}\u201d is a client's handle: write {code} instead.")
    return findings


def _identifier_errors(data: dict, *, site: Site) -> dict:
    errors = {}
    for name in FREE_TEXT:
        found = identifier_findings(data.get(name) or "", site=site)
        if found:
            errors[name] = [*found, "Replace names, handles and phone numbers with client "
                                    "codes (or describe the person's role)."]
    return errors


# --- Reading ---------------------------------------------------------------------------------


def get_incident(site: Site, incident_id: int) -> Incident:
    incident = db.session.get(Incident, incident_id)
    if incident is None or incident.site_id != site.id:
        raise _no_such_report(site, incident_id)
    return incident


def _no_such_report(site: Site, incident_id: int) -> NotFound:
    return NotFound(f"Site {site.slug} has no incident report {incident_id}.")


def view_incident(site: Site, incident_id: int, *, actor: Actor, roles: set[str],
                  now: datetime, conceal: bool = False) -> Incident:
    """Open a report (it names clients by code): the read is audited.

    A draft is its reporter's alone; reviewers see every submitted report, others their own.
    The pages say why a report is closed to someone; the API (``conceal``) answers as if
    it did not exist, so that an integration learns nothing of reports it may not open.

    :raises NotFound: no such report at the site, or (``conceal``) one closed to ``actor``
    :raises Forbidden: a report closed to ``actor`` (without ``conceal``)
    """
    incident = get_incident(site, incident_id)
    if not may_see(incident, actor=actor, roles=roles):
        if conceal:
            raise _no_such_report(site, incident_id)
        raise Forbidden("Only the person who wrote this report and the site's reviewers may "
                        "open it.")
    record(actor, "incident_viewed", "incident", incident.id, site_id=site.id, now=now,
           detail={"clients": [c.id for c in incident.clients]})
    db.session.commit()
    return incident


def may_see(incident: Incident, *, actor: Actor, roles: set[str]) -> bool:
    if incident.reported_by == actor.staff_id:
        return True
    return incident.stage != Stage.DRAFT and bool(roles & {Role.REVIEWER, Role.ADMIN})


def filtered(site: Site, filters: dict):
    """A select of the site's submitted reports matching ``filters`` (None values ignored).

    Filters: ``type``, ``harm``, ``stage``, ``booth_id``, ``band`` (time band), ``since``,
    ``until`` (UTC datetimes, half-open), ``reported_by``; ``include_drafts_of`` (a staff
    id) lets that person's own drafts in too.
    """
    query = db.select(Incident).where(Incident.site_id == site.id)
    if filters.get("include_drafts_of") is not None:
        query = query.where((Incident.stage != Stage.DRAFT)
                            | (Incident.reported_by == filters["include_drafts_of"]))
    else:
        query = query.where(Incident.stage != Stage.DRAFT)
    for name in ("type", "harm", "stage", "booth_id", "reported_by"):
        if filters.get(name) not in (None, ""):
            query = query.where(getattr(Incident, name) == filters[name])
    if filters.get("since") is not None:
        query = query.where(Incident.occurred_at >= filters["since"])
    if filters.get("until") is not None:
        query = query.where(Incident.occurred_at < filters["until"])
    return query


def list_incidents(site: Site, filters: dict, *, actor: Actor, page: int = 1,
                   per_page: int = 50, now: datetime, mine: bool = False
                   ) -> tuple[list[Incident], int]:
    """One page of reports, newest first, and how many match in all; the read is audited.

    With ``mine``, only the reports ``actor`` wrote, their drafts among them (what a
    reporter may list, whatever their role); callers check who may list the others.
    """
    if mine:
        filters = {**filters, "reported_by": actor.staff_id,
                   "include_drafts_of": actor.staff_id}
    query = filtered(site, filters)
    band = filters.get("band")
    if band:
        # The band is local time: filter in Python after the indexed range.
        rows = list(db.session.execute(query.order_by(Incident.occurred_at.desc(),
                                                      Incident.id.desc())).scalars())
        rows = [i for i in rows if site.time_band(i.occurred_at) == band]
        total = len(rows)
        items = rows[(page - 1) * per_page: page * per_page]
    else:
        total = db.session.scalar(db.select(func.count()).select_from(query.subquery()))
        items = list(db.session.execute(
            query.options(selectinload(Incident.clients), selectinload(Incident.booth))
            .order_by(Incident.occurred_at.desc(), Incident.id.desc())
            .limit(per_page).offset((page - 1) * per_page)).scalars())
    record(actor, "incidents_listed", "incident", None, site_id=site.id, now=now,
           detail={"shown": [i.id for i in items], **({"mine": True} if mine else {})})
    db.session.commit()
    return items, total


def my_reports(site: Site, *, actor: Actor, limit: int = 50) -> list[Incident]:
    """The reports this person wrote at the site, drafts first, then newest."""
    return list(db.session.execute(
        db.select(Incident).where(Incident.site_id == site.id,
                                  Incident.reported_by == actor.staff_id)
        .order_by((Incident.stage == Stage.DRAFT).desc(), Incident.updated_at.desc())
        .limit(limit)).scalars())


# --- Writing a report ------------------------------------------------------------------------


def _resolve_clients(site: Site, codes: list[str]) -> list[Client]:
    codes = [c.strip().upper() for c in codes if c and c.strip()]
    if not codes:
        return []
    found = {c.code: c for c in db.session.execute(
        db.select(Client).where(Client.site_id == site.id, Client.code.in_(codes))).scalars()}
    missing = [c for c in codes if c not in found]
    if missing:
        raise Invalid("Unknown client code.", {"client_codes": [
            f"No client has the code {code}: check it, or check the client in first."
            for code in missing]})
    return [found[c] for c in dict.fromkeys(codes)]


def _check_booth(site: Site, booth_id: int | None) -> None:
    if booth_id is None:
        return
    booth = db.session.get(Booth, booth_id)
    if booth is None or booth.site_id != site.id:
        raise Invalid("Unknown booth.", {"booth_id": ["Choose one of this site's booths."]})


def _apply(incident: Incident, site: Site, data: dict) -> dict:
    """Set the report's fields from ``data``; return {field: [before, after]} that changed."""
    changes = {}
    if "booth_id" in data:
        _check_booth(site, data["booth_id"])
    for name in REPORT_FIELDS:
        if name not in data:
            continue
        before, after = getattr(incident, name), data[name]
        if before != after:
            changes[name] = [_plain(before), _plain(after)]
            setattr(incident, name, after)
    if "client_codes" in data:
        clients = _resolve_clients(site, data["client_codes"])
        before = [c.code for c in incident.clients]
        after = [c.code for c in clients]
        if before != after:
            # Codes, not names; the history shows them only to those who may open the report.
            changes["client_codes"] = [before, after]
            incident.clients = clients
    return changes


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def create_incident(site: Site, data: dict, *, actor: Actor, now: datetime) -> Incident:
    """Start a draft report (any staff member of the site); fields may still be missing."""
    incident = Incident(site_id=site.id, stage=Stage.DRAFT, reported_by=actor.staff_id,
                        occurred_at=data.get("occurred_at") or now, created_at=now,
                        updated_at=now)
    db.session.add(incident)
    _apply(incident, site, {k: v for k, v in data.items() if v is not None})
    db.session.flush()
    record(actor, "incident_created", "incident", incident.id, site_id=site.id, now=now)
    commit(REPORT_CHANGED)
    return incident


def draft_incident(site: Site, *, type: str, occurred_at: datetime, location: str | None,
                   narrative: str, client_ids: list[int], actor: Actor, now: datetime,
                   response_id: int | None = None) -> Incident:
    """A draft report started by another record (an overdose response's close). Does not
    commit: the operation that calls it does.

    ``location`` is a booth label of the site or an area; the draft belongs to ``actor``.
    """
    if type not in INCIDENT_TYPES:
        raise Invalid("Unknown incident type.", {"type": [f"One of {', '.join(INCIDENT_TYPES)}."]})
    booth = None
    if location:
        booth = db.session.execute(db.select(Booth).filter_by(
            site_id=site.id, label=location)).scalar_one_or_none()
    clients = list(db.session.execute(
        db.select(Client).where(Client.site_id == site.id,
                                Client.id.in_(client_ids or []))).scalars())
    incident = Incident(site_id=site.id, stage=Stage.DRAFT, type=type, occurred_at=occurred_at,
                        booth_id=booth.id if booth else None,
                        area=None if booth else location, narrative=narrative or "",
                        reported_by=actor.staff_id, response_id=response_id, created_at=now,
                        updated_at=now, clients=clients)
    db.session.add(incident)
    db.session.flush()
    record(actor, "incident_created", "incident", incident.id, site_id=site.id, now=now,
           detail={"response_id": response_id})
    return incident


# What an overdose response's kind files as.
INCIDENT_TYPE_FOR_KIND = {"opioid": "overdose", "stimulant": "stimulant_overdose",
                          "other": "medical_emergency"}


@signals.response_closed.connect
def draft_from_response(response: OverdoseResponse, *, actor: Actor, now: datetime) -> Incident:
    """A closed overdose response's draft report, its narrative the console's timeline.

    Times in the site's zone; staff are not named in the narrative (the response keeps
    who did what), so the report's identifier check has nothing to flag. Does not commit:
    the close's unit of work does.
    """
    site = db.session.get(Site, response.site_id)
    zone = site.zone
    lines = []
    for entry in response_timeline(response):
        at = datetime.fromisoformat(entry["time"]).astimezone(zone)
        lines.append(f"{at:%H:%M:%S} {entry['detail']}" + (" (struck)" if entry["struck"]
                                                            else ""))
    return draft_incident(
        site, type=INCIDENT_TYPE_FOR_KIND[response.kind], occurred_at=response.started_at,
        location=response.booth.label if response.booth is not None else response.location,
        narrative="Overdose response, as recorded on the console:\n" + "\n".join(lines),
        client_ids=[response.client_id] if response.client_id else [], actor=actor, now=now,
        response_id=response.id)


@signals.stock_discrepancy.connect
def draft_from_count(count, *, actor: Actor, now: datetime) -> Incident:
    """A controlled-drug count's difference as a draft report (no client, no names). Does
    not commit: the count's unit of work does."""
    site = db.session.get(Site, count.site_id)
    drug = count.drug
    narrative = (f"Controlled-drug count by two staff: {drug.name} {drug.strength}, "
                 f"register balance {count.expected} {drug.unit}, counted {count.counted} "
                 f"{drug.unit} (difference {count.difference:+d}). A loss is reported to the "
                 f"regulator within 10 days of its discovery.")
    return draft_incident(site, type="other", occurred_at=now, location=None,
                          narrative=narrative, client_ids=[], actor=actor, now=now)


@signals.response_draft.connect
def draft_of_response(response: OverdoseResponse, *, reporter_id: int) -> Incident | None:
    """The report the response's close drafted, if ``reporter_id`` reported it."""
    return db.session.execute(db.select(Incident).filter_by(
        site_id=response.site_id, response_id=response.id, reported_by=reporter_id)
        .order_by(Incident.id).limit(1)).scalar_one_or_none()


def _may_amend(incident: Incident, actor: Actor, roles: set[str]) -> bool:
    return incident.reported_by == actor.staff_id or Role.REVIEWER in roles


def update_incident(incident: Incident, data: dict, *, actor: Actor, roles: set[str],
                    now: datetime, amendment_reason: str | None = None) -> Incident:
    """Save a draft (its reporter; autosave calls this), or amend a submitted report.

    After submission every change is an amendment: it needs a reason and lands in the
    report's history. Raises Forbidden for anyone else, Invalid without a reason.
    """
    site = db.session.get(Site, incident.site_id)
    if incident.stage == Stage.DRAFT:
        if incident.reported_by != actor.staff_id:
            raise Forbidden("Only the person who wrote a draft may change it.")
        changes = _apply(incident, site, data)
        if changes:
            incident.updated_at = now
            record(actor, "incident_draft_saved", "incident", incident.id, site_id=site.id,
                   now=now, detail={"fields": sorted(changes)})
        commit(REPORT_CHANGED)
        return incident
    if not _may_amend(incident, actor, roles):
        raise Forbidden("Only the reporter or a reviewer may amend a submitted report.")
    reason = (amendment_reason or "").strip()
    if not reason:
        raise Invalid("A submitted report changes only by amendment.", {"amendment_reason": [
            "Say why the report is being amended; the history shows it."]})
    errors = _identifier_errors(data, site=site) if any(data.get(f) for f in FREE_TEXT) else {}
    if errors and not data.get("identifiers_checked"):
        raise Invalid("The text may identify someone.", errors)
    changes = _apply(incident, site, data)
    if not changes:
        raise Invalid("Nothing to amend.", {"amendment_reason": [
            "The report already says this; change a field to amend it."]})
    incident.updated_at = now
    db.session.add(IncidentHistory(incident=incident, at=now, staff_id=actor.staff_id,
                                   kind="amendment", reason=reason, changes=changes,
                                   stage_from=incident.stage, stage_to=incident.stage))
    record(actor, "incident_amended", "incident", incident.id, site_id=site.id, now=now,
           detail={"fields": sorted(changes)})
    live.announce(site.id, "incidents")
    commit(REPORT_CHANGED)
    return incident


def _missing(incident: Incident) -> dict:
    errors = {}
    if not incident.narrative.strip():
        errors["narrative"] = ["Say what happened."]
    if not incident.immediate_actions.strip():
        errors["immediate_actions"] = ["Say what was done straight away."]
    if incident.booth_id is None and not (incident.area or "").strip():
        errors["area"] = ["Choose the booth or name the area where it happened."]
    return errors


def submit_incident(incident: Incident, *, actor: Actor, now: datetime,
                    identifiers_checked: bool = False) -> Incident:
    """Send a complete draft for review (its reporter only).

    Refuses a report whose free text looks like it names someone (Invalid, per field)
    unless the reporter has checked those findings and says they are not identifiers.
    """
    if incident.reported_by != actor.staff_id:
        raise Forbidden("Only the person who wrote this report may submit it.")
    if incident.stage != Stage.DRAFT:
        raise _stage_conflict(incident, "submit it")
    site = db.session.get(Site, incident.site_id)
    errors = _missing(incident)
    if errors:
        raise Invalid("The report is not complete yet.", errors)
    if not identifiers_checked:
        errors = _identifier_errors({f: getattr(incident, f) for f in FREE_TEXT}, site=site)
        if errors:
            raise Invalid("The text may identify someone.", errors)
    _move(incident, Stage.SUBMITTED, actor=actor, now=now)
    incident.submitted_at = now
    record(actor, "incident_submitted", "incident", incident.id, site_id=site.id, now=now)
    live.announce(site.id, "incidents")
    commit(REPORT_CHANGED)
    return incident


def _move(incident: Incident, to: Stage, *, actor: Actor, now: datetime,
          reason: str | None = None) -> None:
    db.session.add(IncidentHistory(incident=incident, at=now, staff_id=actor.staff_id,
                                   kind="stage", stage_from=incident.stage, stage_to=to.value,
                                   reason=reason))
    incident.stage = to.value
    incident.updated_at = now


def review_incident(incident: Incident, data: dict, *, actor: Actor, roles: set[str],
                    now: datetime) -> Incident:
    """A reviewer's work on a report: factors, actions, lessons, feedback, and a decision.

    ``data`` may hold ``factor_ids`` (the full chosen set), ``new_actions``
    ([{description, owner_id, due_on}]), ``done_action_ids``, ``lessons_learned``,
    ``feedback``, and ``decision`` (start_review, request_approval, return, approve).
    Raises Forbidden for a non-reviewer or for approving one's own report, Conflict when
    the stage does not allow it.
    """
    if Role.REVIEWER not in roles:
        raise Forbidden("Only the site's reviewers may review incident reports.")
    site = db.session.get(Site, incident.site_id)
    decision = data.get("decision")
    if decision and decision not in TRANSITIONS:
        raise Invalid("Unknown decision.", {"decision": [f"One of {', '.join(TRANSITIONS)}."]})
    if decision == "start_review":
        if incident.stage != Stage.SUBMITTED:
            raise _stage_conflict(incident, "start its review")
        _move(incident, Stage.UNDER_REVIEW, actor=actor, now=now)
        incident.reviewer_id = actor.staff_id
        record(actor, "incident_review_started", "incident", incident.id, site_id=site.id,
               now=now)
    edits = {k for k in ("factor_ids", "new_actions", "done_action_ids", "lessons_learned",
                         "feedback") if data.get(k) not in (None, [], "")}
    if edits and incident.stage not in REVIEWING:
        raise _stage_conflict(incident, "record review findings")
    _record_findings(incident, site, data, actor=actor, now=now)
    if decision and decision != "start_review":
        start, end = TRANSITIONS[decision]
        if incident.stage != start:
            raise _stage_conflict(incident, decision.replace("_", " "))
        if decision == "approve":
            if incident.reported_by == actor.staff_id:
                raise Forbidden("You wrote this report: another reviewer must approve it.")
            incident.closed_at, incident.closed_by = now, actor.staff_id
        if decision == "request_approval" and not incident.feedback.strip():
            raise Invalid("Feedback for the reporter is missing.", {"feedback": [
                "Write the feedback the reporter will read before asking for approval."]})
        _move(incident, end, actor=actor, now=now, reason=data.get("decision_note"))
        record(actor, f"incident_{decision}", "incident", incident.id, site_id=site.id, now=now)
    live.announce(site.id, "incidents")
    commit(REPORT_CHANGED)
    return incident


def _record_findings(incident: Incident, site: Site, data: dict, *, actor: Actor,
                     now: datetime) -> None:
    if data.get("factor_ids") is not None:
        chosen = list(db.session.execute(db.select(ContributingFactor).where(
            ContributingFactor.id.in_(data["factor_ids"]),
            ContributingFactor.site_id == site.id)).scalars())
        if len(chosen) != len(set(data["factor_ids"])):
            raise Invalid("Unknown contributing factor.", {"factor_ids": [
                "Choose factors from this site's list."]})
        if {f.id for f in incident.factors} != {f.id for f in chosen}:
            incident.factors = chosen
            record(actor, "incident_factors_set", "incident", incident.id, site_id=site.id,
                   now=now, detail={"factors": sorted(f.id for f in chosen)})
    for name in ("lessons_learned", "feedback"):
        if data.get(name) is not None and data[name] != getattr(incident, name):
            setattr(incident, name, data[name])
            record(actor, f"incident_{name}_set", "incident", incident.id, site_id=site.id,
                   now=now)
    for item in data.get("new_actions") or []:
        owner = db.session.get(Staff, item["owner_id"])
        if owner is None or not owner.roles_at(site.id):
            raise Invalid("Unknown action owner.", {"new_actions": [
                "The owner must be a staff member of this site."]})
        action = IncidentAction(incident=incident, description=item["description"],
                                owner_id=owner.id, due_on=item["due_on"],
                                created_by=actor.staff_id, created_at=now)
        db.session.add(action)
        db.session.flush()
        record(actor, "incident_action_added", "incident_action", action.id, site_id=site.id,
               now=now, detail={"incident": incident.id, "owner": owner.id})
    for action_id in data.get("done_action_ids") or []:
        action = db.session.get(IncidentAction, action_id)
        if action is None or action.incident_id != incident.id:
            raise Invalid("Unknown action.", {"done_action_ids": ["Not an action of this "
                                                                  "report."]})
        if action.done_at is None:
            action.done_at = now
            record(actor, "incident_action_done", "incident_action", action.id,
                   site_id=site.id, now=now)
    if any(data.get(k) not in (None, [], "") for k in
           ("factor_ids", "new_actions", "done_action_ids", "lessons_learned", "feedback")):
        incident.updated_at = now


def staff_of(site: Site) -> list[Staff]:
    """Everyone with a role at the site: action owners."""
    return list(db.session.execute(
        db.select(Staff).join(StaffRole).where(StaffRole.site_id == site.id, Staff.active)
        .distinct().order_by(Staff.display_name)).scalars())


def reviewers_of(site: Site) -> list[Staff]:
    return list(db.session.execute(
        db.select(Staff).join(StaffRole).where(StaffRole.site_id == site.id,
                                               StaffRole.role == Role.REVIEWER, Staff.active)
        .distinct()).scalars())


def overdue_actions(site: Site, *, today: date) -> list[IncidentAction]:
    """Open actions past their due date, oldest first."""
    return list(db.session.execute(
        db.select(IncidentAction).join(Incident)
        .where(Incident.site_id == site.id, IncidentAction.done_at.is_(None),
               IncidentAction.due_on < today)
        .options(selectinload(IncidentAction.owner), selectinload(IncidentAction.incident))
        .order_by(IncidentAction.due_on)).scalars())


# --- Contributing factors (the admin's two-level list) ---------------------------------------


def factors_for(site: Site, *, include_inactive: bool = False) -> list[ContributingFactor]:
    """The site's factors, groups before their items; the default list if it has none."""
    query = db.select(ContributingFactor).where(ContributingFactor.site_id == site.id)
    rows = list(db.session.execute(query).scalars())
    if not rows:
        _seed_factors(site)
        rows = list(db.session.execute(query).scalars())
    if not include_inactive:
        rows = [r for r in rows if r.active and (r.parent is None or r.parent.active)]
    return rows


def factor_tree(site: Site, *, include_inactive: bool = False) -> list[tuple]:
    """[(group, [items])] in list order."""
    rows = factors_for(site, include_inactive=include_inactive)
    groups = sorted((r for r in rows if r.parent_id is None), key=lambda r: (r.position, r.id))
    return [(g, sorted((r for r in rows if r.parent_id == g.id),
                       key=lambda r: (r.position, r.id))) for g in groups]


def _seed_factors(site: Site) -> None:
    for position, (group, items) in enumerate(DEFAULT_FACTORS.items()):
        parent = ContributingFactor(site_id=site.id, label=group, position=position)
        db.session.add(parent)
        db.session.flush()
        for item_position, item in enumerate(items):
            db.session.add(ContributingFactor(site_id=site.id, parent_id=parent.id, label=item,
                                              position=item_position))
    db.session.commit()


def add_factor(site: Site, *, label: str, parent_id: int | None, actor: Actor,
               now: datetime) -> ContributingFactor:
    """Add a group (no parent) or an item under a group (admin)."""
    label = (label or "").strip()
    if not label:
        raise Invalid("Name the factor.", {"label": ["Name the factor."]})
    factors_for(site)
    if parent_id is not None:
        parent = db.session.get(ContributingFactor, parent_id)
        if parent is None or parent.site_id != site.id or parent.parent_id is not None:
            raise Invalid("Unknown group.", {"parent_id": ["Choose one of the groups."]})
    exists = db.session.execute(db.select(ContributingFactor).filter_by(
        site_id=site.id, parent_id=parent_id, label=label)).scalar_one_or_none()
    if exists is not None:
        raise Invalid("That factor exists.", {"label": ["This list already has it."]})
    factor = ContributingFactor(site_id=site.id, parent_id=parent_id, label=label, position=99)
    db.session.add(factor)
    db.session.flush()
    record(actor, "factor_added", "contributing_factor", factor.id, site_id=site.id, now=now)
    db.session.commit()
    return factor


def set_factor_active(site: Site, factor_id: int, *, active: bool, actor: Actor,
                      now: datetime) -> ContributingFactor:
    """Retire a factor (reports keep it) or bring it back (admin)."""
    factor = db.session.get(ContributingFactor, factor_id)
    if factor is None or factor.site_id != site.id:
        raise NotFound("No such contributing factor at this site.")
    factor.active = active
    record(actor, "factor_retired" if not active else "factor_restored",
           "contributing_factor", factor.id, site_id=site.id, now=now)
    db.session.commit()
    return factor


def validate_choice(value: str, allowed: dict, field: str) -> None:
    if value not in allowed:
        raise Invalid(f"Unknown {field}.", {field: [f"One of {', '.join(allowed)}."]})


__all__ = ["HARM_GRADES", "INCIDENT_TYPES"]
