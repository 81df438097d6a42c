"""Schemas for drug checks and drug alerts: the API's (unknown fields raise) and the
pages' forms (unknown fields, like the CSRF token, are left out)."""

from marshmallow import RAISE, Schema, fields, pre_load, validate

from srs.common import RecordId
from srs.drugchecks.models import (
    ADVICE,
    ALERT_KINDS,
    AUDIENCES,
    EVIDENCE,
    FAMILIES,
    LAB_STATUSES,
    METHODS,
    SAMPLE_FORMS,
    SAMPLE_TYPES,
    SCOPES,
    STRIP_RESULTS,
    STRIPS,
)
from srs.forms import Form

# How many component rows the check form offers.
FORM_COMPONENTS = 4


def _choice(values, what: str):
    return validate.OneOf(list(values), error=f"Choose {what}: {', '.join(values)}.")


def _text(length: int, **kwargs):
    return fields.String(validate=validate.Length(min=1, max=length,
                                                  error=f"At most {length} characters."),
                         **kwargs)


# --- Drug checks ----------------------------------------------------------------------------


class ComponentSchema(Schema):
    class Meta:
        unknown = RAISE

    substance = _text(80, required=True, metadata={
        "description": "A name from the site's substance list."})
    uncertain = fields.Boolean(load_default=False, metadata={
        "description": "FTIR's \"uncertain match\"."})
    percent = fields.Integer(strict=True, allow_none=True, load_default=None,
                             validate=validate.Range(0, 100, error="A share from 0 to 100."))


StripsSchema = Schema.from_dict(
    {name: fields.String(load_default=None, allow_none=True,
                         validate=_choice(STRIP_RESULTS, "a result"))
     for name in STRIPS}, name="StripResults")


class DrugCheckInputSchema(Schema):
    class Meta:
        unknown = RAISE

    sample_code = _text(40, load_default=None, metadata={
        "description": "The sample's id; left out, SRS numbers it by the site's date."})
    checked_at = fields.AwareDateTime(load_default=None, metadata={
        "description": "When the sample was checked; left out, now."})
    area = _text(120, load_default=None, allow_none=True, metadata={
        "description": "Where it was bought or used (a neighbourhood), as the client says."})
    sample_type = fields.String(load_default="substance",
                                validate=_choice(SAMPLE_TYPES, "a sample type"))
    expected = _text(80, load_default=None, allow_none=True, metadata={
        "description": "What it was sold as, from the site's substance list."})
    colour = _text(40, load_default=None, allow_none=True)
    form = fields.String(load_default=None, allow_none=True,
                         validate=_choice(SAMPLE_FORMS, "a form"))
    methods = fields.List(fields.String(validate=_choice(METHODS, "a method")),
                          load_default=list, validate=validate.Length(max=len(METHODS)))
    strips = fields.Nested(StripsSchema, load_default=dict, metadata={
        "description": "Each strip's result; a strip method needs one."})
    reagent_result = _text(200, load_default=None, allow_none=True)
    components = fields.List(fields.Nested(ComponentSchema), load_default=list,
                             validate=validate.Length(max=20, error="At most 20 components."))
    lab_status = fields.String(load_default=None, validate=_choice(LAB_STATUSES, "a status"))
    lab_result = _text(300, load_default=None, allow_none=True)
    linked_overdose = fields.Boolean(load_default=False)
    overdose_response_id = RecordId(load_default=None, allow_none=True)
    used_before = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "The client used this batch before; null when not asked."})
    visit_id = RecordId(load_default=None, allow_none=True)


class DrugCheckForm(Form):
    """The check form: radio buttons per strip (``strip-<name>``), method checkboxes and
    component rows (``comp-<i>-substance``, ``-percent``, ``-uncertain``)."""

    every_blank_absent = True
    strip_text = True

    sample_code = _text(40, load_default=None)
    area = _text(120, load_default=None)
    sample_type = fields.String(load_default="substance",
                                validate=_choice(SAMPLE_TYPES, "a sample type"))
    expected = _text(80, load_default=None)
    colour = _text(40, load_default=None)
    form = fields.String(load_default=None, validate=_choice(SAMPLE_FORMS, "a form"))
    methods = fields.List(fields.String(validate=_choice(METHODS, "a method")),
                          load_default=list)
    strips = fields.Dict(keys=fields.String(validate=_choice(STRIPS, "a strip")),
                         values=fields.String(validate=_choice(STRIP_RESULTS, "a result")),
                         load_default=dict)
    reagent_result = _text(200, load_default=None)
    components = fields.List(fields.Nested(ComponentSchema), load_default=list)
    lab_status = fields.String(load_default=None, validate=_choice(LAB_STATUSES, "a status"))
    lab_result = _text(300, load_default=None)
    linked_overdose = fields.Boolean(load_default=False)
    overdose_response_id = fields.Integer(load_default=None, validate=validate.Range(
        1, 2**31 - 1, error="A response number, as the console shows it."))
    used_before = fields.Boolean(load_default=None)

    @pre_load
    def _from_inputs(self, data, **_kwargs):
        data = dict(data)
        strips = {}
        for name in STRIPS:
            value = data.pop(f"strip-{name}", None)
            if value:
                strips[name] = value
        data["strips"] = strips
        rows = []
        for i in range(FORM_COMPONENTS):
            substance = (data.pop(f"comp-{i}-substance", "") or "").strip()
            percent = (data.pop(f"comp-{i}-percent", "") or "").strip()
            uncertain = data.pop(f"comp-{i}-uncertain", None)
            if substance:
                row = {"substance": substance, "uncertain": bool(uncertain)}
                if percent:
                    row["percent"] = int(percent) if percent.isdigit() else percent
                rows.append(row)
        data["components"] = rows
        if data.get("used_before") in ("", None):
            data.pop("used_before", None)
        return data


class SubstanceForm(Form):
    strip_text = True

    name = _text(80, required=True, error_messages={"required": "Give the substance's name."})
    family = fields.String(load_default="other", validate=_choice(FAMILIES, "a family"))


class WatchForm(Form):
    strip_text = True

    substance = _text(80, required=True, error_messages={
        "required": "Give the substance to watch for."})


class DrugCheckSchema(Schema):
    id = fields.Integer()
    sample_code = fields.String()
    checked_at = fields.AwareDateTime()
    area = fields.String(allow_none=True)
    sample_type = fields.String()
    expected = fields.String(allow_none=True)
    colour = fields.String(allow_none=True)
    form = fields.String(allow_none=True)
    methods = fields.List(fields.String())
    strips = fields.Function(
        lambda c: {name: c.strip_result(name) for name in STRIPS},
        metadata={"description": "Each strip's result, null where that strip was not used."})
    reagent_result = fields.String(allow_none=True)
    components = fields.List(fields.Nested(ComponentSchema))
    lab_status = fields.String()
    lab_result = fields.String(allow_none=True)
    linked_overdose = fields.Boolean()
    overdose_response_id = fields.Integer(allow_none=True)
    used_before = fields.Boolean(allow_none=True)
    visit_id = fields.Integer(allow_none=True)
    recorded_at = fields.AwareDateTime()
    drug_alert_id = fields.Method("_alert_id", allow_none=True, metadata={
        "description": "The drug alert its finding drafted, if any."})

    def _alert_id(self, check):
        return getattr(check, "drug_alert_id", None)


# --- Drug alerts ----------------------------------------------------------------------------


class _AlertFields(Schema):
    area = _text(120, allow_none=True)
    expected = _text(120, allow_none=True)
    found = fields.String(allow_none=True, validate=validate.Length(max=2000))
    appearance = _text(200, allow_none=True)
    packaging = _text(200, allow_none=True)
    effects = fields.String(allow_none=True, validate=validate.Length(max=2000))
    advice = fields.List(fields.String(validate=_choice(ADVICE, "standard advice")))
    advice_text = fields.String(allow_none=True, validate=validate.Length(max=2000))
    evidence = fields.String(validate=_choice(EVIDENCE, "an evidence level"))
    audience = fields.String(validate=_choice(AUDIENCES, "an audience"))
    urgent = fields.Boolean(metadata={"description": "Sound as an alarm on the sites' screens."})
    valid_for_days = fields.Integer(strict=True, validate=validate.Range(
        1, 365, error="Between 1 and 365 days."))


class DrugAlertInputSchema(_AlertFields):
    class Meta:
        unknown = RAISE

    kind = fields.String(load_default="drug_alert", validate=_choice(ALERT_KINDS, "a kind"))
    scope = fields.String(load_default="site", validate=_choice(SCOPES, "a scope"))


class DrugAlertForm(Form, _AlertFields):
    """The alert page's edit form: a blank text is None; unticked advice is none."""

    strip_text = True
    optional = ("valid_for_days",)
    valid_for_days = fields.Integer(validate=validate.Range(
        1, 365, error="Between 1 and 365 days."))

    @pre_load
    def _blanks(self, data, **_kwargs):
        data = dict(data)
        for name in ("area", "expected", "found", "appearance", "packaging", "effects",
                     "advice_text"):
            if isinstance(data.get(name), str) and not data[name].strip():
                data[name] = None
        data.setdefault("advice", [])
        data["urgent"] = bool(data.get("urgent"))
        return data


class NewAlertForm(DrugAlertForm):
    kind = fields.String(load_default="drug_alert", validate=_choice(ALERT_KINDS, "a kind"))


class RetractSchema(Schema):
    class Meta:
        unknown = RAISE

    reason = _text(300, required=True, metadata={"description": "Why it is withdrawn."})


class RetractForm(Form):
    strip_text = True

    reason = _text(300, required=True, error_messages={
        "required": "Say why the alert is withdrawn."})


class DrugAlertSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    status = fields.String()
    title = fields.String()
    site_id = fields.Integer(allow_none=True, metadata={
        "description": "The drafting site; null for an organisation-wide advisory."})
    scope = fields.String()
    site_ids = fields.List(fields.Integer(), metadata={"description": "Sites it covers."})
    area = fields.String(allow_none=True)
    expected = fields.String(allow_none=True)
    found = fields.String(allow_none=True)
    appearance = fields.String(allow_none=True)
    packaging = fields.String(allow_none=True)
    effects = fields.String(allow_none=True)
    advice = fields.List(fields.String())
    advice_text = fields.String(allow_none=True)
    evidence = fields.String()
    audience = fields.String()
    urgent = fields.Boolean()
    valid_for_days = fields.Integer()
    valid_until = fields.AwareDateTime(allow_none=True)
    drug_check_id = fields.Integer(allow_none=True)
    cluster_count = fields.Integer(allow_none=True)
    first_overdose_at = fields.AwareDateTime(allow_none=True)
    last_overdose_at = fields.AwareDateTime(allow_none=True)
    drafted_at = fields.AwareDateTime()
    drafted_by = fields.Integer(allow_none=True, metadata={
        "description": "Staff id; null when SRS drafted it (watch list, cluster scan)."})
    validated_at = fields.AwareDateTime(allow_none=True)
    validated_by = fields.Integer(allow_none=True)
    published_at = fields.AwareDateTime(allow_none=True)
    published_by = fields.Integer(allow_none=True)
    ended_at = fields.AwareDateTime(allow_none=True)
    retract_reason = fields.String(allow_none=True)
