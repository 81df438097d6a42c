"""Reading the audit trail: a site's events, filtered, newest first, a page at a time.

Callers: ``srs.audit.views`` (the page and its CSV) and ``srs.api.audit``. Every query is
shaped for the trail's indexes (``at``, ``staff_id``, ``site_id`` and ``(entity,
entity_id)``) and pages by keyset, so the thousandth page costs what the first does.

``events_for_client`` is the privacy officer's question, "who has looked at or changed this
record", as a filter any other reader can reuse. Reading the trail for a client is itself
audited (``audit_viewed``, by the client's id and the names of the filters set).
"""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import String, and_, cast, or_, union
from sqlalchemy.sql import ColumnElement

from srs.alerts.models import Alert
from srs.audit.models import ACTIONS, ENTITIES, AuditEvent, entity_of, in_words
from srs.auth.models import Staff, StaffRole
from srs.auth.service import Actor, record
from srs.booths.models import Visit
from srs.clients.models import Client
from srs.compassion.models import Member
from srs.extensions import db
from srs.hat.models import HatEnrolment, HatPrescription
from srs.incidents.models import Incident, IncidentAction, incident_client
from srs.overdose.models import OverdoseResponse
from srs.referrals.models import Referral, ReferralOffer
from srs.sites.models import Site

PER_PAGE = 50
# The CSV reads the trail in chunks of this many rows: memory stays flat on any range.
CSV_CHUNK = 1000
CSV_HEADER = ("time", "person", "action", "action_words", "entity", "entity_id", "origin",
              "detail")


@dataclass
class AuditFilters:
    """What the reader asked for; ``client`` is the site's record the code named."""

    person: int | None = None
    action: str | None = None
    client: Client | None = None
    entity: str | None = None
    entity_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # The names of the filters set, as the URL carries them: what ``audit_viewed`` records.
    names: list[str] = field(default_factory=list)
    # A client code that names no client of the site: nothing matches (not everything).
    unknown_client: bool = False


@dataclass
class AuditPage:
    events: list[AuditEvent]
    newer: int | None  # ``after`` for the newer page
    older: int | None  # ``before`` for the older page


def filters_from(site: Site, data: dict) -> tuple[AuditFilters, str | None]:
    """The filters of validated input; and, when a client code names no client of the site,
    the message to show (the filters then match nothing rather than everything)."""
    filters = AuditFilters(person=data.get("person"), action=data.get("action"),
                           entity=data.get("entity"), entity_id=data.get("entity_id"))
    if data.get("since"):
        filters.since = site.midnight(data["since"])
    if data.get("until"):
        filters.until = site.midnight(data["until"] + timedelta(days=1))
    filters.names = [name for name, key in (
        ("person", "person"), ("action", "action"), ("client", "client"), ("entity", "entity"),
        ("entity_id", "entity_id"), ("from", "since"), ("to", "until")) if data.get(key)]
    missing = None
    code = (data.get("client") or "").strip().upper()
    if code:
        filters.client = client_by_code(site, code)
        if filters.client is None:
            filters.unknown_client = True
            missing = (f"No client of {site.name} has the code {code}. Check the code: "
                       f"nothing is shown for it.")
    return filters, missing


def client_by_code(site: Site, code: str) -> Client | None:
    """The site's client with this code (any case), or None."""
    return db.session.execute(db.select(Client).filter_by(
        site_id=site.id, code=code.strip().upper())).scalar_one_or_none()


def client_records(site: Site, client: Client) -> dict[str, list[int]]:
    """The ids of every record of ``site`` that concerns ``client``, by the trail's entity
    name: the client, their visits, alarms raised on those visits, their overdose responses,
    referral offers and referrals, incident reports that name them or were drafted from one
    of their responses, those reports' actions, their treatment enrolment and its
    prescriptions, and their compassion-club memberships. Each is a lookup on an index of a
    table far smaller than the trail."""
    visits = db.select(Visit.id).where(Visit.client_id == client.id, Visit.site_id == site.id)
    responses = db.select(OverdoseResponse.id).where(
        OverdoseResponse.site_id == site.id,
        or_(OverdoseResponse.client_id == client.id, OverdoseResponse.visit_id.in_(visits)))
    incidents = union(
        db.select(incident_client.c.incident_id).join(
            Incident, Incident.id == incident_client.c.incident_id).where(
            incident_client.c.client_id == client.id, Incident.site_id == site.id),
        db.select(Incident.id).where(Incident.site_id == site.id,
                                     Incident.response_id.in_(responses)))
    enrolments = db.select(HatEnrolment.id).where(HatEnrolment.client_id == client.id,
                                                  HatEnrolment.site_id == site.id)
    queries = {
        "visit": visits,
        "alert": db.select(Alert.id).where(Alert.site_id == site.id,
                                           Alert.visit_id.in_(visits)),
        "overdose_response": responses,
        "referral_offer": db.select(ReferralOffer.id).where(
            ReferralOffer.client_id == client.id, ReferralOffer.site_id == site.id),
        "referral": db.select(Referral.id).where(Referral.client_id == client.id,
                                                 Referral.site_id == site.id),
        "incident": db.select(incidents.subquery().c[0]),
        "incident_action": db.select(IncidentAction.id).where(
            IncidentAction.incident_id.in_(incidents)),
        # Treatment: their enrolment (each read of the legal identity is an event on it) and
        # its prescriptions.
        "hat_enrolment": enrolments,
        # The compassion club: their memberships (each step and conversation is an event on
        # the membership).
        "compassion_member": db.select(Member.id).where(Member.client_id == client.id,
                                                        Member.site_id == site.id),
        "hat_prescription": db.select(HatPrescription.id).where(
            HatPrescription.enrolment_id.in_(enrolments)),
    }
    found = {"client": [client.id]}
    for entity, query in queries.items():
        found[entity] = sorted(db.session.execute(query).scalars())
    return found


def events_for_client(site: Site, client: Client) -> ColumnElement[bool]:
    """A filter on ``AuditEvent``: what concerns ``client`` at ``site``, i.e. events about
    one of ``client_records`` (a visit's checks, consumption and referral suggestions are
    recorded on the visit).

    The records' ids are read first and named in the filter, so that the database meets
    them through the trail's ``(entity, entity_id)`` index: behind a subquery, PostgreSQL
    would walk the whole trail by time instead.
    """
    return or_(*(and_(AuditEvent.entity == entity,
                      AuditEvent.entity_id.in_([str(i) for i in ids]))
                 for entity, ids in client_records(site, client).items() if ids))


def _conditions(site: Site, filters: AuditFilters) -> list:
    where = [AuditEvent.site_id == site.id]
    if filters.unknown_client:
        where.append(db.false())
    if filters.person is not None:
        where.append(AuditEvent.staff_id == filters.person)
    if filters.action:
        where.append(AuditEvent.action == filters.action)
        if entity_of(filters.action) and not filters.entity:
            where.append(AuditEvent.entity == entity_of(filters.action))
    if filters.entity:
        where.append(AuditEvent.entity == filters.entity)
    if filters.entity_id:
        where.append(AuditEvent.entity_id == filters.entity_id)
    if filters.client is not None:
        where.append(events_for_client(site, filters.client))
    if filters.since is not None:
        where.append(AuditEvent.at >= filters.since)
    if filters.until is not None:
        where.append(AuditEvent.at < filters.until)
    return where


def _cursor(site: Site, event_id: int | None) -> AuditEvent | None:
    if event_id is None:
        return None
    event = db.session.get(AuditEvent, event_id)
    return event if event is not None and event.site_id == site.id else None


def _older_than(event: AuditEvent):
    # ``at <=`` first, so the index on ``at`` bounds the scan; the id breaks ties.
    return and_(AuditEvent.at <= event.at,
                or_(AuditEvent.at < event.at, AuditEvent.id < event.id))


def _newer_than(event: AuditEvent):
    return and_(AuditEvent.at >= event.at,
                or_(AuditEvent.at > event.at, AuditEvent.id > event.id))


def events_page(site: Site, filters: AuditFilters, *, before: int | None = None,
                after: int | None = None, per_page: int = PER_PAGE) -> AuditPage:
    """One page of the site's events, newest first: the first, the one older than event
    ``before`` or the one newer than event ``after`` (a cursor of another site, or gone,
    gives the first page). Reads only; see ``read_events`` for the audited read."""
    where = _conditions(site, filters)
    newest_first = (AuditEvent.at.desc(), AuditEvent.id.desc())
    cursor_after = _cursor(site, after)
    cursor_before = None if cursor_after else _cursor(site, before)
    if cursor_after is not None:
        rows = list(db.session.execute(
            db.select(AuditEvent).where(*where, _newer_than(cursor_after))
            .order_by(AuditEvent.at, AuditEvent.id).limit(per_page + 1)).scalars())
        if not rows:  # nothing newer (a stale link): the newest page
            return events_page(site, filters, per_page=per_page)
        more_newer = len(rows) > per_page
        events = rows[:per_page][::-1]
        return AuditPage(events, newer=events[0].id if more_newer else None,
                         older=events[-1].id)
    if cursor_before is not None:
        where.append(_older_than(cursor_before))
    rows = list(db.session.execute(
        db.select(AuditEvent).where(*where).order_by(*newest_first).limit(per_page + 1))
        .scalars())
    events = rows[:per_page]
    older = events[-1].id if events and len(rows) > per_page else None
    if cursor_before is None:
        return AuditPage(events, newer=None, older=older)
    return AuditPage(events, newer=events[0].id if events else cursor_before.id, older=older)


def read_events(site: Site, filters: AuditFilters, *, actor: Actor, now: datetime,
                before: int | None = None, after: int | None = None,
                per_page: int = PER_PAGE) -> AuditPage:
    """A page of events for a reader; a read filtered by a client is audited and committed
    (``audit_viewed`` on the client, with the names of the filters set)."""
    page = events_page(site, filters, before=before, after=after, per_page=per_page)
    audit_client_read(site, filters, actor=actor, now=now)
    return page


def audit_client_read(site: Site, filters: AuditFilters, *, actor: Actor, now: datetime,
                      export: bool = False) -> None:
    """Record that ``actor`` read a client's trail (nothing for a read of no client);
    commits."""
    if filters.client is None:
        return
    detail = {"filters": filters.names}
    if export:
        detail["export"] = "csv"
    record(actor, "audit_viewed", "client", filters.client.id, site_id=site.id, now=now,
           detail=detail)
    db.session.commit()


def all_events(site: Site, filters: AuditFilters) -> Iterator[AuditEvent]:
    """Every matching event, newest first, read a chunk at a time (for the CSV)."""
    before = None
    while True:
        page = events_page(site, filters, before=before, per_page=CSV_CHUNK)
        yield from page.events
        if page.older is None:
            return
        before = page.older


# --- Reading a row --------------------------------------------------------------------------


def people_of(events: list[AuditEvent]) -> dict[int, str]:
    """The display names of the staff behind ``events``, by id (one query)."""
    ids = {e.staff_id for e in events if e.staff_id is not None}
    if not ids:
        return {}
    return dict(db.session.execute(
        db.select(Staff.id, Staff.display_name).where(Staff.id.in_(ids))).all())


# What acted when no staff member did, in words (``Actor.system`` names and the like).
NOT_A_PERSON = {"scheduler": "SRS (scheduled job)", "system": "SRS", "cli": "SRS command line",
                "anonymous": "Someone not signed in"}


def person(event: AuditEvent, people: dict[int, str]) -> str:
    """Who acted: a staff member's name, else what the trail calls the actor."""
    if event.staff_id is not None and event.staff_id in people:
        return people[event.staff_id]
    if event.actor.startswith("display:"):
        return f"Wall display {event.actor.removeprefix('display:')}"
    return NOT_A_PERSON.get(event.actor, event.actor)


def action_words(event: AuditEvent) -> str:
    return in_words(event.action, ACTIONS)


def entity_words(event: AuditEvent) -> str:
    name = in_words(event.entity, ENTITIES)
    return f"{name} {event.entity_id}" if event.entity_id is not None else name


def detail_words(detail) -> str:
    """``detail`` on one line: ``key: value`` pairs; a change as ``from → to``."""
    if not detail:
        return ""
    if not isinstance(detail, dict):
        return str(detail)
    return "; ".join(f"{key.replace('_', ' ')}: {_value(value)}"
                     for key, value in detail.items())


def _value(value) -> str:
    if isinstance(value, dict) and set(value) == {"from", "to"}:
        return f"{_value(value['from'])} → {_value(value['to'])}"
    if isinstance(value, dict):
        return "{" + detail_words(value) + "}"
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value) or "none"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@dataclass(frozen=True)
class AuditRow:
    """One event as a reader sees it."""

    id: int
    at: datetime  # at the site's clock
    staff_id: int | None
    person: str
    action: str
    action_words: str
    entity: str
    entity_id: str | None
    entity_words: str
    origin: str | None
    detail: dict | None
    detail_words: str


def rows_of(site: Site, events: list[AuditEvent]) -> list[AuditRow]:
    """``events`` as readable rows (one query for the people's names)."""
    people = people_of(events)
    return [AuditRow(id=e.id, at=site.local(e.at), staff_id=e.staff_id,
                     person=person(e, people), action=e.action, action_words=action_words(e),
                     entity=e.entity, entity_id=e.entity_id, entity_words=entity_words(e),
                     origin=e.origin, detail=e.detail, detail_words=detail_words(e.detail))
            for e in events]


def csv_export(site: Site, filters: AuditFilters) -> Iterator[str]:
    """The CSV of every matching event, for a streamed body.

    A streamed body is read after the request's session has closed: the lines read the site
    and the client again, by id, in the session the stream opens.
    """
    site_id = site.id
    client_id = filters.client.id if filters.client is not None else None

    def lines() -> Iterator[str]:
        streamed_site = db.session.get(Site, site_id)
        if client_id is not None:
            filters.client = db.session.get(Client, client_id)
        yield from csv_lines(streamed_site, all_events(streamed_site, filters))

    return lines()


def csv_lines(site: Site, events: Iterator[AuditEvent]) -> Iterator[str]:
    """The CSV, a few hundred rows at a time: a header row, then one row per event, its
    time in ISO 8601 with the site's offset."""
    out = io.StringIO()
    writer = csv.writer(out)

    def written(rows) -> str:
        writer.writerows(rows)
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text

    yield written([CSV_HEADER])
    chunk: list[AuditEvent] = []
    for event in events:
        chunk.append(event)
        if len(chunk) >= 200:
            yield written(_csv_rows(site, chunk))
            chunk = []
    if chunk:
        yield written(_csv_rows(site, chunk))


def _csv_rows(site: Site, events: list[AuditEvent]) -> list[tuple]:
    return [(row.at.isoformat(timespec="seconds"), row.person, row.action, row.action_words,
             row.entity, row.entity_id or "", row.origin or "", row.detail_words)
            for row in rows_of(site, events)]


# --- The filters' choices -------------------------------------------------------------------


def staff_choices(site: Site) -> list[Staff]:
    """Everyone who holds, or once held, a role at the site: today's roles, and the staff
    the trail shows being given one here (found through ``(entity, entity_id)``)."""
    given_here = db.select(AuditEvent.entity_id).where(
        AuditEvent.entity == "staff", AuditEvent.site_id == site.id)
    holding = db.select(StaffRole.staff_id).where(StaffRole.site_id == site.id)
    return list(db.session.execute(
        db.select(Staff).where(or_(Staff.id.in_(holding),
                                   cast(Staff.id, String).in_(given_here)))
        .order_by(Staff.display_name, Staff.id)).scalars())


def action_choices() -> list[tuple[str, str]]:
    """Every action the trail can hold, by its words.

    The whole vocabulary rather than a ``DISTINCT`` over the site's events: no index holds
    actions, and that scan would grow with the trail."""
    return sorted(((name, words) for name, (words, _entity) in ACTIONS.items()),
                  key=lambda item: item[1])


def entity_choices() -> list[tuple[str, str]]:
    return sorted(ENTITIES.items(), key=lambda item: item[1])
