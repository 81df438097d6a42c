"""What the naloxone programme holds about a client, for their page, their access request
and their check-in: the take-home kits given to them and the ones to replace, and the
naloxone training they took part in."""

from datetime import date

from srs import signals
from srs.clients.export import Section, section
from srs.clients.models import Client
from srs.extensions import db
from srs.naloxone.kits import kits_to_replace
from srs.naloxone.models import SessionTrainee, TakeHomeKit, Trainee, TrainingSession


@signals.client_summary.connect
def count_kits(client: Client) -> dict[str, int]:
    return {"Take-home kits": db.session.scalar(
        db.select(db.func.count(TakeHomeKit.id)).where(TakeHomeKit.client_id == client.id))}


@signals.client_record.connect
def kit_records(client: Client) -> list[Section]:
    kits = db.session.execute(db.select(TakeHomeKit).where(TakeHomeKit.client_id == client.id)
                              .order_by(TakeHomeKit.given_at, TakeHomeKit.id)).scalars()
    return [section("take_home_kit", "Take-home naloxone kits", kits, (
        "id", "form", "number", "kit_id", "replaces_used", "replacement_reason", "training_given",
        "given_at", "given_by"))]


# --- Naloxone training ----------------------------------------------------------------------


def _training_of(client: Client):
    return db.session.execute(
        db.select(SessionTrainee, Trainee, TrainingSession)
        .join(Trainee, Trainee.id == SessionTrainee.trainee_id)
        .join(TrainingSession, TrainingSession.id == SessionTrainee.session_id)
        .where(Trainee.client_id == client.id)
        .order_by(TrainingSession.held_on, SessionTrainee.id)).all()


@signals.client_summary.connect
def count_training(client: Client) -> dict[str, int]:
    return {"Naloxone training sessions": len(_training_of(client))}


@signals.client_record.connect
def training_records(client: Client) -> list[Section]:
    columns = ("id", "held_on", "place", "trainer_id", "curriculum",
               "curriculum_version", "format", "trained_as", "at_risk_consented",
               "post_test_score")
    rows = [{"id": s.id, "held_on": s.held_on, "place": s.place,
             "trainer_id": s.trainer_id, "curriculum": s.curriculum,
             "curriculum_version": s.curriculum_version, "format": s.format,
             "trained_as": t.kind, "at_risk_consented": t.at_risk_consented,
             "post_test_score": part.post_test_score}
            for part, t, s in _training_of(client)]
    return [Section("naloxone_training", "Naloxone training", columns, rows,
                    audit_entity="naloxone_training_session")]


@signals.client_flags.connect
def kits_to_replace_flag(client: Client, *, today: date) -> dict:
    """The check-in flag: kits the client holds that expire within the site's window (the
    daily job lists them) or come from a recalled lot, to replace at this visit."""
    due = [{"serial": kit.serial, "expires_on": kit.expires_on,
            "recalled": kit.recalled_at is not None}
           for kit in kits_to_replace(client, today=today)]
    return {"kits_to_replace": due} if due else {}
