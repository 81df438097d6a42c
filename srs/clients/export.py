"""A client's access request: everything SRS holds about one client code at one site, and
who has looked at or changed it, as one CSV or one PDF for the site's privacy officer.

The client row is this package's; each floor package adds its own records through
``signals.client_record`` (visits, consumptions and checks; overdose responses and their
interventions; referral offers, referrals and outcomes; incidents that name the client;
take-home naloxone kits), and names the audit trail's entity of its rows, so the trail of
every one of them comes last. Callers: the client's page (``srs.clients.views``).
"""

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from flask import current_app

from srs import signals
from srs.auth.models import AuditEvent
from srs.auth.service import Actor, record
from srs.clients.models import Client
from srs.extensions import db
from srs.sites.models import Site

FORMATS = ("csv", "pdf")
# The order a reader meets the sections in; a kind not listed comes after these.
RECORD_ORDER = ("client", "visit", "consumption", "observation_check", "alert",
                "overdose_response", "intervention", "referral_offer", "referral",
                "care_profile", "take_home_kit", "hat_enrolment", "hat_prescription",
                "hat_assessment", "hat_dose", "incident", "audit_event")
AUDIT_COLUMNS = ("id", "at", "actor", "staff_id", "action", "entity", "entity_id", "origin",
                 "detail")
# Ids per IN (...) of the audit query: well under every database's limit on parameters;
# and per OR of LIKEs that finds the list reads showing them.
_CHUNK = 500
_LISTED_CHUNK = 50


@dataclass
class Section:
    """One kind of record about the client: its rows as dicts of ``columns``.

    ``audit_entity`` is the audit trail's ``entity`` for the rows' ``id`` (None when the
    trail names them under another record, as an intervention under its response).
    ``read_action``: an audit action the export records for each row's id (a treatment
    patient's legal identity, decrypted for their own export), or None.
    """

    record_type: str
    title: str
    columns: tuple[str, ...]
    rows: list[dict] = field(default_factory=list)
    audit_entity: str | None = None
    read_action: str | None = None


@dataclass
class ClientRecord:
    site: Site
    client: Client
    sections: list[Section]
    generated_at: datetime
    generated_by: str

    @property
    def filename_stem(self) -> str:
        # The client's id, not their code: a file name travels in mail subjects and logs.
        return f"client-record-{self.site.slug}-{self.client.id}-{self.generated_at:%Y%m%d}"


def section(record_type: str, title: str, records, columns: tuple[str, ...], *,
            audit_entity: str | None = None) -> Section:
    """A section of ``records`` (models), each row the named attributes of one."""
    return Section(record_type, title, columns,
                   [{name: getattr(r, name) for name in columns} for r in records],
                   audit_entity=audit_entity)


def _client_section(client: Client) -> Section:
    return section("client", "Client", [client], (
        "id", "code", "handle", "gender", "birth_year", "restricted_until",
        "restriction_reason", "flag_note", "created_at"), audit_entity="client")


def _events_naming(entity: str, ids: set[str], site: Site):
    """Audit events about one of ``ids`` of ``entity``: those naming it, and the list
    reads (no ``entity_id``) that showed it (``detail["shown"]``: a search, a list)."""
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        yield from db.session.execute(db.select(AuditEvent).where(
            AuditEvent.entity == entity,
            AuditEvent.entity_id.in_(ordered[start:start + _CHUNK]))).scalars()
    # The database narrows list reads by the ids' digits in the detail's text; the exact
    # match is made here, the same on SQLite and PostgreSQL.
    detail = db.cast(AuditEvent.detail, db.Text)
    for start in range(0, len(ordered), _LISTED_CHUNK):
        for event in db.session.execute(db.select(AuditEvent).where(
                AuditEvent.entity == entity, AuditEvent.entity_id.is_(None),
                AuditEvent.site_id == site.id,
                db.or_(*(detail.like(f"%{i}%")
                         for i in ordered[start:start + _LISTED_CHUNK])))).scalars():
            shown = (event.detail or {}).get("shown") or []
            if any(str(item) in ids for item in shown):
                yield event


def _audit_section(site: Site, sections: list[Section]) -> Section:
    """Every audit event about one of the sections' records, oldest first."""
    wanted: dict[str, set[str]] = {}
    for section in sections:
        if section.audit_entity:
            wanted.setdefault(section.audit_entity, set()).update(
                str(row["id"]) for row in section.rows)
    events = {event.id: event for entity, ids in wanted.items() if ids
              for event in _events_naming(entity, ids, site)}
    rows = [{"id": e.id, "at": e.at, "actor": e.actor, "staff_id": e.staff_id,
             "action": e.action, "entity": e.entity, "entity_id": e.entity_id,
             "origin": e.origin, "detail": e.detail}
            for e in sorted(events.values(), key=lambda e: (e.at, e.id))]
    return Section("audit_event", "Who has looked at or changed these records",
                   AUDIT_COLUMNS, rows)


def gather(site: Site, client: Client) -> list[Section]:
    """The client's row, each package's sections, then the audit trail of all of them."""
    sections = [_client_section(client)]
    for _receiver, more in signals.client_record.send(client):
        sections.extend(more or [])
    rank = {kind: i for i, kind in enumerate(RECORD_ORDER)}
    sections.sort(key=lambda s: rank.get(s.record_type, len(RECORD_ORDER)))
    sections.append(_audit_section(site, sections))
    return sections


def cell(value, site: Site) -> str:
    """A value as the export writes it: times on the site's clock, lists joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return site.local(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "; ".join(cell(v, site) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _csv_safe(text: str) -> str:
    """Keep a spreadsheet from running a cell as a formula."""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def record_csv(found: ClientRecord) -> str:
    """One CSV in sections: each starts with its header row; every row's first cell is its
    ``record_type``, so a filter on the first column shows one kind."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["record_type", "site", "client_code", "generated_at", "generated_by"])
    writer.writerow(["export", found.site.slug, _csv_safe(found.client.code),
                     cell(found.generated_at, found.site), found.generated_by])
    for section in found.sections:
        writer.writerow([])
        writer.writerow(["record_type", *section.columns])
        for row in section.rows:
            writer.writerow([section.record_type,
                             *(_csv_safe(cell(row.get(c), found.site)) for c in section.columns)])
    return out.getvalue()


def record_html(found: ClientRecord) -> str:
    """The record as the page WeasyPrint prints (the template alone, as the packet's)."""
    template = current_app.jinja_env.get_template("clients/export.html")
    return template.render(record=found, cell=cell)


def render_pdf(html: str) -> bytes:
    """WeasyPrint: HTML and CSS to PDF."""
    from weasyprint import HTML

    return HTML(string=html).write_pdf()


def export_record(site: Site, client: Client, fmt: Literal["csv", "pdf"], *, actor: Actor,
                  now: datetime) -> tuple[bytes | str, ClientRecord]:
    """Everything the site holds about the client, as ``fmt``; the export is audited
    (``client_record_exported`` with the format and the count of each kind). Commits.

    :raises ValueError: a format not in ``FORMATS``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    found = ClientRecord(site=site, client=client, sections=gather(site, client),
                         generated_at=now, generated_by=actor.name)
    content = record_csv(found) if fmt == "csv" else render_pdf(record_html(found))
    for read in (s for s in found.sections if s.read_action):
        for row in read.rows:
            record(actor, read.read_action, read.audit_entity, row["id"], site_id=site.id,
                   now=now, detail={"via": "client_record_exported"})
    record(actor, "client_record_exported", "client", client.id, site_id=site.id, now=now,
           detail={"format": fmt,
                   "rows": {s.record_type: len(s.rows) for s in found.sections}})
    db.session.commit()
    return content, found
