"""Input and output schemas for incident reports: the JSON API's and the HTML forms'.

The API's schemas raise on unknown fields; the forms' exclude them (they carry
the CSRF token and the idempotency key). Empty form inputs mean "not given".

Each field is defined once, for both edges: a form inherits the API's field set (or,
where the page names it differently, is built by the same function) and redefines only
how a browser sends it (a local time, codes in one input, a checkbox), keeping the
API's rules. Lengths come from the model's columns, choices from its vocabularies.
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_dump,
    pre_load,
    validate,
)

from srs.clients.models import Client
from srs.common import MAX_ID, RecordId
from srs.forms import Form
from srs.incidents.models import (
    HARM_GRADES,
    HISTORY_KINDS,
    INCIDENT_TYPES,
    ContributingFactor,
    Incident,
    IncidentAction,
    Stage,
)
from srs.incidents.reports import FIGURES
from srs.incidents.service import TRANSITIONS
from srs.sites.models import TIME_BANDS

TEXT_MAX = 20_000
REASON_MAX = 2_000
CLIENTS_MAX = 20


def _one_of(values, what: str):
    return validate.OneOf(list(values), error=f"Choose a {what}: one of {', '.join(values)}.")


def _vocabulary(values, what: str, **kwargs) -> fields.String:
    """A value from one of the model's vocabularies: refused otherwise on input, and given
    as its ``enum`` in the OpenAPI document, in answers too."""
    return fields.String(validate=_one_of(values, what), **kwargs)


def _longest(column) -> int:
    """The characters a model's String column holds: more would be cut off or refused by
    the database, so the field refuses them first."""
    return column.type.length


def _text(longest: int, *, empty: str | None = None, **kwargs) -> fields.String:
    """Text of at most ``longest`` characters; with ``empty``, the message for none."""
    rules = [validate.Length(max=longest, error=f"Keep this to {longest} characters or fewer.")]
    if empty:
        rules.insert(0, validate.Length(min=1, error=empty))
    return fields.String(validate=rules, **kwargs)


STAGES = [s.value for s in Stage]


class _SpacedList(fields.List):
    """A list typed into one input, its items separated by spaces or commas."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        return super()._deserialize(value, attr, data, **kwargs)


def _client_codes(kind: type[fields.List] = fields.List) -> fields.List:
    """Clients involved, by code: a JSON list, or (``_SpacedList``) a form's one input."""
    return kind(_text(_longest(Client.code)), validate=validate.Length(
        max=CLIENTS_MAX, error=f"Name at most {CLIENTS_MAX} clients."),
        metadata={"description": "Clients involved, by code."})


class _ReportFields(Schema):
    type = _vocabulary(INCIDENT_TYPES, "type",
                       metadata={"description": f"One of: {', '.join(INCIDENT_TYPES)}."})
    booth_id = RecordId(allow_none=True)
    area = _text(_longest(Incident.area), allow_none=True)
    client_codes = _client_codes()
    staff_involved = _text(_longest(Incident.staff_involved), allow_none=True,
                           metadata={"description": "Roles or staff usernames."})
    harm = _vocabulary(HARM_GRADES, "harm grade",
                       metadata={"description": f"One of: {', '.join(HARM_GRADES)}."})
    narrative = _text(TEXT_MAX)
    immediate_actions = _text(TEXT_MAX)
    ems_involved = fields.Boolean()
    police_involved = fields.Boolean()
    follow_up_needed = fields.Boolean()


class _AmendmentFields(Schema):
    amendment_reason = _text(REASON_MAX, load_default=None)
    identifiers_checked = fields.Boolean(load_default=False, metadata={
        "description": "The reporter has checked the text's flagged words: not identifiers."})


class IncidentCreateSchema(_ReportFields):
    """A new draft: any field may still be missing."""

    occurred_at = fields.AwareDateTime(load_default=None)

    class Meta:
        unknown = RAISE


class IncidentUpdateSchema(_ReportFields, _AmendmentFields):
    """A draft's changes, or an amendment to a submitted report (with its reason)."""

    occurred_at = fields.AwareDateTime()

    class Meta:
        unknown = RAISE


class SubmitSchema(Schema):
    identifiers_checked = fields.Boolean(load_default=False)

    class Meta:
        unknown = RAISE


# An action's fields: the API's ``new_actions`` items, and the review form's "New action"
# (its inputs named ``action_<field>``).
ACTION_REQUIRED = {"description": "Say what must be done.", "owner_id": "Choose who owns it.",
                   "due_on": "Choose when it is due."}


def _action_description(**kwargs) -> fields.String:
    return _text(_longest(IncidentAction.description), empty=ACTION_REQUIRED["description"],
                 **kwargs)


def _action_owner_id(**kwargs) -> fields.Integer:
    return RecordId(**kwargs)


def _action_due_on(**kwargs) -> fields.Date:
    return fields.Date(**kwargs)


def _required(name: str) -> dict:
    return {"required": True, "error_messages": {"required": ACTION_REQUIRED[name]}}


class NewActionSchema(Schema):
    description = _action_description(**_required("description"))
    owner_id = _action_owner_id(**_required("owner_id"))
    due_on = _action_due_on(**_required("due_on"))

    class Meta:
        unknown = RAISE


class _ReviewFields(Schema):
    decision = _vocabulary(TRANSITIONS, "decision", load_default=None, allow_none=True)
    lessons_learned = _text(TEXT_MAX, load_default=None)
    feedback = _text(TEXT_MAX, load_default=None)


class ReviewSchema(_ReviewFields):
    decision_note = _text(REASON_MAX, load_default=None)
    factor_ids = fields.List(RecordId(), load_default=None)
    new_actions = fields.List(fields.Nested(NewActionSchema), load_default=None)
    done_action_ids = fields.List(RecordId(), load_default=None)

    class Meta:
        unknown = RAISE


class ListQuerySchema(Schema):
    type = fields.String(load_default=None, validate=_one_of(INCIDENT_TYPES, "type"))
    harm = fields.String(load_default=None, validate=_one_of(HARM_GRADES, "harm grade"))
    stage = _vocabulary(STAGES, "stage", load_default=None)
    booth_id = RecordId(load_default=None, strict=False)
    band = fields.String(load_default=None, validate=_one_of(TIME_BANDS, "time band"))
    since = fields.AwareDateTime(load_default=None)
    until = fields.AwareDateTime(load_default=None)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_ID))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))

    class Meta:
        unknown = RAISE


class ListIncidentsQuerySchema(ListQuerySchema):
    mine = fields.Boolean(load_default=False, metadata={
        "description": "Only the caller's own reports, drafts included (any role)."})


class MonthQuerySchema(Schema):
    month = fields.String(load_default=None, validate=validate.Regexp(
        r"^(20\d\d|2100)-(0[1-9]|1[0-2])$",
        error="Give the month as YYYY-MM, from 2000-01 to 2100-12."),
        metadata={"description": "YYYY-MM; the last full month at the site if left out."})

    class Meta:
        unknown = RAISE


# --- Output ---------------------------------------------------------------------------------


class ActionOutSchema(Schema):
    id = fields.Integer()
    description = fields.String()
    owner_id = fields.Integer()
    due_on = fields.Date()
    done_at = fields.AwareDateTime(allow_none=True)


class HistoryOutSchema(Schema):
    at = fields.AwareDateTime()
    staff_id = fields.Integer(allow_none=True)
    kind = _vocabulary(HISTORY_KINDS, "kind")
    stage_from = _vocabulary(STAGES, "stage", allow_none=True)
    stage_to = _vocabulary(STAGES, "stage", allow_none=True)
    reason = fields.String(allow_none=True)
    changes = fields.Dict(allow_none=True)


class IncidentSchema(Schema):
    id = fields.Integer()
    site_id = fields.Integer()
    stage = _vocabulary(STAGES, "stage")
    type = _vocabulary(INCIDENT_TYPES, "type")
    occurred_at = fields.AwareDateTime()
    booth_id = fields.Integer(allow_none=True)
    area = fields.String(allow_none=True)
    location = fields.String()
    client_codes = fields.Function(lambda i: [c.code for c in i.clients])
    staff_involved = fields.String(allow_none=True)
    harm = _vocabulary(HARM_GRADES, "harm grade")
    narrative = fields.String()
    immediate_actions = fields.String()
    ems_involved = fields.Boolean()
    police_involved = fields.Boolean()
    follow_up_needed = fields.Boolean()
    response_id = fields.Integer(allow_none=True)
    reported_by = fields.Integer()
    submitted_at = fields.AwareDateTime(allow_none=True)
    reviewer_id = fields.Integer(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    closed_by = fields.Integer(allow_none=True)
    factors = fields.Function(lambda i: [{"id": f.id, "label": f.full_label}
                                         for f in i.factors])
    actions = fields.List(fields.Nested(ActionOutSchema))
    lessons_learned = fields.String()
    feedback = fields.String()
    history = fields.List(fields.Nested(HistoryOutSchema))


class IncidentPageSchema(Schema):
    items = fields.List(fields.Nested(IncidentSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class BreakdownItemSchema(Schema):
    label = fields.String(metadata={"description": "The key in words, for people."})
    value = fields.Integer(allow_none=True, metadata={
        "description": "The count; null for a share of nobody (a retention percentage "
                       "with nobody enrolled that long)."})


class FigureOutSchema(Schema):
    """One figure of the monthly report: a count, a breakdown of counts, or words."""

    name = _vocabulary([f.name for f in FIGURES], "figure")
    label = fields.String()
    value = fields.Integer(allow_none=True, metadata={
        "description": "The count; null for a breakdown or a figure in words."})
    text = fields.String(allow_none=True, metadata={
        "description": "A figure in words (the opening hours); null otherwise."})
    breakdown = fields.Dict(
        keys=fields.String(), values=fields.Nested(BreakdownItemSchema), allow_none=True,
        metadata={"description": "Counts keyed by the values the API takes (an incident type "
                                 "as createIncident's, a substance as recordConsumption's), "
                                 "each with its label; null for a single figure."})

    @pre_dump
    def _from_report(self, row, **_kwargs):
        """A (Figure, value) row of ``reports.monthly_report``, as the API gives it."""
        figure, value = row
        breakdown = None
        if isinstance(value, dict):
            breakdown = {key: {"label": figure.label_of(key), "value": count}
                         for key, count in value.items()}
        return {"name": figure.name, "label": figure.label,
                "value": value if isinstance(value, int) else None,
                "text": value if isinstance(value, str) else None, "breakdown": breakdown}


class MonthlyReportSchema(Schema):
    site_id = fields.Integer()
    month = fields.String()
    figures = fields.List(fields.Nested(FigureOutSchema))


# --- HTML forms -----------------------------------------------------------------------------


class IncidentForm(Form, _ReportFields, _AmendmentFields):
    """The report form; ``occurred_at`` is the site's local time from a datetime-local input."""

    optional = ("amendment_reason",)

    occurred_at = fields.NaiveDateTime(format="%Y-%m-%dT%H:%M", error_messages={
        "invalid": "Give the date and time it happened."})
    booth_id = RecordId(allow_none=True, strict=False)
    client_codes = _client_codes(_SpacedList)
    # An unticked box sends nothing.
    ems_involved = fields.Boolean(load_default=False)
    police_involved = fields.Boolean(load_default=False)
    follow_up_needed = fields.Boolean(load_default=False)

    @pre_load
    def _blanks(self, data, **_kwargs):
        """A cleared booth, area or staff input clears what the report had."""
        data = dict(data)
        for name in ("booth_id", "area", "staff_involved"):
            if isinstance(data.get(name), str) and not data[name].strip():
                data[name] = None
        if data.get("occurred_at") == "":
            data.pop("occurred_at")
        return data


def maxlength(*forms: type[Schema]) -> dict[str, int]:
    """The longest text each form's inputs take, by input name: their ``maxlength``."""
    return {name: rule.max for form in forms for name, field in form().fields.items()
            if isinstance(field, fields.String)
            for rule in field.validators if isinstance(rule, validate.Length) and rule.max}


def local_to_utc(moment: datetime, timezone: str) -> datetime:
    return moment.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)


class ReviewForm(Form, _ReviewFields):
    """The reviewer's panel: factors as checkboxes, one new action at a time."""

    optional = ("decision", "action_description", "action_owner_id", "action_due_on")

    factor_ids = fields.List(RecordId(strict=False), load_default=list)
    done_action_ids = fields.List(RecordId(strict=False), load_default=list)
    action_description = _action_description(load_default=None)
    action_owner_id = _action_owner_id(load_default=None, strict=False)
    action_due_on = _action_due_on(load_default=None)

    @post_load
    def _action(self, data, **_kwargs):
        """The new action's inputs, all given (an action) or all left blank (none)."""
        given = {name: data.pop(f"action_{name}") for name in ACTION_REQUIRED}
        if any(value is not None for value in given.values()):
            missing = {f"action_{name}": [message] for name, message in ACTION_REQUIRED.items()
                       if given[name] is None}
            if missing:
                raise ValidationError(missing)
            data["new_actions"] = [{**given, "description": given["description"].strip()}]
        return data


class FactorForm(Form):
    label = _text(_longest(ContributingFactor.label), empty="Name the factor.", required=True)
    parent_id = RecordId(strict=False, load_default=None, allow_none=True)

    @pre_load
    def _blanks(self, data, **_kwargs):
        data = dict(data)
        if data.get("parent_id") == "":
            data["parent_id"] = None
        return data


MAXLENGTH = maxlength(IncidentForm, ReviewForm, FactorForm)
