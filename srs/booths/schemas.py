"""Schemas for booths and the site board."""

from marshmallow import Schema, fields

from srs.booths.models import BoothKind, BoothState
from srs.sites.schemas import SiteSchema


class BoothSchema(Schema):
    id = fields.Integer()
    label = fields.String()
    kind = fields.Enum(BoothKind, by_value=True)
    position = fields.Integer()
    state = fields.Enum(BoothState, by_value=True)
    out_of_service_reason = fields.String(allow_none=True)


class BoardSchema(Schema):
    site = fields.Nested(SiteSchema)
    booths = fields.List(fields.Nested(BoothSchema))
    generated_at = fields.AwareDateTime()
