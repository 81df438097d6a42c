"""What the API says of an alert."""

from marshmallow import Schema, fields

from srs.alerts.models import ALERT_KINDS


class AlertSchema(Schema):
    id = fields.Integer()
    site_id = fields.Integer()
    kind = fields.String(metadata={"description": f"One of: {', '.join(ALERT_KINDS)}."})
    label = fields.String()
    priority = fields.String(metadata={"description": "high, medium or low (IEC 60601-1-8)."})
    level = fields.Integer(metadata={
        "description": "1 the site's tablets, 2 supervisors too, 3 the on-call supervisor."})
    booth = fields.Function(lambda a: a.booth.label if a.booth is not None else None,
                            allow_none=True)
    visit_id = fields.Integer(allow_none=True)
    due_at = fields.AwareDateTime()
    raised_at = fields.AwareDateTime()
    acknowledged_at = fields.AwareDateTime(allow_none=True)
    acknowledged_by = fields.Function(
        lambda a: a.owner.display_name if a.owner is not None else None, allow_none=True,
        metadata={"description": "Who owns the alert (the first to acknowledge)."})
    resolved_at = fields.AwareDateTime(allow_none=True)
    resolution = fields.String(allow_none=True)
