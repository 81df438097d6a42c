"""Referral suggestions for a visit, what became of them, and the site's rules behind them.

Every state-changing operation accepts an ``Idempotency-Key`` header: a
repeat returns the first answer and records nothing twice.
"""

from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth.models import FLOOR, Role
from srs.booths.service import get_visit
from srs.common import utcnow
from srs.idempotency import idempotent
from srs.referrals import service
from srs.referrals.schemas import (
    OfferDumpSchema,
    OfferSchema,
    OutcomeSchema,
    ReferralSchema,
    RuleBodySchema,
    RuleDumpSchema,
    ServiceQuerySchema,
    ServiceSchema,
    SuggestionsSchema,
)
from srs.sites.service import get_site

blp = Blueprint("api_referrals", __name__, url_prefix="/api/v1",
                description="Referral suggestions and referrals")
CONFLICT = {409: {"description": "Already answered; the body gives the current status."}}
REPLACED = {409: {"description": "This version was replaced: change the current one "
                                 "(the body names its version)."}}


@blp.get("/sites/<int:site_id>/visits/<int:visit_id>/referral-suggestions")
@blp.doc(operationId="listReferralSuggestions", security=SECURITY)
@token_required(*FLOOR)
@blp.response(200, SuggestionsSchema)
def list_referral_suggestions(site_id, visit_id):
    """At most three suggestions for the visit's client, highest priority first, each with
    its reason and the rule version behind it; and what was already answered this visit."""
    visit = get_visit(get_site(site_id), visit_id)
    ranked, answered = service.suggestions(visit, actor=api_actor(), now=utcnow())
    return {"suggestions": ranked, "answered": answered}


@blp.post("/sites/<int:site_id>/visits/<int:visit_id>/referrals")
@blp.doc(operationId="recordReferral", security=SECURITY, responses=CONFLICT, **IDEMPOTENCY)
@token_required(*FLOOR)
@idempotent
@blp.arguments(OfferSchema)
@blp.response(201, OfferDumpSchema)
def record_referral(data, site_id, visit_id):
    """Record a suggestion as offered, then accepted (a referral with consent and a
    follow-up date), declined or not now."""
    visit = get_visit(get_site(site_id), visit_id)
    return service.record_offer(visit, data, actor=api_actor(), now=utcnow())


@blp.post("/sites/<int:site_id>/referrals/<int:referral_id>/outcome")
@blp.doc(operationId="recordReferralOutcome", security=SECURITY, responses=CONFLICT,
         **IDEMPOTENCY)
@token_required(*FLOOR)
@idempotent
@blp.arguments(OutcomeSchema)
@blp.response(200, ReferralSchema)
def record_referral_outcome(data, site_id, referral_id):
    """Whether the client presented for assessment: presented, did_not_present, unknown."""
    referral = service.get_referral(get_site(site_id), referral_id)
    return service.record_outcome(referral, data["outcome"], actor=api_actor(), now=utcnow())


@blp.get("/sites/<int:site_id>/services")
@blp.doc(operationId="listServices", security=SECURITY)
@token_required(*FLOOR)
@blp.arguments(ServiceQuerySchema, location="query")
@blp.response(200, ServiceSchema(many=True))
def list_services(query, site_id):
    """The site's active service directory, by type and name: the ``service_id`` that
    ``recordReferral`` takes when a client accepts."""
    return service.services(get_site(site_id), service_type=query["service_type"],
                            active_only=True)


@blp.get("/sites/<int:site_id>/referral-rules")
@blp.doc(operationId="listReferralRules", security=SECURITY)
@token_required(Role.ADMIN)
@blp.response(200, RuleDumpSchema(many=True))
def list_referral_rules(site_id):
    """The current version of each of the site's rules, highest priority first."""
    return service.current_rules(get_site(site_id))


@blp.post("/sites/<int:site_id>/referral-rules")
@blp.doc(operationId="createReferralRule", security=SECURITY, **IDEMPOTENCY)
@token_required(Role.ADMIN)
@idempotent
@blp.arguments(RuleBodySchema)
@blp.response(201, RuleDumpSchema)
def create_referral_rule(data, site_id):
    """Add a rule (version 1). The rule form on the referral rules page makes the same rule
    from its rows, checked by the same schema."""
    return service.create_rule(get_site(site_id), data, actor=api_actor(), now=utcnow())


@blp.put("/sites/<int:site_id>/referral-rules/<int:rule_id>")
@blp.doc(operationId="updateReferralRule", security=SECURITY, responses=REPLACED,
         **IDEMPOTENCY)
@token_required(Role.ADMIN)
@idempotent
@blp.arguments(RuleBodySchema)
@blp.response(200, RuleDumpSchema)
def update_referral_rule(data, site_id, rule_id):
    """Save the whole rule as a new version of ``rule_id`` (the current one); offers keep
    the version that made them."""
    rule = service.get_rule(get_site(site_id), rule_id)
    return service.update_rule(rule, data, actor=api_actor(), now=utcnow())
