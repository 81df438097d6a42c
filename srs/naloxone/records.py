"""What the naloxone programme holds about a client, for their page and their access
request: the take-home kits given to them."""

from srs import signals
from srs.clients.export import Section, section
from srs.clients.models import Client
from srs.extensions import db
from srs.naloxone.models import TakeHomeKit


@signals.client_summary.connect
def count_kits(client: Client) -> dict[str, int]:
    return {"Take-home kits": db.session.scalar(
        db.select(db.func.count(TakeHomeKit.id)).where(TakeHomeKit.client_id == client.id))}


@signals.client_record.connect
def kit_records(client: Client) -> list[Section]:
    kits = db.session.execute(db.select(TakeHomeKit).where(TakeHomeKit.client_id == client.id)
                              .order_by(TakeHomeKit.given_at, TakeHomeKit.id)).scalars()
    return [section("take_home_kit", "Take-home naloxone kits", kits, (
        "id", "form", "number", "replaces_used", "training_given", "given_at", "given_by"))]
