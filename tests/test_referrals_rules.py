"""Each default referral rule with a fixed clock: facts that just meet and just miss its
threshold, the reason the nurse reads, and conditions the schema refuses."""

from datetime import UTC, date, datetime, timedelta

import pytest
from factories import make_site, make_staff
from marshmallow import ValidationError

from srs.auth.service import Actor
from srs.booths import service as floor
from srs.booths.models import Consumption, Visit, VisitState
from srs.errors import Invalid
from srs.extensions import db
from srs.overdose.models import OverdoseResponse
from srs.referrals import service
from srs.referrals.models import CareProfile
from srs.referrals.rules import check_condition, check_template

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 10:00 in Toronto
TODAY = date(2026, 11, 24)


@pytest.fixture
def site(app):
    site = make_site(slug="east")
    service.seed_default_rules(site, actor=Actor.system("test"), now=NOW - timedelta(days=60))
    return site


@pytest.fixture
def actor(site):
    return Actor.of(make_staff(site, role="nurse", username="nina"))


def arrive(site, actor, code="F-ABCD-1984", at=NOW) -> Visit:
    return floor.check_in(site, code=code, handle=None, actor=actor, actor_roles={"nurse"},
                          now=at)


def profile(visit: Visit, **fields) -> None:
    db.session.merge(CareProfile(client_id=visit.client_id, **{
        "oat_medication": "none", "failed_oral_oat": 0, "housing": "unknown", **fields}))
    db.session.commit()


def past_use(visit: Visit, route: str, at: datetime) -> None:
    """A departed earlier visit of the same client with one recorded use."""
    earlier = Visit(site_id=visit.site_id, client_id=visit.client_id, state=VisitState.DEPARTED,
                    arrived_at=at, departed_at=at + timedelta(minutes=40), consumed=True)
    db.session.add(earlier)
    db.session.flush()
    db.session.add(Consumption(visit_id=earlier.id, recorded_at=at + timedelta(minutes=5),
                               substances=["heroin"], route=route))
    db.session.commit()


def suggested(visit, actor, at=NOW) -> dict[str, str]:
    """Service type -> reason, as the tablet would show them."""
    ranked, _answered = service.suggestions(visit, actor=actor, now=at)
    return {s.service_type: s.reason for s in ranked}


# --- A recent overdose: OAT, and naloxone training with a take-home kit ---------------------

def overdose(visit: Visit, at: datetime, *, kind="opioid", on_the_visit=False) -> None:
    """A closed overdose response at the site: naming the client, or only their visit."""
    db.session.add(OverdoseResponse(
        site_id=visit.site_id, kind=kind, source="booth", started_at=at,
        client_id=None if on_the_visit else visit.client_id,
        visit_id=visit.id if on_the_visit else None,
        closed_at=at + timedelta(minutes=20), outcome="recovered_on_site"))
    db.session.commit()


def test_an_overdose_30_days_ago_suggests_oat_and_naloxone(site, actor):
    visit = arrive(site, actor)
    profile(visit, last_hcv_test=TODAY)
    overdose(visit, NOW - timedelta(days=30))
    assert suggested(visit, actor) == {
        "oat": "Overdose on 25 Oct 2026, not on OAT: OAT cuts the risk of another",
        "naloxone_training": "Overdose on 25 Oct 2026: naloxone training and a take-home kit"}


def test_an_overdose_a_minute_older_than_30_days_suggests_neither(site, actor):
    visit = arrive(site, actor)
    profile(visit, last_hcv_test=TODAY)
    overdose(visit, NOW - timedelta(days=30, minutes=1))
    assert suggested(visit, actor) == {}


def test_on_oat_or_a_stimulant_overdose_leaves_only_naloxone(site, actor):
    visit = arrive(site, actor)
    profile(visit, last_hcv_test=TODAY, oat_medication="methadone")
    overdose(visit, NOW - timedelta(days=2))
    assert set(suggested(visit, actor)) == {"naloxone_training"}
    other = arrive(site, actor, code="M-STIM-1990")
    profile(other, last_hcv_test=TODAY)
    overdose(other, NOW - timedelta(days=2), kind="stimulant")
    assert set(suggested(other, actor)) == {"naloxone_training"}


def test_an_overdose_recorded_on_an_earlier_visit_counts(site, actor):
    earlier = arrive(site, actor, at=NOW - timedelta(days=6))
    floor.leave_queue(earlier, reason="left", actor=actor, now=NOW - timedelta(days=6))
    overdose(earlier, NOW - timedelta(days=6), on_the_visit=True)
    visit = arrive(site, actor)
    profile(visit, last_hcv_test=TODAY)
    assert suggested(visit, actor)["oat"].startswith("Overdose on 18 Nov 2026")


# --- Injectable OAT / HAT: 2+ failed oral OAT, injecting on at least half of uses, 18+ ----------

def ioat_client(site, actor, *, failed=2, birth_year=2008, injects=1, other=1,
                oldest=NOW - timedelta(days=90)):
    visit = arrive(site, actor, code=f"F-IOAT-{birth_year}")
    profile(visit, failed_oral_oat=failed)
    uses = ["injects"] * injects + ["smokes"] * other
    for n, route in enumerate(uses):
        # The first use sits on the window's edge (the use is 5 minutes after arrival).
        past_use(visit, route, oldest - timedelta(minutes=5) + timedelta(days=n))
    return visit


def test_ioat_just_met_with_its_reason(site, actor):
    visit = ioat_client(site, actor)
    assert suggested(visit, actor)["ioat"] == (
        "2 oral OAT attempts did not work and 50% of uses in 90 days were injected")


@pytest.mark.parametrize("change", [
    {"failed": 1},
    {"injects": 1, "other": 2},  # a third of uses injected
    {"birth_year": 2009},  # 17 this year
    {"oldest": NOW - timedelta(days=90, minutes=1), "injects": 1, "other": 1},  # the injection
    # is one minute older than the 90-day window, leaving 0 of 1 use injected
], ids=["one failed attempt", "share below half", "age 17", "injection outside window"])
def test_ioat_just_missed(site, actor, change):
    visit = ioat_client(site, actor, **change)
    assert "ioat" not in suggested(visit, actor)


# --- Testing: no HCV test in 12 months -----------------------------------------------------

def test_hcv_testing_after_365_days_and_when_never_tested(site, actor):
    visit = arrive(site, actor)
    profile(visit, last_hcv_test=TODAY - timedelta(days=365))
    assert suggested(visit, actor)["testing"] == (
        "No HCV test in the last 12 months (last: 24 Nov 2025)")
    profile(visit, last_hcv_test=None)
    assert suggested(visit, actor)["testing"] == (
        "No HCV test in the last 12 months (last: never)")


def test_hcv_testing_not_at_364_days(site, actor):
    visit = arrive(site, actor)
    profile(visit, last_hcv_test=TODAY - timedelta(days=364))
    assert "testing" not in suggested(visit, actor)


# --- Wound care, housing, withdrawal management --------------------------------------------

def test_wound_noted_14_days_ago_meets_15_misses(site, actor):
    visit = arrive(site, actor)
    profile(visit, wound_noted_on=TODAY - timedelta(days=14), last_hcv_test=TODAY)
    assert suggested(visit, actor) == {"wound_care": "Wound noted on 10 Nov 2026"}
    profile(visit, wound_noted_on=TODAY - timedelta(days=15), last_hcv_test=TODAY)
    assert suggested(visit, actor) == {}


def test_no_fixed_address_suggests_housing_unstable_does_not(site, actor):
    visit = arrive(site, actor)
    profile(visit, housing="no_fixed_address", last_hcv_test=TODAY)
    assert suggested(visit, actor) == {"housing": "No fixed address"}
    profile(visit, housing="unstable", last_hcv_test=TODAY)
    assert suggested(visit, actor) == {}


def test_interest_in_the_last_30_days_suggests_withdrawal_management(site, actor):
    visit = arrive(site, actor)
    profile(visit, treatment_interest_on=TODAY - timedelta(days=30), last_hcv_test=TODAY)
    assert suggested(visit, actor) == {
        "withdrawal": "Asked about detox or treatment on 25 Oct 2026"}
    profile(visit, treatment_interest_on=TODAY - timedelta(days=31), last_hcv_test=TODAY)
    assert suggested(visit, actor) == {}


def test_at_most_three_highest_priority_first(site, actor):
    visit = ioat_client(site, actor)
    profile(visit, failed_oral_oat=2, treatment_interest_on=TODAY, wound_noted_on=TODAY,
            housing="no_fixed_address")  # and never tested for HCV: five rules hold
    ranked, _ = service.suggestions(visit, actor=actor, now=NOW)
    assert [s.service_type for s in ranked] == ["withdrawal", "ioat", "wound_care"]
    assert [s.priority for s in ranked] == [95, 85, 70]


def test_an_inactive_rule_suggests_nothing(site, actor):
    visit = arrive(site, actor)
    profile(visit, housing="no_fixed_address", last_hcv_test=TODAY)
    rule = next(r for r in service.current_rules(site) if r.key == "housing")
    service.update_rule(rule, {**_rule_data(rule), "active": False}, actor=actor, now=NOW)
    assert suggested(visit, actor) == {}


def _rule_data(rule) -> dict:
    return {"name": rule.name, "condition": rule.condition, "service_type": rule.service_type,
            "reason_template": rule.reason_template, "priority": rule.priority,
            "reoffer_days": rule.reoffer_days, "active": rule.active}


# --- Versions ------------------------------------------------------------------------------

def test_changing_a_rule_adds_a_version_and_offers_keep_theirs(site, actor):
    visit = arrive(site, actor)
    profile(visit, housing="no_fixed_address", last_hcv_test=TODAY)
    v1 = next(r for r in service.current_rules(site) if r.key == "housing")
    offer = service.record_offer(visit, {"service_type": "housing", "status": "offered",
                                         "rule_id": v1.id}, actor=actor, now=NOW)
    v2 = service.update_rule(v1, {**_rule_data(v1), "reason_template": "Sleeping rough"},
                             actor=actor, now=NOW + timedelta(minutes=1))
    assert (v2.key, v2.version, v1.superseded_at) == ("housing", 2, NOW + timedelta(minutes=1))
    assert offer.rule_id == v1.id and offer.reason == "No fixed address"
    later = arrive(site, actor, code="M-LATE-1990", at=NOW + timedelta(minutes=2))
    profile(later, housing="no_fixed_address", last_hcv_test=TODAY)
    assert suggested(later, actor, NOW + timedelta(minutes=2)) == {"housing": "Sleeping rough"}
    assert [r.version for r in service.rule_history(v2)] == [2, 1]
    with pytest.raises(Exception, match="was replaced"):
        service.update_rule(v1, _rule_data(v1), actor=actor, now=NOW)


# --- What the schema refuses ---------------------------------------------------------------

@pytest.mark.parametrize(("condition", "message"), [
    ({"fact": "overdose", "days": 30, "op": ">=", "value": 1}, "Unknown fact 'overdose'"),
    ({"fact": "overdoses", "op": ">=", "value": 1}, "give 'days'"),
    ({"fact": "housing", "days": 3, "op": "==", "value": "housed"}, "remove 'days'"),
    ({"fact": "housing", "op": ">", "value": "housed"}, "cannot be compared with '>'"),
    ({"fact": "housing", "op": "==", "value": "tent"}, "is one of: unknown, housed"),
    ({"fact": "on_oat", "op": "==", "value": "no"}, "is true or false"),
    ({"fact": "injecting_share", "days": 90, "op": ">=", "value": 50}, "from 0 to 1"),
    ({"fact": "visits", "days": 30, "op": "=>", "value": 1}, "Unknown comparison '=>'"),
    ({"all": []}, "list of one or more"),
    ({"all": [{"fact": "age", "op": ">=", "value": 18}], "any": []}, "holds only its list"),
    ({"fact": "age", "op": ">=", "value": 18, "extra": 1}, "Unknown field"),
    (["age"], "A condition is an object"),
])
def test_malformed_conditions_are_refused_with_a_clear_message(condition, message):
    with pytest.raises(ValidationError) as err:
        check_condition(condition)
    assert message in str(err.value.messages)


def test_nested_errors_say_where():
    with pytest.raises(ValidationError) as err:
        check_condition({"all": [{"fact": "age", "op": ">=", "value": 18},
                                 {"any": [{"fact": "nope", "op": "==", "value": 1}]}]})
    assert "all[1]" in str(err.value.messages) and "any[0]" in str(err.value.messages)


@pytest.mark.parametrize(("template", "message"), [
    ("Overdose on {last_od}", "Unknown placeholder {last_od}"),
    ("Overdose on {last_overdose", "Braces do not match"),
    ("{visits!r} visits", "no format or conversion"),
    ("{__class__} x", "Unknown placeholder"),
])
def test_reason_templates_name_only_facts(template, message):
    with pytest.raises(ValidationError, match=message.replace("{", r"\{")):
        check_template(template)


def test_the_service_refuses_a_malformed_rule_by_field(site, actor):
    with pytest.raises(Invalid) as err:
        service.create_rule(site, {
            "name": "Bad", "condition": {"fact": "overdose", "op": ">=", "value": 1},
            "service_type": "detox", "reason_template": "{when}", "priority": 101,
            "reoffer_days": 30}, actor=actor, now=NOW)
    assert set(err.value.errors) == {"condition", "service_type", "reason_template",
                                     "priority"}
