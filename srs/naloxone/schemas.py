"""Schemas for naloxone stock: the API's (unknown fields raise) and the stock page's forms
(unknown fields, like the CSRF token, are left out)."""

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    fields,
    validate,
)

from srs.common import RecordId
from srs.forms import Form
from srs.naloxone.models import (
    FORMS,
    KIT_FORMS,
    REPLACEMENT_REASONS,
    TRAINEE_KINDS,
    TRAINING_FORMATS,
    USE_OUTCOMES,
    USE_ROUTES,
)

# --- Input ----------------------------------------------------------------------------------


def _route(error: str = "Choose im or in.", **kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf(list(USE_ROUTES), error=error), **kwargs)


def _outcome(error: str = "Choose recovered, hospital, died or unknown.",
             **kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf(list(USE_OUTCOMES), error=error), **kwargs)


class ReceiveStockSchema(Schema):
    class Meta:
        unknown = RAISE

    product = fields.String(required=True, validate=validate.Length(min=1, max=80))
    form = fields.String(required=True, validate=validate.OneOf(
        list(FORMS), error="Choose ampoule, vial or nasal_spray."))
    strength = fields.String(required=True, validate=validate.Length(min=1, max=40),
                             metadata={"description": "As printed, e.g. 0.4 mg/mL."})
    lot_number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    expires_on = fields.Date(required=True)
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(
        min=1, max=10000, error="Between 1 and 10000."))


class TakeHomeKitInputSchema(Schema):
    class Meta:
        unknown = RAISE

    client_code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    form = fields.String(required=True, validate=validate.OneOf(
        list(KIT_FORMS), error="Choose injectable or nasal."))
    number = fields.Integer(strict=True, load_default=1, validate=validate.Range(
        min=1, max=20, error="Between 1 and 20 kits."))
    replaces_used = fields.Boolean(load_default=False)
    training_given = fields.Boolean(load_default=False)


class AddKitsSchema(Schema):
    class Meta:
        unknown = RAISE

    lot_id = RecordId(required=True, metadata={
        "description": "The lot the kits are made from; their kind is its form's."})
    first_serial = fields.String(required=True, validate=validate.Length(min=1, max=40))
    last_serial = fields.String(load_default=None, validate=validate.Length(max=40), metadata={
        "description": "The end of a range (K-1001 to K-1020); empty for one kit."})
    expires_on = fields.Date(load_default=None, metadata={
        "description": "When not the lot's expiry (never after it)."})


class IssueKitSchema(Schema):
    """``issueNaloxoneKit``: a kit by serial, or (the short form) ``number`` kits of a form."""

    class Meta:
        unknown = RAISE

    serial = fields.String(load_default=None, validate=validate.Length(max=40), metadata={
        "description": "A kit of the register; without it, give form and number."})
    client_code = fields.String(load_default=None, validate=validate.Length(max=40))
    trainee_id = RecordId(load_default=None, metadata={
        "description": "A trainee of the site instead of a client code."})
    form = fields.String(load_default=None, validate=validate.OneOf(
        list(KIT_FORMS), error="Choose injectable or nasal."))
    number = fields.Integer(strict=True, load_default=1, validate=validate.Range(
        min=1, max=20, error="Between 1 and 20 kits."))
    replacement = fields.Boolean(load_default=False, metadata={
        "description": "Replaces an earlier kit: replacement_reason is then required."})
    replacement_reason = fields.String(load_default=None, validate=validate.OneOf(
        list(REPLACEMENT_REASONS), error="Choose why this kit replaces another."))
    replacement_note = fields.String(load_default=None, validate=validate.Length(max=200),
                                     metadata={"description": "Required for the reason other."})
    training_given = fields.Boolean(load_default=False)


class KitUseInputSchema(Schema):
    class Meta:
        unknown = RAISE

    used_on = fields.Date(required=True)
    area = fields.String(load_default=None, validate=validate.Length(max=120), metadata={
        "description": "Where, in general words (a neighbourhood, not an address)."})
    doses = fields.Integer(strict=True, required=True, validate=validate.Range(
        min=1, max=10, error="Between 1 and 10 doses."))
    route = _route(required=True)
    called_911 = fields.Boolean(required=True)
    outcome = _outcome(required=True)


class RecallInputSchema(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


# --- The stock page's forms -----------------------------------------------------------------


class _Form(Form):
    # The stock page's inputs are all optional until the service says otherwise.
    every_blank_absent = True


class ReceiveForm(_Form, ReceiveStockSchema):
    class Meta:
        unknown = EXCLUDE


class MovementForm(_Form):
    kind = fields.String(required=True, validate=validate.OneOf(
        ["expired", "wasted", "adjusted"], error="Choose expired, wasted or adjusted."))
    quantity = fields.Integer(required=True, validate=validate.Range(
        min=-10000, max=10000))
    reason = fields.String(load_default=None, validate=validate.Length(max=200))


class KitForm(_Form, TakeHomeKitInputSchema):
    class Meta:
        unknown = EXCLUDE


class AddKitsForm(_Form, AddKitsSchema):
    class Meta:
        unknown = EXCLUDE

    messages = {"lot_id": {"required": "Choose the lot."},
                "first_serial": {"required": "Give the first serial."}}


class IssueKitForm(_Form, IssueKitSchema):
    """The page gives a kit of the register by its serial (the API also takes a number of
    kits of a form without one)."""

    class Meta:
        unknown = EXCLUDE

    required_inputs = ("serial",)
    messages = {"serial": {"required": "Give the kit's serial."}}


class KitUseForm(_Form, KitUseInputSchema):
    class Meta:
        unknown = EXCLUDE

    messages = {"used_on": {"required": "Give the day."},
                "doses": {"required": "How many doses?"},
                "route": {"required": "Choose IM or nasal."},
                "outcome": {"required": "Choose the outcome."}}
    route = _route("Choose IM or nasal.", required=True)
    # An unticked box sends nothing.
    called_911 = fields.Boolean(load_default=False)
    outcome = _outcome("Choose the outcome.", required=True)


class RecallForm(_Form, RecallInputSchema):
    class Meta:
        unknown = EXCLUDE

    messages = {"reason": {"required": "Say why the lot is recalled."}}


# --- Output ---------------------------------------------------------------------------------


class LotSchema(Schema):
    id = fields.Integer()
    product = fields.String()
    form = fields.String()
    strength = fields.String()
    lot_number = fields.String()
    expires_on = fields.Date()
    quantity = fields.Integer()
    expired = fields.Boolean()
    expiring = fields.Boolean(metadata={"description": "Expires within 30 days."})


class FindingSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    lot_id = fields.Integer(allow_none=True)
    intervention_id = fields.Integer(allow_none=True)
    detail = fields.String()
    found_at = fields.AwareDateTime()


class StockSchema(Schema):
    lots = fields.List(fields.Nested(LotSchema))
    on_hand = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "Units not expired, by form."})
    threshold = fields.Integer()
    findings = fields.List(fields.Nested(FindingSchema))


class TakeHomeKitSchema(Schema):
    id = fields.Integer()
    client_code = fields.Function(lambda k: k.client.code if k.client else None,
                                  allow_none=True)
    trainee_id = fields.Integer(allow_none=True)
    serial = fields.Function(lambda k: k.kit.serial if k.kit else None, allow_none=True)
    replacement_reason = fields.String(allow_none=True)
    replacement_note = fields.String(allow_none=True)
    form = fields.String()
    number = fields.Integer()
    replaces_used = fields.Boolean()
    training_given = fields.Boolean()
    given_at = fields.AwareDateTime()
    stock_discrepancy = fields.Boolean()


# --- Training sessions and refreshers (srs/naloxone/training.py) ----------------------------

# What a session and each person trained in it take: the API's schema below and the training
# page's checks (srs/naloxone/training.py) read the same figures.
TRAINING_LONGEST = {"place": 120, "curriculum": 120, "curriculum_version": 40,
                    "organisation": 120, "first_name": 60, "last_name": 60, "badge_number": 40,
                    "kit_serial": 40}
SCORE_RANGE = (0, 100)
MAX_TRAINEES = 100


class TraineeInputSchema(Schema):
    """One person trained: a client by code, or someone from outside by kind."""

    class Meta:
        unknown = RAISE

    kind = fields.String(required=True, validate=validate.OneOf(
        list(TRAINEE_KINDS), error=f"Choose one of: {', '.join(TRAINEE_KINDS)}."))
    client_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(
        max=40), metadata={"description": "A client of the site (person at risk, family or "
                                          "friend, peer); leave out for anyone else."})
    organisation = fields.String(load_default=None, allow_none=True, validate=validate.Length(
        max=TRAINING_LONGEST["organisation"]))
    named_consent = fields.Boolean(load_default=False, metadata={
        "description": "Staff and police only: they consent to be named (for refreshers)."})
    first_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(
        max=TRAINING_LONGEST["first_name"]))
    last_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(
        max=TRAINING_LONGEST["last_name"]))
    badge_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(
        max=TRAINING_LONGEST["badge_number"]),
        metadata={"description": "Badge or employee number."})
    at_risk_consented = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "Family or friend (required): whether the person at risk consented."})
    post_test_score = fields.Integer(strict=True, load_default=None, allow_none=True,
                                     validate=validate.Range(*SCORE_RANGE, error=(
                                         f"From {SCORE_RANGE[0]} to {SCORE_RANGE[1]}.")))
    kit_serial = fields.String(
        load_default=None, allow_none=True,
        validate=validate.Length(max=TRAINING_LONGEST["kit_serial"]),
        metadata={"description": "A kit of the register in stock, given with the training as "
                                 "their first kit (to the client for a client_code). Someone "
                                 "who already holds a kit gets a replacement through "
                                 "issueNaloxoneKit."})


class TrainingSessionInputSchema(Schema):
    class Meta:
        unknown = RAISE

    held_on = fields.Date(required=True)
    place = fields.String(load_default=None, allow_none=True, validate=validate.Length(
        max=TRAINING_LONGEST["place"]),
        metadata={"description": "An outreach place; leave out for the site."})
    trainer_id = RecordId(required=True, metadata={
        "description": "Staff id of the trainer, a staff member of the site."})
    curriculum = fields.String(required=True, validate=validate.Length(
        min=1, max=TRAINING_LONGEST["curriculum"]))
    curriculum_version = fields.String(load_default=None, allow_none=True, validate=validate.Length(
        max=TRAINING_LONGEST["curriculum_version"]))
    format = fields.String(required=True, validate=validate.OneOf(
        list(TRAINING_FORMATS), error=f"Choose one of: {', '.join(TRAINING_FORMATS)}."))
    trainees = fields.List(fields.Nested(TraineeInputSchema), required=True,
                           validate=validate.Length(min=1, max=MAX_TRAINEES,
                                                    error=f"From 1 to {MAX_TRAINEES} people."))


class TrainingMonthQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    month = fields.String(load_default=None, validate=validate.Regexp(
        r"^(20\d\d|2100)-(0[1-9]|1[0-2])$",
        error="Give the month as YYYY-MM, from 2000-01 to 2100-12."),
        metadata={"description": "YYYY-MM; this month at the site if left out."})


class SessionTraineeSchema(Schema):
    trainee_id = fields.Integer()
    kind = fields.Function(lambda p: p.trainee.kind)
    client_code = fields.Function(lambda p: p.trainee.client.code if p.trainee.client else None)
    organisation = fields.Function(lambda p: p.trainee.organisation)
    named = fields.Function(lambda p: p.trainee.named_consent)
    first_name = fields.Function(lambda p: p.trainee.first_name)
    last_name = fields.Function(lambda p: p.trainee.last_name)
    badge_number = fields.Function(lambda p: p.trainee.badge_number)
    at_risk_consented = fields.Function(lambda p: p.trainee.at_risk_consented)
    post_test_score = fields.Integer(allow_none=True)


class TrainingSessionSchema(Schema):
    id = fields.Integer()
    held_on = fields.Date()
    place = fields.String(allow_none=True)
    trainer_id = fields.Integer()
    trainer = fields.Function(lambda s: s.trainer.display_name)
    curriculum = fields.String()
    curriculum_version = fields.String(allow_none=True)
    format = fields.String()
    recorded_at = fields.AwareDateTime()
    trainees = fields.List(fields.Nested(SessionTraineeSchema), attribute="attendance")


class TrainingSessionListSchema(Schema):
    month = fields.String()
    sessions = fields.List(fields.Nested(TrainingSessionSchema))


class RefresherSchema(Schema):
    trainee_id = fields.Function(lambda r: r.trainee.id)
    kind = fields.Function(lambda r: r.trainee.kind)
    organisation = fields.Function(lambda r: r.trainee.organisation)
    named = fields.Boolean(metadata={"description": "Consented to be named; else no name."})
    first_name = fields.Function(lambda r: r.trainee.first_name)
    last_name = fields.Function(lambda r: r.trainee.last_name)
    badge_number = fields.Function(lambda r: r.trainee.badge_number)
    last_training = fields.Date()
    sessions = fields.Integer()
    due_on = fields.Date()
    status = fields.String(metadata={"description": "overdue or due_soon (within 30 days)."})


class RefreshersDueSchema(Schema):
    refreshers = fields.List(fields.Nested(RefresherSchema), attribute="due")
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "Police and staff trainees by status (overdue, due_soon, later) and "
                       "unnamed_due: those due who did not consent to be named."})


class KitSchema(Schema):
    id = fields.Integer()
    serial = fields.String()
    kind = fields.String(metadata={
        "description": "injectable (IM, 3 x 0.4 mg) or nasal (2 x 4 mg)."})
    lot_id = fields.Integer()
    lot_number = fields.Function(lambda r: r.lot.lot_number)
    expires_on = fields.Date()
    state = fields.String(metadata={"description": "in_stock, issued, used or withdrawn."})
    expired = fields.Boolean()
    recalled = fields.Function(lambda r: r.recalled_at is not None)
    client_code = fields.Function(
        lambda r: r.issue.client.code if r.issue and r.issue.client else None, allow_none=True)
    trainee_id = fields.Function(lambda r: r.issue.trainee_id if r.issue else None,
                                 allow_none=True)
    holder = fields.String(allow_none=True, metadata={
        "description": "The client code, or the trainee's kind (and consented name)."})
    issued_at = fields.Function(lambda r: r.issue.given_at.isoformat() if r.issue else None,
                                allow_none=True)
    replaced = fields.Boolean(metadata={"description": "Its holder has had a kit since."})


class KitListSchema(Schema):
    kits = fields.List(fields.Nested(KitSchema))


class KitUseSchema(Schema):
    id = fields.Integer()
    kit_id = fields.Integer()
    serial = fields.Function(lambda u: u.kit.serial)
    used_on = fields.Date()
    area = fields.String(allow_none=True)
    doses = fields.Integer()
    route = fields.String()
    called_911 = fields.Boolean()
    outcome = fields.String()


class RecallSchema(Schema):
    lot_id = fields.Function(lambda v: v["lot"].id)
    lot_number = fields.Function(lambda v: v["lot"].lot_number)
    reason = fields.Function(lambda v: v["recall"].reason if v["recall"] else None,
                             allow_none=True)
    recalled_at = fields.Function(
        lambda v: v["recall"].recalled_at.isoformat() if v["recall"] else None, allow_none=True)
    kits = fields.List(fields.Nested(KitSchema))
