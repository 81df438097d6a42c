"""What the floor holds about a client, for their page and their access request: visits,
what was used in each, the checks on them, and the alerts their visits raised."""

from srs import signals
from srs.alerts.models import Alert
from srs.booths.models import Consumption, ObservationCheck, Visit
from srs.clients.export import Section, section
from srs.clients.models import Client
from srs.extensions import db


@signals.client_summary.connect
def count_visits(client: Client) -> dict[str, int]:
    return {"Visits": db.session.scalar(
        db.select(db.func.count(Visit.id)).where(Visit.client_id == client.id))}


@signals.client_record.connect
def floor_records(client: Client) -> list[Section]:
    visits = list(db.session.execute(db.select(Visit).where(Visit.client_id == client.id)
                                     .order_by(Visit.arrived_at, Visit.id)).scalars())
    of_visits = [v.id for v in visits]

    def of(model, order):
        if not of_visits:
            return []
        return db.session.execute(db.select(model).where(model.visit_id.in_(of_visits))
                                  .order_by(order, model.id)).scalars()

    return [
        section("visit", "Visits", visits, (
            "id", "state", "booth_id", "arrived_at", "booth_at", "observation_at",
            "departed_at", "departure_reason", "consumed", "checked_in_by", "override_by"),
            audit_entity="visit"),
        section("consumption", "What was used", of(Consumption, Consumption.recorded_at), (
            "id", "visit_id", "recorded_at", "recorded_by", "substances", "route",
            "fentanyl_strip", "benzo_strip", "split_or_shared", "peer_assisted")),
        section("observation_check", "Checks", of(ObservationCheck,
                                                  ObservationCheck.recorded_at), (
            "id", "visit_id", "recorded_at", "recorded_by", "phase", "status", "spo2",
            "respiratory_rate")),
        section("alert", "Alerts raised in the visits", of(Alert, Alert.raised_at), (
            "id", "visit_id", "kind", "priority", "level", "due_at", "raised_at",
            "acknowledged_by", "acknowledged_at", "resolved_at", "resolution"),
            audit_entity="alert"),
    ]
