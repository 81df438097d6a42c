"""The JSON API under /api/v1, documented at /api/v1/openapi.json.

Each operation's error answers, the roles that may call it and whether its body is
required are written into the document here, from what its decorators already declare
(``token_required``'s ``srs_roles``, ``idempotent``, ``blp.arguments``, an error the
blueprint declares): a new operation is documented like the others without a line of its
own.
"""

from apispec import BasePlugin
from flask_smorest import Api

from srs.api.access import GATEWAY, PUBLIC, REQUIRED_BODIES
from srs.api.schemas import ErrorSchema
from srs.auth.access import ANY_STAFF, ORG_ADMIN
from srs.auth.models import Role
from srs.errors import handle_http_exception

ERROR_BODY = {"application/json": {"schema": "Error"}}
# What each error answer means, by when an operation can give it.
UNAUTHORIZED = {"description": "No valid bearer token.", "content": ERROR_BODY, "headers": {
    "WWW-Authenticate": {"required": True, "schema": {"type": "string"},
                         "description": 'Bearer realm="srs"'}}}
FORBIDDEN = {"description": "The token's owner has a role at the site, but not one this "
                            "operation needs; or the rules keep this record from them.",
             "content": ERROR_BODY}
NOT_FOUND = {"description": "No such site, or the token's owner holds no role at it (the "
                            "same answer); or no such record at the site.",
             "content": ERROR_BODY}
TOO_MANY = {"description": "Too many reports from this address: wait, then try again.",
            "content": ERROR_BODY}
REPEATED_KEY = "A repeat of an Idempotency-Key whose first request is still being answered."
BAD_JSON = {"description": "The body is not valid JSON (`errors._body`).", "content": ERROR_BODY}
INVALID = {"description": "Input that is not valid: `errors` names each field (`_body` for a "
                          "missing body).",
           "content": ERROR_BODY}
IDEMPOTENCY_KEY = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "maxLength": 80},
    "description": "New for each action; a repeat returns the first answer."}


def roles_text(roles) -> str:
    """Who may call an operation, in words, from its ``srs_roles``."""
    if roles == ANY_STAFF:
        return "Any staff member with a token."
    if roles == PUBLIC:
        return "Anyone: no token is needed."
    if roles == GATEWAY:
        return ("The SMS gateway only, with its own token (`flask --app app srs alerts "
                "gateway-token`). A staff member's token gets 403.")
    if roles == ORG_ADMIN:
        return ("Organisation admins only (the flag, not a role at a site). Anyone else gets "
                "403; for a site they hold no role at, the 404 of a site that does not exist.")
    names = role_list(roles)
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return (f"Roles: {listed} at the site. A token whose owner holds no role at the site "
            f"gets the 404 of a site that does not exist.")


def role_list(roles) -> list[str] | str:
    """``x-srs-roles``: the roles in the order of ``Role``, or ``"any staff"``."""
    if not isinstance(roles, frozenset):
        return roles
    order = [role.value for role in Role]
    return sorted(roles, key=lambda r: (order.index(r) if r in order else len(order), r))


class ContractPlugin(BasePlugin):
    """Completes every API operation of the document from its view's declarations."""

    def __init__(self, app):
        self.app = app
        app.extensions[REQUIRED_BODIES] = set()

    def operation_helper(self, path=None, operations=None, *, rule=None, **kwargs):
        if rule is None or operations is None:
            return
        view = self.app.view_functions[rule.endpoint]
        for method, operation in operations.items():
            self._complete(operation, method.upper(), view, rule)

    def _complete(self, operation: dict, method: str, view, rule) -> None:
        responses = {str(code): answer for code, answer in operation["responses"].items()}
        roles = getattr(view, "srs_roles", None)
        idempotent = getattr(view, "srs_idempotent", False)
        if idempotent and not any(p.get("name") == IDEMPOTENCY_KEY["name"]
                                  for p in operation.get("parameters", [])):
            operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_KEY))
        body = operation.get("requestBody")
        if body is not None and body.get("required"):
            self.app.extensions[REQUIRED_BODIES].add((rule.endpoint, method))
        if roles is not None:
            if roles != PUBLIC:
                responses["401"] = UNAUTHORIZED
            if isinstance(roles, frozenset) or roles in (ORG_ADMIN, GATEWAY):
                responses["403"] = FORBIDDEN
            operation["x-srs-roles"] = role_list(roles)
            operation["description"] = "\n\n".join(
                part for part in (operation.get("description"), roles_text(roles)) if part)
        # An error the blueprint declares (a 409 the service can raise, a 404 for a record a
        # query names) keeps its description and gets the Error body.
        for status, declared in responses.items():
            if status.startswith("4") and isinstance(declared, dict):
                declared["content"] = ERROR_BODY
        if rule.arguments:
            responses["404"] = NOT_FOUND
        if idempotent:
            conflict = responses.get("409")
            said = conflict.get("description", "") if isinstance(conflict, dict) else ""
            responses["409"] = {"description": f"{said} {REPEATED_KEY}".strip(),
                                "content": ERROR_BODY}
        if getattr(view, "srs_rate_limited", False):
            responses["429"] = TOO_MANY
        if body is not None:
            responses["400"] = BAD_JSON
        if body is not None or operation.get("parameters"):
            responses["422"] = INVALID
        operation["responses"] = dict(sorted(responses.items()))


class SrsApi(Api):
    """flask-smorest with SRS's error shape, handled for API paths only."""

    ERROR_SCHEMA = ErrorSchema
    # Every error an operation can answer is documented by its status (ContractPlugin): a
    # catch-all "default" would let any status pass for documented.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self):
        # srs.errors registers one handler for pages and API alike.
        pass

    def handle_http_exception(self, error):
        return handle_http_exception(error)


api = SrsApi()


def init_app(app) -> None:
    from srs.api import (
        alerts,
        audit,
        booths,
        clients,
        compassion_eval,
        compassion_members,
        compassion_supply,
        controlled,
        displays,
        drugchecks,
        earlywarning,
        hat,
        hat_reports,
        incidents,
        naloxone,
        org,
        overdose,
        referrals,
        sites,
        staff,
        tokens,
        training,
    )
    from srs.extensions import csrf

    app.config.setdefault("API_TITLE", "SRS")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api.init_app(app, spec_kwargs={"extra_plugins": [ContractPlugin(app)], "info": {
        "description": (
            "Everything a screen of SRS can do. Authenticate with a bearer token "
            "(`flask --app app srs token create USERNAME`). Errors are "
            '`{"code", "status", "message", "errors": {field: [messages]}}` (the `Error` '
            "schema); each operation lists the ones it can give, and who may call it "
            "(`x-srs-roles`).")}})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    for blueprint in (sites.blp, booths.blp, alerts.blp, overdose.blp, naloxone.blp,
                      referrals.blp, incidents.blp, displays.blp, tokens.blp, staff.blp,
                      clients.blp, org.blp, audit.blp, training.blp,
                      drugchecks.blp, earlywarning.blp, hat.blp, controlled.blp,
                      hat_reports.blp, compassion_members.blp, compassion_supply.blp,
                      compassion_eval.blp):
        # Bearer tokens, not cookies: a forged cross-site request carries no token.
        csrf.exempt(blueprint)
        api.register_blueprint(blueprint)
