"""Offers, referrals, follow-ups and uptake, with a fixed clock."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import make_referral, make_service, make_site, make_staff

from srs.auth.models import AuditEvent
from srs.auth.service import Actor
from srs.booths import service as floor
from srs.booths.models import Visit, VisitState
from srs.errors import Conflict, Invalid
from srs.extensions import db
from srs.referrals import service
from srs.referrals.models import CareProfile, ReferralOffer

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


def visit_at(site, actor, at, code="F-HOME-1980", **care) -> Visit:
    """A visit at ``at``; the client's earlier visit (if open) departs first."""
    open_visit = db.session.execute(db.select(Visit).join(Visit.client).where(
        Visit.state != VisitState.DEPARTED, Visit.site_id == site.id)).scalar_one_or_none()
    if open_visit is not None:
        floor.leave_queue(open_visit, reason="left", actor=actor, now=at - timedelta(minutes=1))
    visit = floor.check_in(site, code=code, handle=None, actor=actor, actor_roles={"nurse"},
                           now=at)
    db.session.merge(CareProfile(client_id=visit.client_id, **{
        "oat_medication": "none", "failed_oral_oat": 0, "housing": "no_fixed_address",
        "last_hcv_test": TODAY, **care}))
    db.session.commit()
    return visit


def shown(visit, actor, at) -> list[str]:
    ranked, _ = service.suggestions(visit, actor=actor, now=at)
    return [s.service_type for s in ranked]


def answer(visit, actor, status, at, service_type="housing", **extra):
    return service.record_offer(visit, {"service_type": service_type, "status": status,
                                        **extra}, actor=actor, now=at)


# --- Re-offer interval ---------------------------------------------------------------------

def test_a_declined_suggestion_comes_back_only_after_the_interval(site, actor):
    first = visit_at(site, actor, NOW)
    assert shown(first, actor, NOW) == ["housing"]
    answer(first, actor, "offered", NOW)
    answer(first, actor, "declined", NOW + timedelta(minutes=1))
    ranked, answered = service.suggestions(first, actor=actor, now=NOW + timedelta(minutes=2))
    assert ranked == [] and [o.status for o in answered] == ["declined"]

    # The housing rule offers again after 30 days.
    day_29 = NOW + timedelta(days=29, hours=23)
    assert shown(visit_at(site, actor, day_29), actor, day_29) == []
    day_30 = NOW + timedelta(days=30, minutes=1)
    assert shown(visit_at(site, actor, day_30), actor, day_30) == ["housing"]


def test_not_now_asks_again_next_visit(site, actor):
    first = visit_at(site, actor, NOW)
    answer(first, actor, "not_now", NOW)
    later = NOW + timedelta(hours=3)
    assert shown(visit_at(site, actor, later), actor, later) == ["housing"]


def test_an_accepted_referral_rests_until_its_outcome_and_the_interval(site, actor):
    housing = make_service(site, service_type="housing")
    first = visit_at(site, actor, NOW)
    offer = answer(first, actor, "accepted", NOW, service_id=housing.id, consent=True)
    month_later = NOW + timedelta(days=31)
    assert shown(visit_at(site, actor, month_later), actor, month_later) == []
    service.record_outcome(offer.referral, "did_not_present", actor=actor, now=month_later)
    later = month_later + timedelta(hours=2)
    assert shown(visit_at(site, actor, later), actor, later) == ["housing"]


def test_an_offer_awaiting_its_answer_stays_on_top(site, actor):
    visit = visit_at(site, actor, NOW, last_hcv_test=None)
    assert shown(visit, actor, NOW) == ["testing", "housing"]  # priority 50, then 40
    answer(visit, actor, "offered", NOW)  # housing: offered, awaiting the client's answer
    ranked, _ = service.suggestions(visit, actor=actor, now=NOW)
    assert [(s.service_type, s.status) for s in ranked] == [
        ("housing", "offered"), ("testing", None)]


# --- Offers and referrals ------------------------------------------------------------------

def test_accepting_makes_a_referral_with_consent_and_follow_up(site, actor):
    housing = make_service(site, service_type="housing", name="Housing outreach")
    visit = visit_at(site, actor, NOW)
    rule = next(r for r in service.current_rules(site) if r.key == "housing")
    answer(visit, actor, "offered", NOW, rule_id=rule.id)
    offer = answer(visit, actor, "accepted", NOW + timedelta(minutes=2), service_id=housing.id,
                   consent=True, follow_up_days=10, rule_id=rule.id)
    referral = offer.referral
    assert (offer.status, offer.rule_id, offer.reason) == ("accepted", rule.id,
                                                            "No fixed address")
    assert (referral.service.name, referral.consent_given, referral.follow_up_due) == (
        "Housing outreach", True, date(2026, 12, 4))
    actions = list(db.session.execute(db.select(AuditEvent.action).where(
        AuditEvent.action.like("referral_%")).order_by(AuditEvent.id)).scalars())
    assert actions[-3:] == ["referral_offered", "referral_accepted", "referral_made"]


def test_accepting_needs_consent_and_a_service_of_that_type(site, actor):
    oat = make_service(site, service_type="oat")
    visit = visit_at(site, actor, NOW)
    with pytest.raises(Invalid) as err:
        answer(visit, actor, "accepted", NOW)
    assert set(err.value.errors) == {"service_id", "consent"}
    with pytest.raises(Invalid, match="active service of this type"):
        answer(visit, actor, "accepted", NOW, service_id=oat.id, consent=True)
    assert db.session.scalar(db.select(db.func.count(ReferralOffer.id))) == 0


def test_an_offer_is_answered_once(site, actor):
    visit = visit_at(site, actor, NOW)
    answer(visit, actor, "declined", NOW)
    with pytest.raises(Conflict, match="already recorded as declined") as err:
        answer(visit, actor, "not_now", NOW)
    assert err.value.detail["current_state"] == "declined"
    with pytest.raises(Conflict):
        answer(visit, actor, "offered", NOW)


# --- Follow-ups ----------------------------------------------------------------------------

def test_follow_ups_come_due_and_the_daily_job_lists_them_once(site, actor):
    visit = visit_at(site, actor, NOW)
    referral = make_referral(visit, at=NOW, follow_up_days=7)  # due 1 Dec
    assert service.follow_ups_due(site, actor=actor, now=NOW + timedelta(days=6)) == []
    assert service.list_due_follow_ups(now=NOW + timedelta(days=6)) == 0
    due_day = NOW + timedelta(days=7)
    assert service.follow_ups_due(site, actor=actor, now=due_day) == [referral]
    assert service.list_due_follow_ups(now=due_day) == 1
    assert service.list_due_follow_ups(now=due_day + timedelta(hours=1)) == 0
    assert referral.follow_up_listed_at == due_day
    service.record_outcome(referral, "presented", actor=actor, now=due_day)
    assert service.follow_ups_due(site, actor=actor, now=due_day) == []
    with pytest.raises(Conflict, match="already recorded"):
        service.record_outcome(referral, "unknown", actor=actor, now=due_day)


def test_the_follow_up_job_is_in_the_jobs_table():
    from srs.jobs import JOBS

    job = next(j for j in JOBS if j.id == "referral_follow_ups")
    assert job.func is service.list_due_follow_ups and job.trigger == "cron"


# --- Uptake --------------------------------------------------------------------------------

def toronto(day: int, hour: int = 12, month: int = 11, minute: int = 0) -> datetime:
    """A local time at the site (summer time ends on 1 November 2026)."""
    return datetime(2026, month, day, hour, minute, tzinfo=ZoneInfo("America/Toronto"))


def test_uptake_matches_a_hand_count(site, actor):
    outside = make_service(site, service_type="oat", name="OAT clinic")
    inside = make_service(site, service_type="testing", name="Testing", on_site=True)
    codes = iter(f"F-UP{chr(65 + n)}{chr(65 + n)}-1980" for n in range(20))

    def visit(at):
        return floor.check_in(site, code=next(codes), handle=None, actor=actor,
                              actor_roles={"nurse"}, now=at)

    # November: OAT offered 3 times (1 accepted and presented, 1 declined, 1 not now),
    # testing twice (both accepted on site; 1 presented, 1 did not), housing offered once.
    v = visit(toronto(2))
    make_referral(v, service=outside, at=toronto(2), outcome="presented")
    answer(visit(toronto(3)), actor, "declined", toronto(3), service_type="oat")
    answer(visit(toronto(4)), actor, "not_now", toronto(4), service_type="oat")
    make_referral(visit(toronto(5)), service=inside, at=toronto(5), outcome="presented")
    make_referral(visit(toronto(30, 23, minute=59)), service=inside,
                  at=toronto(30, 23, minute=59), outcome="did_not_present")
    answer(visit(toronto(1, 0)), actor, "offered", toronto(1, 0), service_type="housing")
    # Outside November: 31 October and 1 December, local time.
    make_referral(visit(toronto(31, 23, month=10, minute=59)), service=outside,
                  at=toronto(31, 23, month=10, minute=59))
    answer(visit(toronto(1, 0, month=12)), actor, "declined", toronto(1, 0, month=12),
           service_type="oat")

    figures = service.uptake(site, date(2026, 11, 1), date(2026, 12, 1))

    counted = {t: (row["offered"], row["accepted"], row["presented"])
               for t, row in figures["by_type"].items() if row["offered"]}
    assert counted == {"oat": (3, 1, 1), "testing": (2, 2, 1), "housing": (1, 0, 0)}
    assert figures["totals"] == {"offered": 6, "accepted": 3, "presented": 2, "declined": 1,
                                 "not_now": 1}
    assert (figures["referrals_outside"], figures["services_inside"]) == (1, 2)
    october = service.uptake(site, date(2026, 10, 1), date(2026, 11, 1))
    assert (october["totals"]["accepted"], october["referrals_outside"]) == (1, 1)
