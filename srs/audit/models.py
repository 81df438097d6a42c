"""The audit trail's one table lives with sign-in (``srs.auth.models.AuditEvent``): every
package writes it through ``srs.auth.service.record``. This package only reads it; the
vocabulary below turns its names into words."""

from srs.auth.models import AuditEvent

__all__ = ["ACTIONS", "ENTITIES", "AuditEvent", "entity_of", "in_words"]

# Every action the code records: its words, and the entity it is recorded on. A test holds
# this list to what the ``record(...)`` calls write, so the page's action filter offers each
# action and each row reads as words; and the filter on an action names its entity too, so
# the database finds a rare action through the ``(entity, entity_id)`` index rather than by
# reading the whole trail.
ACTIONS = {
    "account_locked": ("Account locked after failed sign-ins", "staff"),
    "alert_acknowledged": ("Alarm taken", "alert"),
    "audit_viewed": ("Audit trail read for a client", "client"),
    "booth_assigned": ("Booth assigned", "visit"),
    "booth_back_in_service": ("Booth back in service", "booth"),
    "booth_cleaned": ("Booth cleaned", "booth"),
    "booth_created": ("Booth added", "booth"),
    "booth_kind_changed": ("Booth kind changed", "booth"),
    "booth_moved": ("Booth moved", "booth"),
    "booth_out_of_service": ("Booth out of service", "booth"),
    "booth_reinstated": ("Booth reinstated", "booth"),
    "booth_renamed": ("Booth renamed", "booth"),
    "booth_retired": ("Booth retired", "booth"),
    "care_profile_changed": ("Care profile changed", "client"),
    "care_profile_viewed": ("Care profile read", "client"),
    "check_recorded": ("Check recorded", "visit"),
    "client_created": ("Client record created", "client"),
    "client_search": ("Client codes searched", "client"),
    "client_viewed": ("Client record read", "client"),
    "client_note_changed": ("Client note changed", "client"),
    "client_record_exported": ("Client record exported (access request)", "client"),
    "client_restricted": ("Service restriction set", "client"),
    "client_restriction_lifted": ("Service restriction lifted", "client"),
    "consumption_recorded": ("Consumption recorded", "visit"),
    "display_registered": ("Wall display registered", "display"),
    "display_revoked": ("Wall display revoked", "display"),
    "display_signed_in": ("Wall display signed in", "display"),
    "drug_alert_cluster_grew": ("Overdose cluster grew", "drug_alert"),
    "drug_alert_drafted": ("Drug alert drafted", "drug_alert"),
    "drug_alert_edited": ("Drug alert edited", "drug_alert"),
    "drug_alert_expired": ("Drug alert expired", "drug_alert"),
    "drug_alert_published": ("Drug alert published", "drug_alert"),
    "drug_alert_renewed": ("Drug alert renewed", "drug_alert"),
    "drug_alert_retracted": ("Drug alert retracted", "drug_alert"),
    "drug_alert_validated": ("Drug alert validated (second person)", "drug_alert"),
    "drug_check_recorded": ("Drug check recorded", "drug_check"),
    "drug_substance_added": ("Substance added to the list", "drug_substance"),
    "drug_substance_retired": ("Substance taken off the list", "drug_substance"),
    "drug_watch_added": ("Added to the watch list", "drug_watch_item"),
    "drug_watch_retired": ("Taken off the watch list", "drug_watch_item"),
    "factor_added": ("Contributing factor added", "contributing_factor"),
    "factor_restored": ("Contributing factor restored", "contributing_factor"),
    "factor_retired": ("Contributing factor retired", "contributing_factor"),
    "incident_action_added": ("Incident action added", "incident_action"),
    "incident_action_done": ("Incident action done", "incident_action"),
    "incident_amended": ("Incident report amended", "incident"),
    "incident_approve": ("Incident review approved", "incident"),
    "incident_created": ("Incident report started", "incident"),
    "incident_draft_saved": ("Incident draft saved", "incident"),
    "incident_factors_set": ("Incident factors set", "incident"),
    "incident_feedback_set": ("Incident feedback written", "incident"),
    "incident_lessons_learned_set": ("Incident lessons written", "incident"),
    "incident_request_approval": ("Incident review sent for approval", "incident"),
    "incident_return": ("Incident review returned", "incident"),
    "incident_review_started": ("Incident review started", "incident"),
    "incident_submitted": ("Incident report submitted", "incident"),
    "incident_viewed": ("Incident report read", "incident"),
    "incidents_listed": ("Incident reports listed", "incident"),
    "intervention_amended": ("Overdose entry amended", "overdose_response"),
    "intervention_recorded": ("Overdose entry recorded", "overdose_response"),
    "lock": ("Screen locked", "login_session"),
    "login": ("Signed in", "login_session"),
    "login_failed": ("Sign-in refused", "staff"),
    "logout": ("Signed out", "login_session"),
    "naloxone_movement": ("Naloxone stock moved", "naloxone_lot"),
    "naloxone_received": ("Naloxone received", "naloxone_lot"),
    "observation_started": ("After-care started", "visit"),
    "org_admin_granted": ("Organisation admin granted", "staff"),
    "org_admin_removed": ("Organisation admin removed", "staff"),
    "overdose_cancelled": ("Overdose response cancelled", "overdose_response"),
    "overdose_closed": ("Overdose response closed", "overdose_response"),
    "overdose_kind_changed": ("Overdose kind changed", "overdose_response"),
    "overdose_started": ("Overdose response started", "overdose_response"),
    "overdose_viewed": ("Overdose response read", "overdose_response"),
    "password_reset": ("Password reset", "staff"),
    "pin_reset": ("PIN reset", "staff"),
    "referral_accepted": ("Referral accepted", "referral_offer"),
    "referral_declined": ("Referral declined", "referral_offer"),
    "referral_follow_up_due": ("Referral follow-up due", "referral"),
    "referral_follow_ups_viewed": ("Referral follow-ups listed", "referral"),
    "referral_made": ("Referral made", "referral"),
    "referral_not_now": ("Referral not now", "referral_offer"),
    "referral_offered": ("Referral offered", "referral_offer"),
    "referral_outcome": ("Referral outcome recorded", "referral"),
    "referral_rule_changed": ("Referral rule changed", "referral_rule"),
    "referral_rule_created": ("Referral rule added", "referral_rule"),
    "referral_service_changed": ("Referral service changed", "referral_service"),
    "referral_service_created": ("Referral service added", "referral_service"),
    "referral_suggestions_viewed": ("Referral suggestions read", "visit"),
    "restriction_overridden": ("Service restriction overridden", "client"),
    "retention_applied": ("Retention applied to old records", "site"),
    "review_packet_built": ("Review packet built", "review_packet"),
    "review_packet_read": ("Review packet read", "review_packet"),
    "role_added": ("Role given", "staff"),
    "role_removed": ("Role removed", "staff"),
    "settings_updated": ("Site settings changed", "site"),
    "site_created": ("Site created", "site"),
    "site_updated": ("Site name or time zone changed", "site"),
    "staff_created": ("Staff member added", "staff"),
    "staff_deactivated": ("Staff member deactivated", "staff"),
    "staff_deleted": ("Staff member deleted", "staff"),
    "staff_reactivated": ("Staff member reactivated", "staff"),
    "staff_renamed": ("Staff member renamed", "staff"),
    "stock_finding_resolved": ("Stock finding resolved", "stock_finding"),
    "take_home_kit_given": ("Take-home kit given", "client"),
    "token_created": ("API token created", "api_token"),
    "token_revoked": ("API token revoked", "api_token"),
    "unlock": ("Screen unlocked", "login_session"),
    "unlock_failed": ("Wrong PIN", "login_session"),
    "visit_checked_in": ("Checked in", "visit"),
    "visit_discharged": ("Visit ended", "visit"),
    "visit_left_queue": ("Left the queue", "visit"),
}

# What an event is about, in words.
ENTITIES = {
    "alert": "Alarm",
    "api_token": "API token",
    "booth": "Booth",
    "client": "Client",
    "contributing_factor": "Contributing factor",
    "display": "Wall display",
    "drug_alert": "Drug alert",
    "drug_check": "Drug check",
    "drug_substance": "Substance on the drug-check list",
    "drug_watch_item": "Watch-list entry",
    "incident": "Incident report",
    "incident_action": "Incident action",
    "login_session": "Sign-in",
    "naloxone_lot": "Naloxone lot",
    "overdose_response": "Overdose response",
    "referral": "Referral",
    "referral_offer": "Referral offer",
    "referral_rule": "Referral rule",
    "referral_service": "Referral service",
    "review_packet": "Review packet",
    "site": "Site",
    "staff": "Staff member",
    "stock_finding": "Stock finding",
    "visit": "Visit",
}


def in_words(name: str, vocabulary: dict) -> str:
    """A name in words: the vocabulary's, or the name itself made readable."""
    said = vocabulary.get(name)
    if isinstance(said, tuple):
        said = said[0]
    return said or name.replace("_", " ").capitalize()


def entity_of(action: str) -> str | None:
    """The entity ``action`` is recorded on, when the vocabulary knows it."""
    known = ACTIONS.get(action)
    return known[1] if known else None
