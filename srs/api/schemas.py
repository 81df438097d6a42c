"""The API's error body, as ``srs.errors.error_payload`` writes it.

Only for the OpenAPI document: the handlers in ``srs.errors`` build the body. A conflict
(409) adds members that say what holds the record (``DomainError.detail``); each one a
service may add is listed here, and tests/test_api_contract.py fails for one that is not.
"""

from marshmallow import RAISE, Schema, fields


def _id(what: str) -> fields.Integer:
    return fields.Integer(metadata={"description": f"{what} (conflicts that name one)."})


def _text(what: str) -> fields.String:
    return fields.String(metadata={"description": f"{what} (conflicts that name it)."})


class ErrorSchema(Schema):
    """Every error answer: what went wrong, for a person and for a program."""

    class Meta:
        unknown = RAISE  # additionalProperties: false; a member not listed is a bug

    code = fields.String(required=True, metadata={
        "description": "What went wrong, for a program: not_found, forbidden, invalid, "
                       "unprocessable_entity, conflict, visit_state, booth_taken, "
                       "incident_stage, alert_state, response_closed, ..."})
    status = fields.Integer(required=True, metadata={"description": "The HTTP status."})
    message = fields.String(required=True, metadata={"description": "What went wrong, for a "
                                                                    "person."})
    errors = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()), required=True,
        metadata={"description": "Field name -> messages; an item of a list is "
                                 "`field.index`, the body as a whole `_body`, the fields "
                                 "together `_schema`. Empty when no field is at fault."})

    # What a conflict (409) adds.
    current_state = _text("The record's state now: a visit's, an alert's, an overdose "
                          "response's, an offer's or a referral's outcome")
    current_stage = _text("The incident report's review stage now")
    current_version = fields.Dict(metadata={
        "description": "The referral rule's current version (conflicts that name it)."})
    current_quantity = _id("Units the naloxone lot holds now")
    booth = _text("The booth's label")
    booth_state = _text("The booth's state now: occupied, needs_cleaning, out_of_service or "
                        "available")
    held_by_visit = fields.Integer(allow_none=True, metadata={
        "description": "The visit that holds the booth (booth_taken conflicts)."})
    owner = _text("Who owns the alert")
    outcome = _text("The closed overdose response's outcome")
    visit_id = _id("The visit")
    alert_id = _id("The alert")
    incident_id = _id("The incident report")
    response_id = _id("The overdose response")
    intervention_id = _id("The entry that was amended")
    latest_id = _id("The entry's latest version")
    offer_id = _id("The referral offer")
    referral_id = _id("The referral")
    limit = _text("The club-supply limit reached: window, pickups, daily, substance or "
                  "weekly (limit_reached conflicts)")
    remaining_mg = fields.Integer(allow_none=True, metadata={
        "description": "The allowance left under that limit, in mg (limit_reached)."})
    frees_at = fields.String(allow_none=True, metadata={
        "description": "When more frees up under that limit, ISO 8601 (limit_reached)."})
