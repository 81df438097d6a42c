"""A page's form takes a field as the API takes it: the same lengths, ranges, vocabularies
and patterns, for every form of the incident, controlled-drug, compassion club, naloxone and
HAT pages beside the API operation that takes the same fields. A limit changed in one of the
two places only is a page and an API that disagree."""

import importlib
import inspect
import pkgutil
from datetime import date

import pytest
from marshmallow import Schema, fields, validate

import srs.api
from srs.forms import Form
from srs.incidents import schemas as incident_schemas
from srs.naloxone import training
from srs.naloxone.schemas import TraineeInputSchema, TrainingSessionInputSchema

PACKAGES = ("srs.incidents", "srs.controlled", "srs.compassion", "srs.naloxone", "srs.hat")

# Forms no API operation takes the fields of (the page's own actions), and why.
PAGE_ONLY = {
    "srs.incidents.schemas.FactorForm": "the contributing factors are kept on a page",
    "srs.controlled.schemas.ReturnForm": "a return to the supplier is a page action",
    "srs.controlled.schemas.PeriodForm": "the register download's period",
    "srs.compassion.supply_schemas.CheckForm": "linking a drug check is a page action",
    "srs.compassion.supply_schemas.ClearForm": "clearing a blocked batch is a page action",
    "srs.compassion.member_schemas.SuspendForm": "suspending a member is a page action",
    "srs.compassion.member_schemas.EndForm": "ending a membership is a page action",
    "srs.compassion.member_schemas.ConsentTextForm": "the consent text is written on a page",
    "srs.naloxone.schemas.MovementForm": "a stock movement is a page action",
    "srs.hat.missed_schemas.EmptyForm": "a button: its CSRF token only",
}
# Inputs a browser fills in another shape than the API's, checked in that shape.
OTHER_SHAPE = {
    "srs.hat.dosing_schemas.AssessmentForm.last_use_at": "a time on today's clock, not a moment",
}
# A form that names the API's fields with a prefix (the review's one new action at a time).
PREFIXED = [(incident_schemas.NewActionSchema, incident_schemas.ReviewForm, "action_")]


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


def _package(cls: type) -> str:
    return ".".join(cls.__module__.split(".")[:2])


def _import_all() -> None:
    for package in (srs.api, *(importlib.import_module(p) for p in PACKAGES)):
        for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)


def api_schemas() -> list[type[Schema]]:
    """The schemas the API's operations take (bodies and queries) in these packages."""
    _import_all()
    found = set()
    for module in pkgutil.iter_modules(srs.api.__path__, "srs.api."):
        for view in vars(importlib.import_module(module.name)).values():
            apidoc = getattr(view, "_apidoc", None) if inspect.isfunction(view) else None
            for argument in (apidoc or {}).get("arguments", {}).get("parameters", []):
                schema = argument["schema"]
                schema = schema if isinstance(schema, type) else type(schema)
                if _package(schema) in PACKAGES:
                    found.add(schema)
    return sorted(found, key=_name)


def page_forms() -> list[type[Form]]:
    _import_all()
    found, todo = set(), [Form]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if _package(sub) in PACKAGES and not sub.__name__.startswith("_"):
                found.add(sub)
    return sorted(found, key=_name)


def _shares_fields(form: type, api: type) -> bool:
    """The form is built on the API schema's field set (it or one of its bases)."""
    common = set(form.__mro__) & set(api.__mro__)
    return bool(common - set(Form.__mro__) - {Schema})


def counterparts() -> list[tuple[type, type, str]]:
    apis = api_schemas()
    pairs = [(api, form, "") for form in page_forms() for api in apis
             if _package(api) == _package(form) and _shares_fields(form, api)]
    return pairs + PREFIXED


def limits(field: fields.Field) -> list:
    """What a field accepts: lengths, ranges, choices, patterns, and its items' or members'."""
    found = []
    for rule in field.validators:
        if isinstance(rule, validate.Length):
            found.append(("length", rule.min, rule.max, rule.equal))
        elif isinstance(rule, validate.Range):
            found.append(("range", rule.min, rule.max, rule.min_inclusive,
                          rule.max_inclusive))
        elif isinstance(rule, validate.OneOf):
            found.append(("one of", tuple(rule.choices)))
        elif isinstance(rule, validate.Regexp):
            found.append(("pattern", rule.regex.pattern))
        else:
            found.append(("rule", type(rule).__name__))
    if isinstance(field, fields.List):
        found.append(("each", limits(field.inner)))
    elif isinstance(field, fields.Dict):
        for part, inner in (("key", field.key_field), ("value", field.value_field)):
            if inner is not None:
                found.append((part, limits(inner)))
    elif isinstance(field, fields.Nested):
        found.append(("members", {name: limits(member)
                                  for name, member in field.schema.fields.items()}))
    return found


PAIRS = counterparts()


def test_every_form_is_paired_or_page_only():
    paired = {_name(form) for _, form, _ in PAIRS}
    unpaired = [_name(f) for f in page_forms()
                if _name(f) not in paired and _name(f) not in PAGE_ONLY]
    assert not unpaired, (f"{unpaired}: build each on the field set of the API schema that "
                          f"takes the same fields, or list it as page only")
    # Each package's forms were found, and paired with the API's schemas.
    assert {_package(form) for _, form, _ in PAIRS} == set(PACKAGES)


@pytest.mark.parametrize("api, form, prefix", PAIRS,
                         ids=lambda x: getattr(x, "__name__", x))
def test_the_form_limits_what_the_api_limits(api, form, prefix):
    api_fields, form_fields = api().fields, form().fields
    shared = [name for name in api_fields if prefix + name in form_fields]
    assert shared, f"{form.__name__} takes none of {api.__name__}'s fields"
    for name in shared:
        if f"{_name(form)}.{prefix}{name}" in OTHER_SHAPE:
            continue
        assert limits(form_fields[prefix + name]) == limits(api_fields[name]), (
            f"{form.__name__}.{prefix}{name} and {api.__name__}.{name} take different values")


# --- The training page: no form schema, the service's checks ------------------------------


def _longest(schema: type[Schema]) -> dict[str, int]:
    """The longest text each of the schema's text fields takes."""
    return {name: rule.max for name, field in schema().fields.items()
            if isinstance(field, fields.String)
            for rule in field.validators if isinstance(rule, validate.Length) and rule.max}


def _session_refuses(name: str, value) -> bool:
    errors: dict = {}
    training._check_session(None, {"curriculum": "Take-home naloxone", name: value},
                            date(2026, 1, 1), errors)
    return name in errors


def _trainee_refuses(name: str, value) -> bool:
    named = {"first_name": "Ann", "last_name": "Lee", "badge_number": "B-1"}
    _clean, errors = training._check_trainee(None, {
        "kind": "police", "named_consent": True, **named, name: value})
    return name in errors


# A client code is checked against the site's code pattern, on the page as in the API.
BY_PATTERN = {"client_code"}


def test_the_training_page_takes_the_lengths_the_api_takes():
    session, trainee = _longest(TrainingSessionInputSchema), _longest(TraineeInputSchema)
    for name in BY_PATTERN:
        trainee.pop(name)
    assert session and trainee
    for refuses, longest in ((_session_refuses, session), (_trainee_refuses, trainee)):
        for name, most in longest.items():
            assert not refuses(name, "x" * most), f"{name}: {most} characters refused"
            assert refuses(name, "x" * (most + 1)), f"{name}: {most + 1} characters taken"


def test_the_training_page_takes_the_scores_the_api_takes():
    score = TraineeInputSchema().fields["post_test_score"]
    (rule,) = [r for r in score.validators if isinstance(r, validate.Range)]
    assert not _trainee_refuses("post_test_score", rule.min)
    assert not _trainee_refuses("post_test_score", rule.max)
    assert _trainee_refuses("post_test_score", rule.min - 1)
    assert _trainee_refuses("post_test_score", rule.max + 1)
