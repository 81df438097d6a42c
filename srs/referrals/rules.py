"""Rules as data: a condition in a small fixed vocabulary, checked by a schema, never eval'd.

A condition is one of::

    {"fact": "overdoses", "days": 30, "op": ">=", "value": 1}
    {"all": [condition, ...]}      every one holds
    {"any": [condition, ...]}      at least one holds

Facts that count over a window (``overdoses``, ``opioid_overdoses``, ``visits``,
``injecting_share``) need ``days``; the others refuse it. A reason names facts in braces:
``"Overdose on {last_overdose}"``.
"""

import math
import string
from dataclasses import dataclass

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from srs.referrals.models import HOUSING, OAT_MEDICATIONS, SERVICE_TYPES


@dataclass(frozen=True)
class Fact:
    name: str
    kind: str  # "int", "number", "bool", "choice", "days_since"
    label: str
    windowed: bool = False
    choices: tuple[str, ...] = ()
    title: str = ""  # what the admin's form calls it


FACTS: dict[str, Fact] = {f.name: f for f in (
    Fact("overdoses", "int", "Overdose responses (any kind) at the site in the last `days` days",
         windowed=True, title="Overdoses (any kind)"),
    Fact("opioid_overdoses", "int", "Opioid overdose responses at the site in the last `days` "
         "days", windowed=True, title="Opioid overdoses"),
    Fact("visits", "int", "Visits to the site in the last `days` days", windowed=True,
         title="Visits"),
    Fact("injecting_share", "number",
         "Share of recorded uses that were injected in the last `days` days (0 to 1)",
         windowed=True, title="Share of uses injected"),
    Fact("first_visit", "bool", "This is the client's first visit to the site",
         title="First visit to the site"),
    Fact("on_oat", "bool", "On opioid agonist treatment now (care profile)", title="On OAT now"),
    Fact("oat_medication", "choice", "Which OAT, if any (care profile)",
         choices=tuple(OAT_MEDICATIONS), title="OAT medication"),
    Fact("failed_oral_oat", "int", "Past oral OAT attempts that did not work (care profile)",
         title="Failed oral OAT attempts"),
    Fact("days_since_hiv_test", "days_since",
         "Days since the last HIV test; never recorded counts as longer than any number",
         title="Days since an HIV test"),
    Fact("days_since_hcv_test", "days_since",
         "Days since the last HCV test; never recorded counts as longer than any number",
         title="Days since an HCV test"),
    Fact("housing", "choice", "Housing status (care profile)", choices=tuple(HOUSING),
         title="Housing"),
    Fact("days_since_wound_noted", "days_since",
         "Days since a wound was noted; none noted counts as longer than any number",
         title="Days since a wound was noted"),
    Fact("days_since_treatment_interest", "days_since",
         "Days since the client asked about detox or treatment; never counts as longer",
         title="Days since asking about treatment"),
    Fact("age", "int", "Age in years from the code's birth year; unknown never matches",
         title="Age"),
)}
# The labels of a choice fact's values, as the care profile shows them.
CHOICE_LABELS = {"oat_medication": OAT_MEDICATIONS, "housing": HOUSING}

# Placeholders a reason may use besides the facts themselves: dates, written for a person.
REASON_EXTRAS = {
    "last_overdose": "date of the last overdose at the site",
    "last_hiv_test": "date of the last HIV test",
    "last_hcv_test": "date of the last HCV test",
    "wound_noted_on": "date a wound was noted",
    "treatment_interest_on": "date the client asked about detox or treatment",
}
PLACEHOLDERS = (*FACTS, *REASON_EXTRAS)

OPS_BY_KIND = {
    "int": ("==", "!=", "<", "<=", ">", ">="),
    "number": ("<", "<=", ">", ">="),
    "days_since": ("<", "<=", ">", ">="),
    "bool": ("==", "!="),
    "choice": ("==", "!="),
}
ALL_OPS = ("==", "!=", "<", "<=", ">", ">=")
# How the admin's form reads a comparison out: "Visits in the last 30 days is at least 4".
OP_LABELS = {"==": "is", "!=": "is not", "<": "is less than", "<=": "is at most",
             ">": "is more than", ">=": "is at least"}
MAX_DEPTH = 4
MAX_ATOMS = 20


class AtomSchema(Schema):
    class Meta:
        unknown = RAISE

    fact = fields.String(required=True, validate=validate.OneOf(
        list(FACTS), error="Unknown fact {input!r}; use one of: " + ", ".join(FACTS) + "."))
    op = fields.String(required=True, validate=validate.OneOf(
        ALL_OPS, error="Unknown comparison {input!r}; use one of: " + " ".join(ALL_OPS) + "."))
    value = fields.Raw(required=True)
    days = fields.Integer(strict=True, validate=validate.Range(
        min=1, max=3650, error="A window is 1 to 3650 days."),
        error_messages={"invalid": "A window is a whole number of days, 1 to 3650."})

    @validates_schema
    def _fits_the_fact(self, data, **_kwargs):
        fact = FACTS[data["fact"]]
        if data["op"] not in OPS_BY_KIND[fact.kind]:
            raise ValidationError(
                f"{fact.name!r} cannot be compared with {data['op']!r}; use one of: "
                f"{' '.join(OPS_BY_KIND[fact.kind])}.", "op")
        if fact.windowed and "days" not in data:
            raise ValidationError(f"{fact.name!r} counts over a window: give 'days'.", "days")
        if not fact.windowed and "days" in data:
            raise ValidationError(f"{fact.name!r} has no window: remove 'days'.", "days")
        value = data["value"]
        if fact.kind == "bool" and not isinstance(value, bool):
            raise ValidationError(f"{fact.name!r} is true or false.", "value")
        if fact.kind in ("int", "days_since") and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValidationError(f"{fact.name!r} compares with a whole number, 0 or more.",
                                  "value")
        if fact.kind == "number" and (isinstance(value, bool) or not isinstance(
                value, int | float) or not 0 <= value <= 1):
            raise ValidationError(f"{fact.name!r} compares with a number from 0 to 1.",
                                  "value")
        if fact.kind == "choice" and value not in fact.choices:
            raise ValidationError(f"{fact.name!r} is one of: {', '.join(fact.choices)}.",
                                  "value")


def check_condition(condition, *, depth: int = 0, counter: list | None = None) -> dict:
    """Return the condition, checked; raise ValidationError naming where it is wrong."""
    counter = counter if counter is not None else [0]
    if not isinstance(condition, dict):
        raise ValidationError("A condition is an object: a fact comparison, "
                              '{"all": [...]} or {"any": [...]}.')
    if depth > MAX_DEPTH:
        raise ValidationError(f"Nest 'all' and 'any' at most {MAX_DEPTH} deep.")
    group = [k for k in ("all", "any") if k in condition]
    if group:
        key = group[0]
        if len(condition) != 1:
            raise ValidationError(f"A {key!r} group holds only its list.")
        items = condition[key]
        if not isinstance(items, list) or not items:
            raise ValidationError(f"{key!r} takes a list of one or more conditions.")
        errors = {}
        for n, item in enumerate(items):
            try:
                check_condition(item, depth=depth + 1, counter=counter)
            except ValidationError as err:
                errors[f"{key}[{n}]"] = err.messages
        if errors:
            raise ValidationError(errors)
        return condition
    counter[0] += 1
    if counter[0] > MAX_ATOMS:
        raise ValidationError(f"A rule compares at most {MAX_ATOMS} facts.")
    AtomSchema().load(condition)
    return condition


def _flatten(messages, prefix: str = "") -> list[str]:
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            where = key if key == "_schema" else f"{prefix}{key}"
            out += _flatten(value, "" if key == "_schema" else f"{where}: ")
        return [m.replace("_schema", "").strip() for m in out]
    if isinstance(messages, list):
        return [m for item in messages for m in _flatten(item, prefix)]
    return [f"{prefix}{messages}"]


class ConditionField(fields.Field):
    """A condition as JSON (object or its text); messages say which part is wrong."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            import json

            try:
                value = json.loads(value)
            except ValueError as err:
                raise ValidationError(f"This is not valid JSON: {err.msg} at line {err.lineno}, "
                                      f"column {err.colno}.") from None
        try:
            return check_condition(value)
        except ValidationError as err:
            raise ValidationError(_flatten(err.messages)) from None


def check_template(template: str) -> str:
    """Refuse a reason with a placeholder that is not a fact, or broken braces."""
    try:
        names = [name for _, name, spec, conv in string.Formatter().parse(template)
                 if name is not None]
        specs = [(spec, conv) for _, name, spec, conv in string.Formatter().parse(template)
                 if name is not None]
    except ValueError as err:
        raise ValidationError(f"Braces do not match: {err}. Write {{{{ and }}}} for a brace."
                              ) from None
    for name in names:
        if name not in PLACEHOLDERS:
            raise ValidationError(f"Unknown placeholder {{{name}}}; use one of: "
                                  + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + ".")
    if any(spec or conv for spec, conv in specs):
        raise ValidationError("Write a placeholder as {name}, with no format or conversion.")
    return template


class RuleSchema(Schema):
    """A rule as the admin form or a seed gives it."""

    name = fields.String(required=True, validate=validate.Length(
        min=1, max=120, error="A name of 1 to 120 characters."))
    condition = ConditionField(required=True, metadata={"type": "object", "description": (
        'A comparison {"fact": ..., "op": ..., "value": ...} (a fact counted over a window '
        'also takes "days"), or {"all": [...]} / {"any": [...]} of conditions. Facts: '
        + ", ".join(f"{f.name} ({f.kind.replace('_', ' ')}"
                    + (", days" if f.windowed else "") + ")" for f in FACTS.values())
        + f". Comparisons: {' '.join(ALL_OPS)}.")})
    service_type = fields.String(required=True, validate=validate.OneOf(
        list(SERVICE_TYPES), error="Choose a service type."), metadata={
            "description": f"One of: {', '.join(SERVICE_TYPES)}."})
    reason_template = fields.String(required=True, validate=[
        validate.Length(min=1, max=300, error="A reason of 1 to 300 characters."),
        check_template], metadata={"description": "What the nurse reads; it may name in "
                                   "braces: " + ", ".join("{" + p + "}" for p in PLACEHOLDERS)})
    priority = fields.Integer(required=True, validate=validate.Range(
        min=0, max=100, error="A priority from 0 (lowest) to 100."))
    reoffer_days = fields.Integer(required=True, validate=validate.Range(
        min=0, max=365, error="Offer again after 0 to 365 days."))
    active = fields.Boolean(load_default=True)


# --- Evaluation -------------------------------------------------------------------------------


def fact_key(atom: dict) -> str:
    """Where a fact's value sits in the facts dict: windowed ones per window."""
    fact = FACTS[atom["fact"]]
    return f"{fact.name}@{atom['days']}" if fact.windowed else fact.name


def windows(condition: dict) -> set[tuple[str, int]]:
    """Every (windowed fact, days) a condition asks about, so facts are computed once each."""
    if "all" in condition or "any" in condition:
        return set().union(*(windows(c) for c in condition.get("all") or condition["any"]))
    if FACTS[condition["fact"]].windowed:
        return {(condition["fact"], condition["days"])}
    return set()


def _compare(left, op: str, right) -> bool:
    return {"==": left == right, "!=": left != right, "<": left < right,
            "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def holds(condition: dict, facts: dict) -> bool:
    """Whether ``condition`` holds for ``facts`` (from ``facts.gather``)."""
    if "all" in condition:
        return all(holds(c, facts) for c in condition["all"])
    if "any" in condition:
        return any(holds(c, facts) for c in condition["any"])
    fact = FACTS[condition["fact"]]
    value = facts.get(fact_key(condition))
    if fact.kind == "days_since" and value is None:
        value = math.inf  # never recorded: longer ago than any number of days
    if value is None:
        return False  # unknown never meets a condition
    return _compare(value, condition["op"], condition["value"])


def reason_text(template: str, condition: dict, facts: dict) -> str:
    """The reason a person reads: the template with the facts this rule looked at."""
    shown = {name: _shown(facts.get(name)) for name in PLACEHOLDERS}
    for fact, days in windows(condition):
        shown[fact] = _shown(facts.get(f"{fact}@{days}"), share=fact == "injecting_share")
    return template.format_map(shown)


def _shown(value, *, share: bool = False) -> str:
    if value is None:
        return "never"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if share:
        return f"{round(value * 100)}%"
    if hasattr(value, "strftime"):
        return f"{value.day} {value:%b %Y}"
    return str(value)
