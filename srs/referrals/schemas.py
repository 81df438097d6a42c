"""Schemas for referrals: the admin's forms, the tablet's offers, and the JSON API.

HTML forms carry the CSRF token and idempotency key beside the fields, so their schemas
exclude unknown fields; the API's raise on them.
"""

import re

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from srs.common import RecordId
from srs.forms import Form
from srs.referrals.models import (
    FOLLOW_UP_OUTCOMES,
    HOUSING,
    OAT_MEDICATIONS,
    SERVICE_TYPES,
    OfferStatus,
)
from srs.referrals.rules import (
    FACTS,
    MAX_ATOMS,
    OPS_BY_KIND,
    RuleSchema,
    check_condition,
)


class _Form(Form):
    strip_text = True


_TYPE = validate.OneOf(list(SERVICE_TYPES), error="Choose a service type.")


def _text(max_length: int):
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(
        max=max_length, error=f"At most {max_length} characters."))


class ServiceForm(_Form):
    optional = ("contact", "hours", "notes")

    name = fields.String(required=True, error_messages={"required": "Name the service."},
                         validate=validate.Length(min=1, max=120,
                                                  error="A name of 1 to 120 characters."))
    service_type = fields.String(required=True, validate=_TYPE,
                                 error_messages={"required": "Choose a service type."})
    on_site = fields.Boolean(load_default=False)
    contact = _text(200)
    hours = _text(200)
    notes = _text(1000)
    active = fields.Boolean(load_default=False)


class ServiceSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String()
    service_type = fields.String()
    on_site = fields.Boolean()
    contact = fields.String(allow_none=True)
    hours = fields.String(allow_none=True)
    active = fields.Boolean()


class ServiceQuerySchema(Schema):
    """``listServices``' filter."""

    class Meta:
        unknown = RAISE

    service_type = fields.String(load_default=None, validate=validate.OneOf(
        list(SERVICE_TYPES), error="Unknown service type: {input}."), metadata={
            "description": f"Only this type: one of {', '.join(SERVICE_TYPES)}."})


class RuleForm(_Form, RuleSchema):
    """The admin's rule form once its condition rows are one condition (``load_rule_form``)."""

    active = fields.Boolean(load_default=False)


# The rule form's condition is rows of inputs named cond-<n>-<part>; ``match`` says whether
# every row must hold or any one. One row is the bare comparison, as a rule written by hand.
ROW_PART = re.compile(r"cond-(\d{1,3})-(fact|op|value|days)")
MATCHES = ("all", "any")
_WHOLE = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(r"[0-9]{0,9}(\.[0-9]{0,9})?")


def condition_rows(entered: dict) -> list[dict]:
    """The form's condition rows as typed, in their order on the page."""
    rows: dict[int, dict] = {}
    for name, value in entered.items():
        part = ROW_PART.fullmatch(name)
        if part and isinstance(value, str):
            rows.setdefault(int(part[1]), {})[part[2]] = value.strip()
    return [rows[n] for n in sorted(rows)]


def fit_row(row: dict) -> dict:
    """A row redrawn after its fact changed: what no longer fits the fact is let go, so its
    inputs start from the fact's first comparison and an empty value; a count over days
    starts at 30 days."""
    fact = FACTS.get(row.get("fact", ""))
    if fact is None:
        return row
    fitted = {"fact": fact.name}
    if row.get("op") in OPS_BY_KIND[fact.kind]:
        fitted["op"] = row["op"]
    if fact.windowed:
        fitted["days"] = row.get("days", "30")
    value = row.get("value", "")
    fits = {"bool": value == "true", "choice": value in fact.choices,
            "number": bool(_DECIMAL.fullmatch(value)), "int": bool(_WHOLE.fullmatch(value)),
            "days_since": bool(_WHOLE.fullmatch(value))}[fact.kind]
    if fits:
        fitted["value"] = value
    return fitted


def rule_form_values(rule) -> dict:
    """A saved rule as its form's inputs; a condition that nests groups has no rows."""
    values = {"name": rule.name, "service_type": rule.service_type,
              "reason_template": rule.reason_template, "priority": rule.priority,
              "reoffer_days": rule.reoffer_days, "active": rule.active, "match": "all"}
    condition = rule.condition
    group = next((key for key in MATCHES if key in condition), None)
    atoms = condition[group] if group else [condition]
    if any(key in atom for atom in atoms for key in MATCHES):
        return values
    values["match"] = group or "all"
    for n, atom in enumerate(atoms):
        values |= {f"cond-{n}-{part}": _typed_back(atom[part])
                   for part in ("fact", "op", "value", "days") if part in atom}
    return values


def _typed_back(value) -> str:
    if isinstance(value, bool):
        return "true" if value else ""
    return str(value)


def _typed(fact, raw: str | None):
    """A row's value as the JSON API would send it; what cannot be read stays as typed,
    for the schema to refuse with its message."""
    raw = raw or ""
    if fact is None or fact.kind == "choice":
        return raw
    if fact.kind == "bool":
        return raw in ("true", "on")
    if fact.kind == "number" and _DECIMAL.fullmatch(raw) and raw.strip("."):
        number = float(raw)
        return int(number) if number.is_integer() else number
    return int(raw) if _WHOLE.fullmatch(raw) else raw


def _atom(row: dict) -> dict:
    fact = FACTS.get(row.get("fact", ""))
    atom = {"fact": row.get("fact", ""), "op": row.get("op", ""),
            "value": _typed(fact, row.get("value"))}
    if fact is not None and fact.windowed and row.get("days"):
        days = row["days"]
        atom["days"] = int(days) if _WHOLE.fullmatch(days) else days
    return atom


def condition_from_rows(rows: list[dict], match: str) -> dict | None:
    """The condition the rows make, exactly as the JSON API takes it."""
    atoms = [_atom(row) for row in rows]
    if not atoms:
        return None
    return atoms[0] if len(atoms) == 1 else {match: atoms}


def _messages_by_row(messages, count: int) -> tuple[dict[int, dict], list[str]]:
    """``check_condition``'s messages put beside the row they are about."""
    by_row: dict[int, dict] = {}
    general: list[str] = []
    if not isinstance(messages, dict):
        return by_row, list(messages)
    for key, value in messages.items():
        item = re.fullmatch(r"(?:all|any)\[(\d+)\]", key)
        if item and int(item[1]) < count:
            by_row[int(item[1])] = value if isinstance(value, dict) else {"_row": value}
        elif count == 1 and key in ("fact", "op", "value", "days"):
            by_row.setdefault(0, {})[key] = value
        else:
            general += value if isinstance(value, list) else [str(value)]
    return by_row, general


def load_rule_form(entered: dict) -> dict:
    """The admin's rule form as the rule the JSON API would send, checked by RuleSchema.

    Raises ValidationError whose messages are by field name, a condition row's under
    ``rows`` (by position, then part), and what concerns the whole condition under
    ``condition``.
    """
    rows = condition_rows(entered)
    errors: dict = {}
    match = entered.get("match") or "all"
    if match not in MATCHES:
        errors["match"] = ["Choose whether every condition must hold or any one."]
        match = "all"
    condition = condition_from_rows(rows, match)
    if condition is None:
        errors["condition"] = ["Add at least one condition."]
    elif len(rows) > MAX_ATOMS:
        errors["condition"] = [f"A rule compares at most {MAX_ATOMS} facts."]
    else:
        try:
            check_condition(condition)
        except ValidationError as err:
            by_row, general = _messages_by_row(err.messages, len(rows))
            if by_row:
                errors["rows"] = by_row
            if general or not by_row:
                errors["condition"] = general or ["This condition is not valid."]
    others = {k: v for k, v in entered.items() if not ROW_PART.fullmatch(k)}
    if condition is not None:
        others["condition"] = condition
    try:
        data = RuleForm().load(others)
    except ValidationError as err:
        for field, messages in err.messages.items():
            if field != "condition" or not ("condition" in errors or "rows" in errors):
                errors[field] = messages
    if errors:
        raise ValidationError(errors)
    return data


class RuleBodySchema(RuleSchema):
    """createReferralRule's and updateReferralRule's body: the rule form's fields with the
    condition as JSON, checked by the same RuleSchema as the form."""

    class Meta:
        unknown = RAISE


class RuleDumpSchema(Schema):
    id = fields.Integer(metadata={"description": "This version's id."})
    key = fields.String(metadata={"description": "Names the rule across its versions."})
    version = fields.Integer()
    name = fields.String()
    condition = fields.Dict()
    service_type = fields.String()
    reason_template = fields.String()
    priority = fields.Integer()
    reoffer_days = fields.Integer()
    active = fields.Boolean()
    created_at = fields.AwareDateTime()


class CareProfileForm(_Form):
    optional = ("last_hiv_test", "last_hcv_test", "wound_noted_on", "treatment_interest_on")

    oat_medication = fields.String(load_default="none", validate=validate.OneOf(
        list(OAT_MEDICATIONS), error="Choose one."))
    failed_oral_oat = fields.Integer(load_default=0, validate=validate.Range(
        min=0, max=20, error="0 to 20 attempts."))
    last_hiv_test = fields.Date(load_default=None, error_messages={
        "invalid": "Enter a date like 2026-03-01."})
    last_hcv_test = fields.Date(load_default=None, error_messages={
        "invalid": "Enter a date like 2026-03-01."})
    housing = fields.String(load_default="unknown", validate=validate.OneOf(
        list(HOUSING), error="Choose one."))
    wound_noted_on = fields.Date(load_default=None, error_messages={
        "invalid": "Enter a date like 2026-03-01."})
    treatment_interest_on = fields.Date(load_default=None, error_messages={
        "invalid": "Enter a date like 2026-03-01."})


_STATUS = validate.OneOf(list(OfferStatus), error="Choose offered, accepted, declined or "
                                                  "not_now.")


class OfferForm(_Form):
    optional = ("rule_id", "service_id", "follow_up_days")

    service_type = fields.String(required=True, validate=_TYPE)
    status = fields.String(required=True, validate=_STATUS,
                           error_messages={"required": "Choose what the client said."})
    rule_id = RecordId(load_default=None, strict=False)
    service_id = RecordId(load_default=None, strict=False)
    consent = fields.Boolean(load_default=False)
    follow_up_days = fields.Integer(load_default=None, validate=validate.Range(
        min=1, max=90, error="Follow up in 1 to 90 days."))


class OfferSchema(Schema):
    """recordReferral's body: one step of an offer; ``accepted`` makes the referral."""

    class Meta:
        unknown = RAISE

    service_type = fields.String(required=True, validate=_TYPE, metadata={
        "description": f"One of: {', '.join(SERVICE_TYPES)}."})
    status = fields.String(required=True, validate=_STATUS, metadata={
        "description": "offered, then accepted, declined or not_now (or one of those "
                       "straight away)."})
    rule_id = RecordId(load_default=None, allow_none=True, metadata={
        "description": "The rule version whose suggestion this answers (from "
                       "listReferralSuggestions)."})
    service_id = RecordId(load_default=None, allow_none=True, metadata={
        "description": "accepted only: the directory entry referred to."})
    consent = fields.Boolean(load_default=False, metadata={
        "description": "accepted only: the client agreed to be referred (must be true)."})
    follow_up_days = fields.Integer(load_default=None, allow_none=True, strict=True,
                                    validate=validate.Range(min=1, max=90), metadata={
        "description": "accepted only: follow up in this many days (default 7)."})


class OutcomeForm(_Form):
    referral_id = RecordId(required=True, strict=False)
    outcome = fields.String(required=True, validate=validate.OneOf(
        list(FOLLOW_UP_OUTCOMES), error="Choose what happened."),
        error_messages={"required": "Choose what happened."})


class OutcomeSchema(Schema):
    class Meta:
        unknown = RAISE

    outcome = fields.String(required=True, validate=validate.OneOf(list(FOLLOW_UP_OUTCOMES)),
                            metadata={"description": ", ".join(FOLLOW_UP_OUTCOMES)})


class ReferralSchema(Schema):
    id = fields.Integer()
    service = fields.Nested(ServiceSchema)
    consent_given = fields.Boolean()
    referred_at = fields.AwareDateTime()
    follow_up_due = fields.Date()
    outcome = fields.String(allow_none=True)
    outcome_at = fields.AwareDateTime(allow_none=True)


class OfferDumpSchema(Schema):
    id = fields.Integer()
    visit_id = fields.Integer()
    service_type = fields.String()
    rule_id = fields.Integer(allow_none=True)
    rule_version = fields.Function(lambda o: o.rule.version if o.rule else None)
    reason = fields.String(allow_none=True)
    status = fields.String()
    offered_at = fields.AwareDateTime()
    decided_at = fields.AwareDateTime(allow_none=True)
    referral = fields.Nested(ReferralSchema, allow_none=True)


class SuggestionSchema(Schema):
    service_type = fields.String()
    label = fields.String()
    reason = fields.String(metadata={"description": "Why, from the facts the rule looked at."})
    priority = fields.Integer()
    rule_id = fields.Function(lambda s: s.rule.id if s.rule else None)
    rule_key = fields.Function(lambda s: s.rule.key if s.rule else None)
    rule_version = fields.Function(lambda s: s.rule.version if s.rule else None)
    status = fields.String(allow_none=True, metadata={
        "description": "null until offered in this visit; then offered."})
    offer_id = fields.Function(lambda s: s.offer.id if s.offer else None)


class SuggestionsSchema(Schema):
    suggestions = fields.List(fields.Nested(SuggestionSchema))
    answered = fields.List(fields.Nested(OfferDumpSchema), metadata={
        "description": "Offers already answered in this visit."})

