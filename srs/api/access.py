"""Bearer-token authentication and per-site roles for API operations."""

from functools import wraps

from flask import g, request
from flask_smorest import abort

from srs.auth.access import ANY_STAFF
from srs.auth.service import Actor, bearer_token, staff_for_token
from srs.common import utcnow
from srs.sites.service import get_site

# The OpenAPI security requirement of every operation.
SECURITY = [{"bearerAuth": []}]
# The header every state-changing operation accepts, as the OpenAPI document gives it.
IDEMPOTENCY = {"parameters": [{
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "maxLength": 80},
    "description": "New for each action; a repeat returns the first answer."}]}


def api_actor() -> Actor:
    """The caller of this API request, for the audit trail."""
    return Actor.of(g.api_staff, request.remote_addr)


def token_required(*roles: str):
    """Require a valid bearer token; with ``roles``, one of them at ``site_id``'s site.

    401 without a valid token, 404 for an unknown site, 403 for a role that may not.
    """

    def decorator(func):
        @wraps(func)
        def wrapped(*args, **kwargs):
            staff = staff_for_token(bearer_token(request.headers.get("Authorization")),
                                     now=utcnow())
            if staff is None:
                abort(401, message="A valid bearer token is required.")
            if roles:
                site = get_site(kwargs["site_id"])
                if not staff.has_role(site.id, *roles):
                    abort(403, message=f"This operation needs one of these roles at the site: "
                                       f"{', '.join(roles)}.")
            g.api_staff = staff
            return func(*args, **kwargs)

        wrapped.srs_roles = frozenset(roles) if roles else ANY_STAFF
        return wrapped

    return decorator
