"""What the overdose console holds about a client, for their page and their access request:
the emergencies they were the subject of, and every step of each (amendments included)."""

from srs import signals
from srs.booths.models import Visit
from srs.clients.export import Section, section
from srs.clients.models import Client
from srs.extensions import db
from srs.overdose.models import Intervention, OverdoseResponse


def _of_client(client: Client):
    """Responses naming the client, or started for one of their visits."""
    return db.or_(OverdoseResponse.client_id == client.id, OverdoseResponse.visit_id.in_(
        db.select(Visit.id).where(Visit.client_id == client.id)))


@signals.client_summary.connect
def count_overdoses(client: Client) -> dict[str, int]:
    return {"Overdoses": db.session.scalar(
        db.select(db.func.count(OverdoseResponse.id)).where(_of_client(client)))}


@signals.client_record.connect
def overdose_records(client: Client) -> list[Section]:
    responses = list(db.session.execute(db.select(OverdoseResponse).where(_of_client(client))
                                        .order_by(OverdoseResponse.started_at,
                                                  OverdoseResponse.id)).scalars())
    steps = []
    if responses:
        steps = db.session.execute(db.select(Intervention).where(
            Intervention.response_id.in_([r.id for r in responses]))
            .order_by(Intervention.response_id, Intervention.id)).scalars()
    return [
        section("overdose_response", "Overdose responses", responses, (
            "id", "visit_id", "kind", "source", "location", "booth_id", "started_at",
            "started_by", "closed_at", "closed_by", "outcome", "outcome_note"),
            audit_entity="overdose_response"),
        section("intervention", "Overdose interventions", steps, (
            "id", "response_id", "kind", "at", "recorded_at", "recorded_by", "dose_mg",
            "route", "lot_id", "spo2", "oxygen_lpm", "note", "amends_id", "amend_reason",
            "struck")),
    ]
