"""API tokens: a person lists and revokes their own; a site's admin those of anyone with a
role at that site. Revoking a token refuses its next call and cuts the sockets it opened at
once, on every instance. Creating one stays with the CLI (``flask --app app srs token
create USERNAME``): its value is shown once, to whoever runs the command.

Someone whose tokens the caller may not manage gets the same 404 as nobody at all.
"""

from flask import g
from flask_smorest import Blueprint

from srs.api.access import IDEMPOTENCY, SECURITY, api_actor, token_required
from srs.auth import service
from srs.auth.schemas import ApiTokenQuerySchema, ApiTokenSchema
from srs.common import utcnow
from srs.idempotency import idempotent

blp = Blueprint("api_tokens", __name__, url_prefix="/api/v1", description="API tokens")


@blp.get("/tokens")
@blp.doc(operationId="listApiTokens", security=SECURITY, responses={404: {
    "description": "No such person, or not one whose tokens the caller manages (the same "
                   "answer)."}})
@token_required()
@blp.arguments(ApiTokenQuerySchema, location="query")
@blp.response(200, ApiTokenSchema(many=True))
def list_api_tokens(query):
    """A person's API tokens (the caller's own, or ``username``'s), those in use first, with
    their ids and prefixes, never their values."""
    return service.managed_tokens(g.api_staff, query["username"])


@blp.post("/tokens/<int:token_id>/revoke")
@blp.doc(operationId="revokeApiToken", security=SECURITY, **IDEMPOTENCY)
@token_required()
@idempotent
@blp.response(200, ApiTokenSchema)
def revoke_api_token(token_id):
    """Revoke a token: its next call gets 401 and its sockets are cut at once. Revoking a
    revoked token changes nothing."""
    token = service.get_token(token_id, manager=g.api_staff)
    return service.revoke_token(token, actor=api_actor(), now=utcnow())
