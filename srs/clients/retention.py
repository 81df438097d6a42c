"""Retention: records older than a site's period stop leading back to a client.

A site that sets ``retention_days`` keeps every record and every count, but a visit,
take-home kit, overdose response, referral offer, referral or incident link older than the
period stops pointing at its client: it points at a placeholder made for that client in that
run, with the client's gender and birth year, a random code no one can type (lower case,
and every lookup upper-cases what staff type) and nothing else. One placeholder per client,
so the monthly report counts the same unique clients, genders, age bands and new clients;
the weekly figures count visits, incidents and doses, which all stay. The client's code,
where it appears in a retired overdose record or incident report, becomes the placeholder's.
Then the clients with no visit left in the period lose their handle, note, restriction and
care profile, and those no record points at any more are deleted, code and all.

The period ends at the start of a site month: the month holding the day ``retention_days``
before today. Nothing younger than the period is touched, and no month's visits of one
person are split between them and a placeholder, which would count them twice.

Every step is a batch of clients committed on its own, so no lock is held for long, and a
record is old or not by its own time (a visit's arrival; an offer, referral or response by
its visit's): running again changes nothing, and a run stopped halfway is finished by the
next one.

Callers: the daily job (``apply_retention``), the retention page (``retention_preview``).
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import SystemRandom

from sqlalchemy import Table, and_, case, exists, func, or_

from srs.auth.service import Actor, record
from srs.clients.models import Client
from srs.errors import log_failure
from srs.extensions import db
from srs.sites.models import Site

log = logging.getLogger(__name__)

# Clients per transaction: each batch commits, so the floor never waits long on a lock.
BATCH = 200
# Lower case: a typed code is upper-cased before every lookup, so none can reach one.
PLACEHOLDER_PREFIX = "retired-"

# What a run changes, in the order the page and the audit trail give them.
COUNTS = ("clients", "visits", "take_home_kits", "overdose_responses", "referral_offers",
          "referrals", "incident_links", "naloxone_trainees", "hat_enrolments",
          "compassion_members", "clients_cleared", "care_profiles", "clients_removed")
COUNT_LABELS = {
    "clients": "Clients whose older records go to a placeholder",
    "visits": "Visits",
    "take_home_kits": "Take-home naloxone kits",
    "overdose_responses": "Overdose responses",
    "referral_offers": "Referral offers",
    "referrals": "Referrals",
    "incident_links": "Incident reports naming the client",
    "naloxone_trainees": "Naloxone trainee records",
    "hat_enrolments": "Ended treatment enrolments",
    "compassion_members": "Ended compassion-club memberships",
    "clients_cleared": "Clients with no visit in the period: handle, note and flags removed",
    "care_profiles": "Care profiles removed",
    "clients_removed": "Client codes removed (no record left)",
}

_shuffle = SystemRandom().shuffle


@dataclass(frozen=True)
class Preview:
    """What retention at ``days`` would change now: records older than ``cutoff``."""

    days: int
    cutoff: datetime
    counts: dict


def retention_cutoff(site: Site, days: int, now: datetime) -> datetime:
    """The start (UTC) of the site month holding the day ``days`` before ``now``'s date."""
    day = site.local_date(now) - timedelta(days=days)
    return site.midnight(day.replace(day=1))


# --- Which records are old ---------------------------------------------------------------------


def _table(name: str) -> Table:
    """A floor package's table, by name: clients stand below the floor and import none of
    it; the app has every model loaded when a page or the job asks."""
    return db.metadata.tables[name]


def _old_records(site_id: int, cutoff: datetime) -> tuple:
    """(count name, table, its client column, when a row is older than ``cutoff``).

    Offers, referrals and responses made in a visit go with the visit, so a visit and what
    it holds never end up with different clients.
    """
    (visit, kit, response, offer, referral, incident, link, trainee, attended, session,
     enrolment, member) = (
        _table(name) for name in (
            "visit", "take_home_kit", "overdose_response", "referral_offer", "referral",
            "incident", "incident_client", "naloxone_trainee", "naloxone_session_trainee",
            "naloxone_training_session", "hat_enrolment", "compassion_member"))
    old_visits = db.select(visit.c.id).where(visit.c.site_id == site_id,
                                             visit.c.arrived_at < cutoff)
    old_offers = db.select(offer.c.id).where(offer.c.visit_id.in_(old_visits))
    old_incidents = db.select(incident.c.id).where(incident.c.site_id == site_id,
                                                   incident.c.occurred_at < cutoff)
    return (
        ("visits", visit, visit.c.client_id,
         and_(visit.c.site_id == site_id, visit.c.arrived_at < cutoff)),
        ("take_home_kits", kit, kit.c.client_id,
         and_(kit.c.site_id == site_id, kit.c.given_at < cutoff)),
        ("overdose_responses", response, response.c.client_id,
         and_(response.c.site_id == site_id, or_(
             and_(response.c.visit_id.is_not(None), response.c.visit_id.in_(old_visits)),
             and_(response.c.visit_id.is_(None), response.c.started_at < cutoff)))),
        ("referral_offers", offer, offer.c.client_id,
         and_(offer.c.site_id == site_id, offer.c.visit_id.in_(old_visits))),
        ("referrals", referral, referral.c.client_id,
         and_(referral.c.site_id == site_id, referral.c.offer_id.in_(old_offers))),
        ("incident_links", link, link.c.client_id, link.c.incident_id.in_(old_incidents)),
        # A client trained in naloxone: old once they took part in no session since the
        # cutoff (a session's day is the site's; the cutoff's UTC date is never later).
        ("naloxone_trainees", trainee, trainee.c.client_id,
         and_(trainee.c.site_id == site_id, trainee.c.created_at < cutoff,
              ~db.exists().where(attended.c.trainee_id == trainee.c.id,
                                 session.c.id == attended.c.session_id,
                                 session.c.held_on >= cutoff.date()))),
        # A treatment record: old once the treatment ended before the cutoff, never while
        # the patient is in treatment or on hold.
        ("hat_enrolments", enrolment, enrolment.c.client_id,
         and_(enrolment.c.site_id == site_id, enrolment.c.ended_at.is_not(None),
              enrolment.c.ended_at < cutoff)),
        # A club membership: old once it ended before the cutoff, as a treatment is.
        ("compassion_members", member, member.c.client_id,
         and_(member.c.site_id == site_id, member.c.ended_at.is_not(None),
              member.c.ended_at < cutoff)),
    )


# Deleted with the client's personal data, never given to a placeholder.
PERSONAL_TABLES = ("care_profile",)
# Legal registers, append-only and kept whole (controlled drugs: at least 2 years): a client
# they name keeps their code, whatever the site's retention period.
KEPT_REFERENCES = (("controlled_entry", "client_id"),)


def unknown_references() -> list:
    """Client columns of tables retention has no rule for (``_old_records``): a client they
    name is never deleted, and a test keeps the list empty."""
    known = {(table.name, column.name) for _n, table, column, _old
             in _old_records(0, datetime.min)}
    return sorted((column for table in db.metadata.tables.values() for column in table.c
                   if any(fk.column is Client.__table__.c.id for fk in column.foreign_keys)
                   and (table.name, column.name) not in known
                   and (table.name, column.name) not in KEPT_REFERENCES
                   and table.name not in PERSONAL_TABLES), key=str)


def _site_clients(site_id: int):
    """The site's clients that are people, not placeholders."""
    return db.select(Client.id).where(Client.site_id == site_id, Client.placeholder.is_(False))


def _has_old_records(site_id: int, cutoff: datetime):
    """The client (a row of ``Client`` in the query) is named by a record older than
    ``cutoff``; each test is one probe of an index on the client column."""
    return or_(*(exists().where(column == Client.id, old)
                 for _name, _table, column, old in _old_records(site_id, cutoff)))


def _people_with_old_records(site_id: int, cutoff: datetime, *, after: int = 0):
    return db.select(Client.id).where(
        Client.site_id == site_id, Client.placeholder.is_(False), Client.id > after,
        _has_old_records(site_id, cutoff))


def _without_visit_in_period(site_id: int, cutoff: datetime):
    """People of the site known before the period who have not visited since it began."""
    visit = _table("visit")
    recent = exists().where(visit.c.client_id == Client.id, visit.c.arrived_at >= cutoff)
    return and_(Client.site_id == site_id, Client.placeholder.is_(False),
                Client.created_at < cutoff, ~recent)


def _keeps_records(site_id: int, cutoff: datetime):
    """Some record in the period still names the client (none older does, after a run), or
    one retention has no rule for."""
    return or_(*(exists().where(column == Client.id, ~old)
                 for _name, _table, column, old in _old_records(site_id, cutoff)),
               *(exists().where(column == Client.id) for column in unknown_references()),
               *(exists().where(_table(name).c[column] == Client.id)
                 for name, column in KEPT_REFERENCES))


def _personal():
    """Something about the person beyond the code: handle, note, restriction, care profile."""
    return or_(Client.handle.is_not(None), Client.flag_note.is_not(None),
               Client.restricted_until.is_not(None), Client.restriction_reason.is_not(None),
               exists().where(_table("care_profile").c.client_id == Client.id))


def _count(query) -> int:
    return db.session.scalar(db.select(func.count()).select_from(query.subquery()))


def retention_preview(site: Site, days: int, now: datetime) -> Preview:
    """What a run at ``now`` with retention at ``days`` would change, counted as the run
    counts (the retention page's confirmation states it). Changes nothing."""
    cutoff = retention_cutoff(site, days, now)
    counts = {}
    people = _site_clients(site.id)
    for name, table, column, old in _old_records(site.id, cutoff):
        counts[name] = _count(db.select(column).select_from(table)
                              .where(old, column.in_(people)))
    counts["clients"] = _count(_people_with_old_records(site.id, cutoff))
    leaving = _without_visit_in_period(site.id, cutoff)
    keeps = _keeps_records(site.id, cutoff)
    counts["clients_cleared"] = _count(db.select(Client.id).where(leaving, keeps, _personal()))
    profile = _table("care_profile")
    counts["care_profiles"] = _count(db.select(profile.c.client_id).join(
        Client, Client.id == profile.c.client_id).where(leaving))
    counts["clients_removed"] = _count(db.select(Client.id).where(leaving, ~keeps))
    return Preview(days=days, cutoff=cutoff, counts={name: counts[name] for name in COUNTS})


# --- The run ---------------------------------------------------------------------------------


def _placeholder_for(client: Client, *, now: datetime) -> Client:
    return Client(site_id=client.site_id, code=PLACEHOLDER_PREFIX + secrets.token_hex(12),
                  gender=client.gender, birth_year=client.birth_year, placeholder=True,
                  earlier_visits_retired=client.earlier_visits_retired, created_at=now)


def _replace_codes(value, codes: dict):
    """``value`` (text, or JSON data holding text) with each old code replaced by its
    placeholder's."""
    if isinstance(value, str):
        for old, new in codes.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {key: _replace_codes(item, codes) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_codes(item, codes) for item in value]
    return value


def _rewrite(table: Table, row_id: int, values: dict) -> None:
    if "version" in table.c:  # a screen holding the row sees it changed
        values[table.c.version] = table.c.version + 1
    db.session.execute(db.update(table).where(table.c.id == row_id).values(values))


def _replace_codes_in_records(placeholder_ids: list[int], codes: dict) -> None:
    """Where a retired overdose record or incident report writes a client's code, write the
    placeholder's: the frozen report draft, the narrative, the amendments' history."""
    response, incident, history, link = (_table(name) for name in (
        "overdose_response", "incident", "incident_history", "incident_client"))
    incident_ids = db.select(link.c.incident_id).where(link.c.client_id.in_(placeholder_ids))
    texts = (
        (response, ("report_draft",), and_(response.c.client_id.in_(placeholder_ids),
                                           response.c.report_draft.is_not(None))),
        (incident, ("narrative", "immediate_actions", "lessons_learned", "feedback"),
         incident.c.id.in_(incident_ids)),
        (history, ("reason", "changes"), history.c.incident_id.in_(incident_ids)),
    )
    for table, names, where in texts:
        columns = [table.c[name] for name in names]
        for row in db.session.execute(db.select(table.c.id, *columns).where(where)).all():
            changed = {table.c[name]: _replace_codes(value, codes)
                       for name, value in zip(names, row[1:], strict=True)
                       if _replace_codes(value, codes) != value}
            if changed:
                _rewrite(table, row.id, changed)


def _retire_batch(site_id: int, cutoff: datetime, ids: list[int], *, now: datetime,
                  counts: dict) -> None:
    """Give the old records of the clients ``ids`` to a placeholder each. Does not commit."""
    clients = list(db.session.execute(db.select(Client).where(Client.id.in_(ids))).scalars())
    # Made in random order, so a placeholder's id says nothing of whose it is.
    _shuffle(clients)
    placeholders = {client.id: _placeholder_for(client, now=now) for client in clients}
    db.session.add_all(placeholders.values())
    db.session.flush()
    visit = _table("visit")
    had_old_visits = set(db.session.execute(db.select(visit.c.client_id).where(
        visit.c.site_id == site_id, visit.c.arrived_at < cutoff,
        visit.c.client_id.in_(ids))).scalars())
    for name, table, column, old in _old_records(site_id, cutoff):
        values = {column: case({client_id: p.id for client_id, p in placeholders.items()},
                               value=column)}
        if "version" in table.c:  # a screen holding the row sees it changed
            values[table.c.version] = table.c.version + 1
        counts[name] += db.session.execute(
            db.update(table).where(old, column.in_(ids)).values(values)).rowcount
    for client in clients:
        if client.id in had_old_visits:
            client.earlier_visits_retired = True
    _replace_codes_in_records([p.id for p in placeholders.values()],
                              {c.code: placeholders[c.id].code for c in clients})
    # An ended treatment keeps its record, not the legal identity that named the patient.
    enrolment = _table("hat_enrolment")
    db.session.execute(db.update(enrolment).where(enrolment.c.client_id.in_(
        [p.id for p in placeholders.values()])).values(
        legal_name_enc=None, date_of_birth_enc=None, health_number_enc=None))
    # So does an ended club membership where the site's rules needed one.
    club = _table("compassion_member")
    db.session.execute(db.update(club).where(club.c.client_id.in_(
        [p.id for p in placeholders.values()])).values(
        legal_name_enc=None, date_of_birth_enc=None, health_number_enc=None))
    counts["clients"] += len(clients)


def _clear_batch(site_id: int, cutoff: datetime, counts: dict, *, after: int) -> int | None:
    """Clear or delete the next batch of clients (by id, after ``after``) with no visit left
    in the period; return the batch's last id, None when there was none. Does not commit."""
    leaving = _without_visit_in_period(site_id, cutoff)
    keeps = _keeps_records(site_id, cutoff)
    ids = list(db.session.execute(db.select(Client.id).where(
        leaving, Client.id > after, or_(_personal(), ~keeps))
        .order_by(Client.id).limit(BATCH)).scalars())
    if not ids:
        return None
    gone = list(db.session.execute(db.select(Client.id).where(
        Client.id.in_(ids), ~keeps)).scalars())
    profile = _table("care_profile")
    counts["care_profiles"] += db.session.execute(db.delete(profile).where(
        profile.c.client_id.in_(ids))).rowcount
    cleared = [i for i in ids if i not in set(gone)]
    if cleared:
        counts["clients_cleared"] += db.session.execute(db.update(Client).where(
            Client.id.in_(cleared)).values(handle=None, flag_note=None, restricted_until=None,
                                           restriction_reason=None)
            .execution_options(synchronize_session=False)).rowcount
    if gone:
        counts["clients_removed"] += db.session.execute(db.delete(Client).where(
            Client.id.in_(gone)).execution_options(synchronize_session=False)).rowcount
    return ids[-1]


def _add(counts: dict, batch: dict) -> None:
    for name, n in batch.items():
        counts[name] += n


def retire_site(site: Site, *, now: datetime, actor: Actor | None = None) -> dict:
    """Apply ``site``'s retention as at ``now``, a batch per commit; return the counts
    (``COUNTS``). Audited once per run, ``retention_applied`` with the counts, also when a
    failure stopped it halfway (``complete`` false; the next run finishes)."""
    actor = actor or Actor.system("retention")
    site_id, days = site.id, site.retention_days
    cutoff = retention_cutoff(site, days, now)
    counts = dict.fromkeys(COUNTS, 0)
    complete = False
    try:
        # Batches follow client ids, so each client is looked at once per step.
        last = 0
        while True:
            ids = list(db.session.execute(_people_with_old_records(site_id, cutoff, after=last)
                                          .order_by(Client.id).limit(BATCH)).scalars())
            if not ids:
                break
            batch = dict.fromkeys(COUNTS, 0)
            _retire_batch(site_id, cutoff, ids, now=now, counts=batch)
            db.session.commit()
            _add(counts, batch)  # only what was committed: a failed batch rolls back
            last = ids[-1]
        last = 0
        while True:
            batch = dict.fromkeys(COUNTS, 0)
            if (last := _clear_batch(site_id, cutoff, batch, after=last)) is None:
                break
            db.session.commit()
            _add(counts, batch)
        complete = True
    except Exception as error:
        db.session.rollback()
        log_failure(log, f"retention stopped at site {site_id}", error)
    finally:
        record(actor, "retention_applied", "site", site_id, site_id=site_id, now=now,
               detail={"retention_days": days, "before": cutoff.isoformat(),
                       "complete": complete, **counts})
        db.session.commit()
    return counts


def apply_retention(*, now: datetime) -> dict:
    """The daily job: apply each site's retention that has one; return counts by site id."""
    site_ids = list(db.session.execute(db.select(Site.id).where(
        Site.retention_days.is_not(None)).order_by(Site.id)).scalars())
    return {site_id: retire_site(db.session.get(Site, site_id), now=now)
            for site_id in site_ids}
