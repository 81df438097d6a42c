"""What incident reports hold about a client, for their page and their access request: the
reports that name them (as a person involved, through their overdose, or by code in the
text)."""

from srs import signals
from srs.clients.export import Section, section
from srs.clients.models import Client
from srs.extensions import db
from srs.incidents.models import Incident, incident_client
from srs.overdose.models import OverdoseResponse


def _naming(client: Client):
    escaped = client.code.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    responses = db.select(OverdoseResponse.id).where(OverdoseResponse.client_id == client.id)
    return db.and_(Incident.site_id == client.site_id, db.or_(
        Incident.id.in_(db.select(incident_client.c.incident_id).where(
            incident_client.c.client_id == client.id)),
        Incident.response_id.in_(responses),
        Incident.narrative.like(f"%{escaped}%", escape="\\"),
        Incident.immediate_actions.like(f"%{escaped}%", escape="\\")))


@signals.client_summary.connect
def count_incidents(client: Client) -> dict[str, int]:
    return {"Incidents": db.session.scalar(
        db.select(db.func.count(Incident.id)).where(_naming(client)))}


@signals.client_record.connect
def incident_records(client: Client) -> list[Section]:
    incidents = db.session.execute(db.select(Incident).where(_naming(client))
                                   .order_by(Incident.occurred_at, Incident.id)).scalars()
    return [section("incident", "Incident reports that name the client", incidents, (
        "id", "stage", "type", "occurred_at", "location", "harm", "narrative",
        "immediate_actions", "ems_involved", "police_involved", "follow_up_needed",
        "response_id", "reported_by", "submitted_at", "closed_at", "lessons_learned",
        "feedback"), audit_entity="incident")]
