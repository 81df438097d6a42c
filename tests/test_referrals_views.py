"""Referrals through the test client: the admin's forms, the tablet's panel, follow-ups,
uptake, and the JSON API."""

import re
from datetime import timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from factories import make_booth, make_referral, make_service, make_site, make_staff
from live_helpers import api_token

from srs.auth.service import Actor
from srs.booths import service as floor
from srs.common import utcnow
from srs.extensions import db
from srs.overdose.models import OverdoseResponse
from srs.referrals import service
from srs.referrals.models import Referral, ReferralOffer, ReferralRule
from srs.referrals.schemas import condition_rows

HTMX = {"HX-Request": "true"}


@pytest.fixture
def site(app):
    site = make_site(slug="east", name="East")
    service.seed_default_rules(site, actor=Actor.system("test"), now=utcnow())
    return site


@pytest.fixture
def nurse(site):
    return make_staff(site, role="nurse", username="nina")


@pytest.fixture
def overdosed_visit(site, nurse):
    """A client with an opioid overdose last week, checked in now."""
    visit = floor.check_in(site, code="F-ABCD-1984", handle=None, actor=Actor.of(nurse),
                           actor_roles={"nurse"}, now=utcnow())
    db.session.add(OverdoseResponse(
        site_id=site.id, client_id=visit.client_id, kind="opioid", source="booth",
        started_at=utcnow() - timedelta(days=7), closed_at=utcnow() - timedelta(days=7),
        outcome="recovered_on_site"))
    db.session.commit()
    return visit


def text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


# --- Admin: rules ---------------------------------------------------------------------------

RULE = {"name": "Often here", "service_type": "peer_support",
        "reason_template": "{visits} visits in 30 days",
        "cond-0-fact": "visits", "cond-0-days": "30", "cond-0-op": ">=", "cond-0-value": "8",
        "priority": "30", "reoffer_days": "30", "active": "on"}


class FormValues(HTMLParser):
    """What a browser would post from a page's inputs: checked boxes, selected options."""

    def __init__(self, html: str):
        super().__init__()
        self.values: dict[str, str] = {}
        self.textareas: list[str] = []
        self._select: str | None = None
        self._first: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "textarea":
            self.textareas.append(name)
        elif tag == "input" and name and attrs.get("type") not in ("checkbox", "hidden"):
            self.values[name] = attrs.get("value") or ""
        elif tag == "input" and name and attrs.get("type") == "checkbox":
            if "checked" in attrs:
                self.values[name] = attrs.get("value") or "on"
        elif tag == "input" and name == "match":
            self.values[name] = attrs.get("value") or ""
        elif tag == "select":
            self._select, self._first = name, None
        elif tag == "option" and self._select:
            if self._first is None:
                self._first = attrs.get("value") or ""
            if "selected" in attrs:
                self.values[self._select] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "select" and self._select:
            self.values.setdefault(self._select, self._first or "")
            self._select = None


def rows_shown(response) -> list[dict]:
    """The condition rows a page shows, as their typed parts."""
    values = FormValues(response.get_data(as_text=True)).values
    return condition_rows(values)


@pytest.fixture
def admin(site, client, auth):
    staff = make_staff(site, role="admin", username="ada")
    auth.login("ada")
    return staff


IOAT_ROWS = {"match": "all",
             "cond-0-fact": "failed_oral_oat", "cond-0-op": ">=", "cond-0-value": "2",
             "cond-1-fact": "injecting_share", "cond-1-days": "90", "cond-1-op": ">=",
             "cond-1-value": "0.5",
             "cond-2-fact": "on_oat", "cond-2-op": "==",  # unticked: false
             "cond-3-fact": "housing", "cond-3-op": "!=", "cond-3-value": "housed"}
IOAT_JSON = {"all": [{"fact": "failed_oral_oat", "op": ">=", "value": 2},
                     {"fact": "injecting_share", "days": 90, "op": ">=", "value": 0.5},
                     {"fact": "on_oat", "op": "==", "value": False},
                     {"fact": "housing", "op": "!=", "value": "housed"}]}


def test_a_rule_made_with_the_form_is_the_rule_posted_as_json(site, client, auth, admin):
    form = {**RULE, "name": "Made on screen", **IOAT_ROWS}
    assert auth.post(f"/sites/{site.slug}/referrals/rules", form).status_code == 303
    by_form = db.session.execute(
        db.select(ReferralRule).filter_by(name="Made on screen")).scalar_one()
    posted = client.post(f"/api/v1/sites/{site.id}/referral-rules", json={
        "name": "Posted as JSON", "condition": IOAT_JSON, "service_type": "peer_support",
        "reason_template": "{visits} visits in 30 days", "priority": 30, "reoffer_days": 30,
        "active": True}, headers={"Authorization": f"Bearer {api_token(admin)}"})
    assert posted.status_code == 201, posted.get_json()
    as_json = db.session.get(ReferralRule, posted.get_json()["id"])
    assert by_form.condition == as_json.condition == IOAT_JSON
    assert (by_form.service_type, by_form.reason_template, by_form.priority,
            by_form.reoffer_days, by_form.active) == (
        as_json.service_type, as_json.reason_template, as_json.priority,
        as_json.reoffer_days, as_json.active)
    # One row is the bare comparison, as a rule written by hand.
    assert auth.post(f"/sites/{site.slug}/referrals/rules", RULE).status_code == 303
    one = db.session.execute(db.select(ReferralRule).filter_by(name="Often here")).scalar_one()
    assert one.condition == {"fact": "visits", "days": 30, "op": ">=", "value": 8}


def test_the_api_refuses_what_the_form_refuses_with_the_same_message(site, client, admin):
    bearer = {"Authorization": f"Bearer {api_token(admin)}"}
    body = {"name": "Bad", "condition": {"all": [
        {"fact": "visits", "days": 30, "op": ">=", "value": 4},
        {"fact": "housing", "op": "<", "value": "housed"}]},
        "service_type": "peer_support", "reason_template": "Seen {often}", "priority": 30,
        "reoffer_days": 30}
    refused = client.post(f"/api/v1/sites/{site.id}/referral-rules", json=body,
                          headers=bearer)
    assert refused.status_code == 422
    errors = refused.get_json()["errors"]
    assert "all[1]: op: 'housing' cannot be compared with '<'" in " ".join(
        errors["condition"])
    assert "Unknown placeholder {often}" in " ".join(errors["reason_template"])
    ioat = next(r for r in service.current_rules(site) if r.key == "ioat")
    changed = client.put(f"/api/v1/sites/{site.id}/referral-rules/{ioat.id}", json={
        **body, "name": ioat.name, "condition": ioat.condition, "reason_template": "x"},
        headers=bearer)
    assert (changed.status_code, changed.get_json()["version"]) == (200, 2)
    listed = client.get(f"/api/v1/sites/{site.id}/referral-rules", headers=bearer).get_json()
    assert {r["key"]: r["version"] for r in listed}["ioat"] == 2
    again = client.put(f"/api/v1/sites/{site.id}/referral-rules/{ioat.id}", json=body | {
        "condition": ioat.condition, "reason_template": "x"}, headers=bearer)
    assert again.status_code == 409


@pytest.mark.parametrize(("change", "field_message"), [
    ({"cond-1-fact": "overdose"}, "Unknown fact &#39;overdose&#39;"),
    ({"cond-1-op": "=>"}, "Unknown comparison &#39;=&gt;&#39;"),
    ({"cond-1-op": "<"}, "&#39;housing&#39; cannot be compared with &#39;&lt;&#39;"),
    ({"cond-1-value": "tent"}, "&#39;housing&#39; is one of"),
    ({"cond-0-days": ""}, "&#39;visits&#39; counts over a window: give &#39;days&#39;."),
    ({"cond-0-value": "lots"}, "&#39;visits&#39; compares with a whole number"),
    ({"reason_template": "Seen {often}"}, "Unknown placeholder {often}"),
    ({"priority": "250"}, "A priority from 0 (lowest) to 100."),
])
def test_a_bad_rule_is_refused_beside_its_field_with_every_row_kept(
        site, client, auth, admin, change, field_message):
    typed = {**RULE, "cond-1-fact": "housing", "cond-1-op": "==",
             "cond-1-value": "no_fixed_address", "cond-2-fact": "age", "cond-2-op": ">=",
             "cond-2-value": "18", **change}
    response = auth.post(f"/sites/{site.slug}/referrals/rules", typed)
    assert response.status_code == 422
    page = text(response)
    assert "The rule was not saved" in page
    assert field_message in page
    assert 'aria-invalid="true"' in page
    assert rows_shown(response) == condition_rows(typed)
    assert FormValues(response.get_data(as_text=True)).values["reason_template"] == typed[
        "reason_template"]
    assert db.session.scalar(db.select(db.func.count(ReferralRule.id)).filter_by(
        name="Often here")) == 0


def test_a_rule_without_conditions_is_refused(site, client, auth, admin):
    typed = {k: v for k, v in RULE.items() if not k.startswith("cond-")}
    response = auth.post(f"/sites/{site.slug}/referrals/rules", typed)
    assert response.status_code == 422
    assert "Add at least one condition." in text(response)


def test_editing_a_rule_prefills_every_row(site, client, auth, admin):
    ioat = next(r for r in service.current_rules(site) if r.key == "ioat")
    page = client.get(f"/sites/{site.slug}/referrals/rules/{ioat.id}")
    shown = FormValues(page.get_data(as_text=True)).values
    assert condition_rows(shown) == [
        {"fact": "failed_oral_oat", "op": ">=", "value": "2"},
        {"fact": "injecting_share", "days": "90", "op": ">=", "value": "0.5"},
        {"fact": "age", "op": ">=", "value": "18"}]
    assert (shown["match"], shown["service_type"], shown["priority"], shown["active"]) == (
        "all", "ioat", "85", "on")
    # Saved untouched, the form gives the same rule as a new version.
    assert auth.post(f"/sites/{site.slug}/referrals/rules/{ioat.id}", shown).status_code == 303
    current = next(r for r in service.current_rules(site) if r.key == "ioat")
    assert (current.version, current.condition) == (2, ioat.condition)


def test_a_condition_with_groups_in_groups_is_shown_not_lost(site, client, auth, admin):
    nested = {"any": [{"all": [{"fact": "age", "op": ">=", "value": 18},
                               {"fact": "first_visit", "op": "==", "value": True}]},
                      {"fact": "housing", "op": "==", "value": "no_fixed_address"}]}
    rule = service.create_rule(site, {
        "name": "From an integration", "condition": nested, "service_type": "housing",
        "reason_template": "x", "priority": 10, "reoffer_days": 30},
        actor=Actor.system("test"), now=utcnow())
    page = client.get(f"/sites/{site.slug}/referrals/rules/{rule.id}")
    assert page.status_code == 200
    assert "cannot show as rows" in text(page) and "&#34;op&#34;: &#34;&gt;=&#34;" in text(page)
    assert rows_shown(page) == [{"fact": "", "op": "==", "value": ""}]


def test_the_rule_form_has_rows_not_json(site, client, auth, admin):
    page = client.get(f"/sites/{site.slug}/referrals/rules")
    parsed = FormValues(page.get_data(as_text=True))
    assert parsed.textareas == []
    assert "JSON" not in text(page)
    assert rows_shown(page) == [{"fact": "", "op": "==", "value": ""}]
    assert "{last_overdose}" in text(page)  # the placeholders a reason may use


def test_choosing_a_fact_fits_the_comparisons_and_the_value_input(site, client, auth, admin):
    url = f"/sites/{site.slug}/referrals/rules/conditions"
    housing = text(auth.post(url, {"cond-0-fact": "housing", "cond-0-op": ">="}, headers=HTMX))
    assert '<option value="no_fixed_address">No fixed address</option>' in housing
    assert "is at least" not in housing and 'name="cond-0-days"' not in housing
    # Age "is at least 18" turned into "On OAT now": what no longer fits is let go.
    on_oat = auth.post(url, {"cond-0-fact": "on_oat", "cond-0-op": ">=", "cond-0-value": "18"},
                       headers=HTMX)
    assert 'type="checkbox" value="true"' in text(on_oat)
    assert rows_shown(on_oat) == [{"fact": "on_oat", "op": "=="}]
    visits = auth.post(url, {"cond-0-fact": "visits", "cond-0-op": ">=", "cond-0-value": "4"},
                       headers=HTMX)
    assert rows_shown(visits) == [{"fact": "visits", "days": "30", "op": ">=", "value": "4"}]


def test_adding_and_removing_a_row_keeps_what_is_typed(site, client, auth, admin):
    url = f"/sites/{site.slug}/referrals/rules/conditions"
    typed = IOAT_ROWS
    added = auth.post(url, {**typed, "add": "1"}, headers=HTMX)
    assert added.status_code == 200
    assert rows_shown(added) == [*condition_rows(typed), {"fact": "", "op": "==", "value": ""}]
    removed = auth.post(url, {**typed, "remove": "1"}, headers=HTMX)
    kept = condition_rows(typed)
    assert rows_shown(removed) == [kept[0], kept[2], kept[3]]
    assert FormValues(removed.get_data(as_text=True)).values["match"] == "all"


def test_an_admin_adds_and_changes_a_rule_as_versions(site, client, auth, admin):
    created = auth.post(f"/sites/{site.slug}/referrals/rules", RULE)
    assert created.status_code == 303
    v1 = db.session.execute(db.select(ReferralRule).filter_by(name="Often here")).scalar_one()
    assert (v1.key, v1.version, v1.condition["value"]) == ("often-here", 1, 8)
    changed = auth.post(f"/sites/{site.slug}/referrals/rules/{v1.id}",
                        {**RULE, "cond-0-value": "10"})
    assert changed.status_code == 303
    page = text(client.get(changed.headers["Location"]))
    assert "v2" in page and "Save as version 3" in page
    db.session.expire_all()
    assert [r.version for r in service.rule_history(v1)] == [2, 1]
    current = next(r for r in service.current_rules(site) if r.key == "often-here")
    assert (current.version, current.condition["value"]) == (2, 10)


def test_a_new_site_gets_the_defaults_with_one_button(client, auth):
    site = make_site(slug="north")
    make_staff(site, role="admin", username="ada")
    auth.login("ada")
    assert "No rules yet" in text(client.get("/sites/north/referrals/rules"))
    assert auth.post("/sites/north/referrals/rules/defaults").status_code == 303
    assert len(service.current_rules(site)) == len(service.DEFAULT_RULES)


def test_the_service_directory_form(site, client, auth, admin):
    refused = auth.post(f"/sites/{site.slug}/referrals/services", {"service_type": "oat"})
    assert refused.status_code == 422 and "Name the service." in text(refused)
    added = auth.post(f"/sites/{site.slug}/referrals/services", {
        "name": "Rapid access OAT", "service_type": "oat", "contact": "Walk in",
        "hours": "Mon-Fri 9-3", "active": "on"})
    assert added.status_code == 303
    page = text(client.get(f"/sites/{site.slug}/referrals/services"))
    assert "Rapid access OAT" in page and "Outside" in page and "Walk in" in page


# --- The tablet -----------------------------------------------------------------------------

@pytest.fixture
def tablet(client, auth, nurse):
    auth.login("nina")
    return client


def test_the_panel_shows_the_oat_suggestion_with_its_reason(site, tablet, overdosed_visit):
    last_week = (utcnow() - timedelta(days=7)).astimezone(ZoneInfo(site.timezone))
    page = text(tablet.get(
        f"/sites/{site.slug}/floor/visits/{overdosed_visit.id}/suggestions", headers=HTMX))
    # No HCV test on record either: three suggestions, highest priority first.
    assert page.count('data-testid="suggestion-card"') == 3
    assert page.index("Opioid agonist treatment") < page.index("Naloxone training") < \
        page.index("HIV, HCV and STI testing")
    assert (f"Overdose on {last_week.day} {last_week:%b %Y}, not on OAT: OAT cuts the risk "
            f"of another") in page


def test_after_check_in_the_offers_are_one_line_that_opens_them(site, tablet, overdosed_visit):
    base = f"/sites/{site.slug}/floor/visits/{overdosed_visit.id}"
    line = text(tablet.get(f"{base}/suggestions/line", headers=HTMX))
    assert line.count('class="btn') == 1 and 'data-testid="suggestion-card"' not in line
    assert "Offer: Opioid agonist treatment (OAT), Naloxone training" in line
    assert f'hx-get="{base}/suggestions/dialog"' in line
    assert f'id="offers-line-{overdosed_visit.id}"' in line  # not the dialog's panel id


def test_offered_then_accepted_makes_a_referral(site, tablet, auth, overdosed_visit):
    clinic = make_service(site, service_type="oat", name="Rapid access OAT")
    base = f"/sites/{site.slug}/floor/visits/{overdosed_visit.id}"
    rule = next(r for r in service.current_rules(site) if r.key == "overdose-oat")
    offered = auth.post(f"{base}/offers", {"service_type": "oat", "status": "offered",
                                           "rule_id": rule.id}, headers=HTMX)
    assert offered.status_code == 200 and "Accepted…" in text(offered)
    dialog = text(tablet.get(f"{base}/referral/oat?rule_id={rule.id}", headers=HTMX))
    assert "Rapid access OAT" in dialog and "The client agrees to be referred" in dialog
    refused = auth.post(f"{base}/offers", {
        "from": "dialog", "service_type": "oat", "status": "accepted", "rule_id": rule.id,
        "service_id": clinic.id, "follow_up_days": "7"}, headers=HTMX)
    assert refused.status_code == 422
    assert "Record that the client agreed to this referral." in text(refused)
    accepted = auth.post(f"{base}/offers", {
        "from": "dialog", "service_type": "oat", "status": "accepted", "rule_id": rule.id,
        "service_id": clinic.id, "consent": "on", "follow_up_days": "7"}, headers=HTMX)
    assert accepted.status_code == 200
    assert 'hx-swap-oob="true"' in text(accepted)
    assert "Opioid agonist treatment (OAT) accepted (follow up" in text(accepted)
    referral = db.session.execute(db.select(Referral)).scalar_one()
    assert (referral.service_id, referral.offer.rule_id, referral.consent_given) == (
        clinic.id, rule.id, True)


def test_a_second_answer_is_refused_in_the_flash(site, tablet, auth, overdosed_visit):
    base = f"/sites/{site.slug}/floor/visits/{overdosed_visit.id}"
    auth.post(f"{base}/offers", {"service_type": "oat", "status": "declined"}, headers=HTMX)
    again = auth.post(f"{base}/offers", {"service_type": "oat", "status": "not_now"},
                      headers=HTMX)
    assert again.status_code == 409
    assert again.headers["HX-Retarget"] == "#flash"
    assert "already recorded as declined" in text(again)


def test_the_care_profile_dialog_changes_what_is_suggested(site, tablet, auth,
                                                           overdosed_visit):
    base = f"/sites/{site.slug}/floor/visits/{overdosed_visit.id}"
    assert "On OAT now" in text(tablet.get(f"{base}/care-profile", headers=HTMX))
    bad = auth.post(f"{base}/care-profile", {"last_hcv_test": "last spring"}, headers=HTMX)
    assert bad.status_code == 422 and "Enter a date like 2026-03-01." in text(bad)
    saved = auth.post(f"{base}/care-profile", {"oat_medication": "methadone",
                                               "housing": "no_fixed_address"}, headers=HTMX)
    assert saved.status_code == 200
    page = text(saved)
    assert "Opioid agonist treatment" not in page
    assert "No fixed address" in page


# --- Follow-ups and uptake ------------------------------------------------------------------

def test_a_due_follow_up_is_listed_and_its_outcome_recorded(site, tablet, auth,
                                                            overdosed_visit):
    referral = make_referral(overdosed_visit, at=utcnow() - timedelta(days=8),
                             follow_up_days=7)
    page = text(tablet.get(f"/sites/{site.slug}/referrals/follow-ups"))
    assert 'data-testid="follow-up"' in page and "F-ABCD-1984" in page
    done = auth.post(f"/sites/{site.slug}/referrals/{referral.id}/outcome",
                     {"outcome": "presented"})
    assert done.status_code == 303
    assert "No follow-up is due." in text(tablet.get(f"/sites/{site.slug}/referrals/follow-ups"))
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).outcome == "presented"


def test_reviewers_see_uptake_per_month_and_type(site, client, auth, overdosed_visit):
    make_referral(overdosed_visit, service=make_service(site, service_type="testing",
                                                        on_site=True), outcome="presented")
    make_staff(site, role="reviewer", username="rita")
    auth.login("rita")
    page = text(client.get(f"/sites/{site.slug}/referrals/uptake"))
    this_month = re.search(r'data-month="[0-9-]+".*?</section>', page).group(0)
    assert 'data-testid="uptake-offered">1<' in this_month
    assert 'data-testid="uptake-presented">1<' in this_month
    assert 'data-testid="uptake-inside">1<' in this_month
    assert "HIV, HCV and STI testing" in this_month


# --- The API --------------------------------------------------------------------------------

def test_api_lists_suggestions_and_records_a_referral(site, client, nurse, overdosed_visit):
    headers = {"Authorization": f"Bearer {api_token(nurse)}"}
    url = f"/api/v1/sites/{site.id}/visits/{overdosed_visit.id}"
    listed = client.get(f"{url}/referral-suggestions", headers=headers).get_json()
    first = listed["suggestions"][0]
    assert (first["service_type"], first["rule_key"], first["rule_version"], first["status"]) \
        == ("oat", "overdose-oat", 1, None)
    assert first["reason"].startswith("Overdose on ")
    clinic = make_service(site, service_type="oat")
    body = {"service_type": "oat", "status": "accepted", "rule_id": first["rule_id"],
            "service_id": clinic.id, "consent": True, "follow_up_days": 14}
    made = client.post(f"{url}/referrals", json=body,
                       headers={**headers, "Idempotency-Key": "k1"})
    assert made.status_code == 201, made.get_json()
    offer = made.get_json()
    assert (offer["status"], offer["rule_version"], offer["referral"]["service"]["id"]) == (
        "accepted", 1, clinic.id)
    replay = client.post(f"{url}/referrals", json=body,
                         headers={**headers, "Idempotency-Key": "k1"})
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    again = client.post(f"{url}/referrals", json={**body, "status": "declined"},
                        headers=headers)
    assert again.status_code == 409 and again.get_json()["current_state"] == "accepted"
    assert db.session.scalar(db.select(db.func.count(ReferralOffer.id))) == 1
    outcome = client.post(f"/api/v1/sites/{site.id}/referrals/{offer['referral']['id']}/outcome",
                          json={"outcome": "did_not_present"}, headers=headers)
    assert outcome.status_code == 200 and outcome.get_json()["outcome"] == "did_not_present"


def test_api_refuses_an_unknown_field_and_a_missing_consent(site, client, nurse,
                                                            overdosed_visit):
    headers = {"Authorization": f"Bearer {api_token(nurse)}"}
    url = f"/api/v1/sites/{site.id}/visits/{overdosed_visit.id}/referrals"
    unknown = client.post(url, json={"service_type": "oat", "status": "offered", "why": "x"},
                          headers=headers)
    assert unknown.status_code == 422 and "why" in unknown.get_json()["errors"]
    clinic = make_service(site, service_type="oat")
    no_consent = client.post(url, json={"service_type": "oat", "status": "accepted",
                                        "service_id": clinic.id}, headers=headers)
    assert no_consent.status_code == 422
    assert no_consent.get_json()["errors"]["consent"]


def test_the_operations_are_documented(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()
           if isinstance(op, dict) and "operationId" in op}
    assert {"listReferralSuggestions", "recordReferral", "recordReferralOutcome",
            "listServices"} <= ids


def test_an_integration_lists_the_active_directory_to_find_a_service_id(site, client, nurse):
    clinic = make_service(site, service_type="oat", name="Bloor OAT clinic")
    make_service(site, service_type="oat", name="Closed clinic", active=False)
    peers = make_service(site, service_type="peer_support", name="Peer circle")
    make_service(make_site(slug="west"), service_type="oat", name="West clinic")
    headers = {"Authorization": f"Bearer {api_token(nurse)}"}
    url = f"/api/v1/sites/{site.id}/services"
    listed = client.get(url, headers=headers).get_json()
    assert [(s["id"], s["name"]) for s in listed] == [
        (clinic.id, "Bloor OAT clinic"), (peers.id, "Peer circle")]
    only_oat = client.get(f"{url}?service_type=oat", headers=headers).get_json()
    assert [s["id"] for s in only_oat] == [clinic.id]
    refused = client.get(f"{url}?service_type=astrology", headers=headers)
    assert refused.status_code == 422 and refused.get_json()["errors"]


def test_in_after_care_the_offers_open_in_a_dialog_and_come_back_to_it(
        site, tablet, auth, overdosed_visit, nurse):
    actor = Actor.of(nurse)
    booth = make_booth(site, label="B1")
    floor.assign_booth(overdosed_visit, booth, actor=actor, now=utcnow())
    floor.start_observation(overdosed_visit, actor=actor, now=utcnow())
    floor_page = text(tablet.get(f"/sites/{site.slug}/floor"))
    assert 'data-testid="offers"' in floor_page
    base = f"/sites/{site.slug}/floor/visits/{overdosed_visit.id}"
    dialog = text(tablet.get(f"{base}/suggestions/dialog", headers=HTMX))
    assert 'role="dialog"' in dialog and "not on OAT" in dialog
    assert '"in_dialog": "1"' in dialog  # its taps come back to the dialog
    offered = text(auth.post(f"{base}/offers", {"service_type": "oat", "status": "offered",
                                                "in_dialog": "1"}, headers=HTMX))
    assert "back=dialog" in offered  # so does the Accepted dialog
    clinic = make_service(site, service_type="oat")
    answered = auth.post(f"{base}/offers", {
        "from": "dialog", "back": "dialog", "service_type": "oat", "status": "accepted",
        "service_id": clinic.id, "consent": "on"}, headers=HTMX)
    assert answered.status_code == 200
    page = text(answered)
    assert 'role="dialog"' in page and "hx-swap-oob" not in page
    assert "Opioid agonist treatment (OAT) accepted" in page
    declined = auth.post(f"{base}/offers", {"service_type": "naloxone_training",
                                            "status": "declined", "in_dialog": "1"},
                         headers=HTMX)
    assert declined.status_code == 200
    assert '"in_dialog": "1"' in text(declined)  # the panel stays the dialog's
