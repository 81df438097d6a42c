"""Schemas for booths and the site board."""

from marshmallow import RAISE, Schema, fields, validate

from srs.booths.models import BoothKind, BoothState
from srs.sites.schemas import SiteSchema


class BoothSchema(Schema):
    id = fields.Integer()
    label = fields.String()
    kind = fields.String(validate=validate.OneOf([k.value for k in BoothKind]))
    position = fields.Integer()
    state = fields.Enum(BoothState, by_value=True)
    out_of_service_reason = fields.String(allow_none=True)


class BoardSchema(Schema):
    site = fields.Nested(SiteSchema)
    booths = fields.List(fields.Nested(BoothSchema))
    generated_at = fields.AwareDateTime()


class OutOfServiceSchema(Schema):
    """Take a booth out of service (a reason) or put it back (``reason: null``)."""

    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, allow_none=True,
                           validate=validate.Length(min=1, max=200,
                                                    error="Give a reason of 1 to 200 characters."),
                           metadata={"description": "Why the booth is out of service; null "
                                                    "puts it back in service."})
