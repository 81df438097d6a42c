"""Schemas for a client's flags: the restriction and the note, as the client's page posts
them (unknown fields such as the CSRF token left out) and as the JSON API takes them
(unknown fields refused); and the client as the API shows it.

The rules that need the site's date (a restriction ends today or later, within a year; a
reason is required) are the service's: both edges get the same messages.
"""

from marshmallow import RAISE, Schema, fields, validate

from srs.clients.service import (
    FLAG_NOTE_LENGTH,
    RESTRICTION_NOTE_LENGTH,
    RESTRICTION_REASONS,
)
from srs.forms import Form

_REASON_ERROR = f"Choose one of: {', '.join(RESTRICTION_REASONS.values())}."


class _RestrictionFields(Schema):
    reason = fields.String(
        load_default=None, allow_none=True,
        validate=validate.OneOf(list(RESTRICTION_REASONS), error=_REASON_ERROR),
        metadata={"description": f"One of: {', '.join(RESTRICTION_REASONS)}. Required."})
    note = fields.String(
        load_default=None, allow_none=True,
        validate=validate.Length(max=RESTRICTION_NOTE_LENGTH,
                                 error=f"At most {RESTRICTION_NOTE_LENGTH} characters."),
        metadata={"description": "What happened, in a few words and without names; "
                                 "required when the reason is `other`."})
    until = fields.Date(
        load_default=None, allow_none=True,
        error_messages={"invalid": "Give the last day as a date (YYYY-MM-DD)."},
        metadata={"description": "The last day of the restriction (the site's date): today "
                                 "or later, at most a year ahead. Required."})


class _NoteFields(Schema):
    flag_note = fields.String(
        load_default=None, allow_none=True,
        validate=validate.Length(max=FLAG_NOTE_LENGTH,
                                 error=f"At most {FLAG_NOTE_LENGTH} characters."),
        metadata={"description": "What the floor reads at check-in; empty or null clears it."})


class RestrictionForm(Form, _RestrictionFields):
    """The client's page: set a restriction."""

    every_blank_absent = True
    strip_text = True


class NoteForm(Form, _NoteFields):
    """The client's page: the note."""

    strip_text = True


class RestrictionSchema(_RestrictionFields):
    class Meta:
        unknown = RAISE


class ClientFlagsChangeSchema(_NoteFields):
    """``updateClientFlags``: a key left out stays as it is."""

    class Meta:
        unknown = RAISE

    restriction = fields.Nested(RestrictionSchema, allow_none=True, metadata={
        "description": "Set (or replace) the restriction; null lifts one in force."})
    flag_note = fields.String(
        allow_none=True,
        validate=validate.Length(max=FLAG_NOTE_LENGTH,
                                 error=f"At most {FLAG_NOTE_LENGTH} characters."),
        metadata={"description": "What the floor reads at check-in; empty or null clears it."})


class KitDueSchema(Schema):
    serial = fields.String()
    expires_on = fields.Date()
    recalled = fields.Boolean()


class FlagsSchema(Schema):
    restricted = fields.Boolean(metadata={"description": "A restriction is in force today."})
    restricted_until = fields.Date(allow_none=True)
    restriction_reason = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    recent_overdose = fields.Boolean()
    kits_to_replace = fields.List(fields.Nested(KitDueSchema), metadata={
        "description": "Take-home naloxone kits to replace at this visit (expiring or "
                       "recalled); absent when none."})
    treatment_held = fields.Boolean(metadata={
        "description": "The client's treatment dosing is held until a prescriber reviews it; "
                       "absent when not."})


class ClientRecordSchema(Schema):
    """``getClient``: the client, what the floor sees at check-in, and how many records of
    each kind the site holds about them."""

    id = fields.Integer()
    code = fields.String()
    handle = fields.String(allow_none=True)
    gender = fields.String(allow_none=True)
    birth_year = fields.Integer(allow_none=True)
    created_at = fields.AwareDateTime()
    flags = fields.Nested(FlagsSchema)
    summary = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": 'Records held, by kind: {"Visits": 12, "Overdoses": 1, ...}.'})
