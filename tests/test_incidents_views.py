"""The incident pages' forms take what the API takes: the same lengths, ranges and
vocabularies, and a refusal on the field with what was typed kept on the page."""

import html
import re

import pytest
from factories import make_site, make_staff, make_submitted_incident
from routes import assert_api_error, bearer
from test_form_api_limits import limits

from srs.auth.service import Actor
from srs.common import utcnow
from srs.extensions import db
from srs.incidents import schemas, service
from srs.incidents.models import Incident, IncidentAction

# Each API schema beside the page form that takes the same fields (a form's name for a
# field is the API's with the prefix).
COUNTERPARTS = [
    (schemas.IncidentCreateSchema, schemas.IncidentForm, ""),
    (schemas.IncidentUpdateSchema, schemas.IncidentForm, ""),
    (schemas.ReviewSchema, schemas.ReviewForm, ""),
    (schemas.NewActionSchema, schemas.ReviewForm, "action_"),
]
# API fields no page has an input for: the review form adds one action at a time (its
# ``action_`` fields) and notes no decision.
NO_INPUT = {"ReviewSchema": {"new_actions", "decision_note"}}


@pytest.mark.parametrize("api, form, prefix", COUNTERPARTS,
                         ids=lambda x: getattr(x, "__name__", x))
def test_the_forms_take_what_the_api_takes(api, form, prefix):
    api_fields, form_fields = api().fields, form().fields
    without_input = NO_INPUT.get(api.__name__, set())
    for name, field in api_fields.items():
        if name in without_input:
            continue
        assert prefix + name in form_fields, f"{form.__name__} has no {prefix}{name}"
        assert limits(form_fields[prefix + name]) == limits(field), f"{name}"
    # Something was compared: the report's text, the review's findings, the action's words.
    assert any(limits(f) for name, f in api_fields.items() if name not in without_input)


@pytest.fixture
def under_review(client, auth):
    """A report under review at a site, its reviewer signed in."""
    site = make_site(slug="north")
    nurse = make_staff(site, role="nurse")
    reviewer = make_staff(site, role="reviewer")
    now = utcnow()
    incident = make_submitted_incident(site, nurse, now=now)
    service.review_incident(incident, {"decision": "start_review"}, actor=Actor.of(reviewer),
                            roles={"reviewer"}, now=now)
    auth.login(reviewer.username)
    return site, incident, nurse, reviewer


def _field_error(page: str, name: str) -> str:
    match = re.search(rf'<p class="field-error"[^>]*data-error-for="{name}">(.*?)</p>', page,
                      re.S)
    assert match, f"no message on {name}"
    return html.unescape(match.group(1))


def test_a_too_long_action_is_refused_on_the_page_as_by_the_api(under_review, client, auth):
    """400 characters: the column holds 300 (SQLite would keep them all, PostgreSQL fail)."""
    site, incident, nurse, reviewer = under_review
    typed = "Empty the sharps bins at every shift change " * 9 + "and log it."  # 407
    refused = client.post(f"/api/v1/sites/{site.id}/incidents/{incident.id}/review",
                          headers=bearer(reviewer), json={"new_actions": [{
                              "description": typed, "owner_id": nurse.id,
                              "due_on": "2026-12-01"}]})
    api_message = assert_api_error(refused, 422, "new_actions")["errors"]["new_actions"]

    answer = auth.post(f"/sites/north/incidents/{incident.id}/review", {
        "action_description": typed, "action_owner_id": str(nurse.id),
        "action_due_on": "2026-12-01", "feedback": "Thanks for the quick report.",
        "lessons_learned": "Bins fill by noon."})
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    message = _field_error(page, "action_description")
    assert message == "Keep this to 300 characters or fewer." and message in str(api_message)
    action_input = re.search(r'<input id="action-desc"[^>]*>', page).group(0)
    assert f'value="{typed}"' in html.unescape(action_input)
    assert 'aria-invalid="true"' in action_input
    assert "Thanks for the quick report.</textarea>" in page
    assert "Bins fill by noon.</textarea>" in page
    assert re.search(rf'<option value="{nurse.id}" selected>', page)
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(IncidentAction.id))) == 0
    assert db.session.get(Incident, incident.id).feedback == ""

    kept = auth.post(f"/sites/north/incidents/{incident.id}/review", {
        "action_description": typed[:300], "action_owner_id": str(nurse.id),
        "action_due_on": "2026-12-01"})
    assert kept.status_code == 302
    assert db.session.execute(db.select(IncidentAction.description)).scalar_one() == typed[:300]


def test_an_action_missing_its_owner_says_so_on_the_field(under_review, auth):
    _site, incident, _nurse, _reviewer = under_review
    answer = auth.post(f"/sites/north/incidents/{incident.id}/review", {
        "action_description": "Fix the door", "action_due_on": "2026-12-01"})
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert _field_error(page, "action_owner_id") == "Choose who owns it."
    assert 'value="Fix the door"' in page


def test_a_too_long_amendment_reason_is_refused_on_its_field(under_review, client, auth):
    _site, incident, nurse, _reviewer = under_review
    auth.logout()
    auth.login(nurse.username)
    reason = "The time was wrong. " * 101  # 2,020 characters; the API takes 2,000
    answer = auth.post(f"/sites/north/incidents/{incident.id}/amend", {
        "type": "complaint", "area": "Waiting room", "narrative": "Client complained of wait.",
        "immediate_actions": "Listened.", "harm": "none", "amendment_reason": reason})
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "2000" in _field_error(page, "amendment_reason")
    assert f"{reason}</textarea>" in page and 'value="Waiting room"' in page
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).area == "Front desk"

