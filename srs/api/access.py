"""Bearer-token authentication and per-site roles for API operations."""

from functools import wraps

from flask import current_app, g, request
from flask_smorest import abort
from sqlalchemy import bindparam

from srs.auth.access import ANY_STAFF, ORG_ADMIN
from srs.auth.service import Actor, bearer_token, staff_for_token, staff_for_token_with
from srs.common import utcnow
from srs.drugchecks.outbox import gateway_token_valid
from srs.errors import Invalid
from srs.sites.models import Site
from srs.sites.service import no_such_site

# What an operation open to anyone declares (no token), and one the SMS gateway calls with
# its own token (``flask --app app srs alerts gateway-token``), which no staff token opens.
PUBLIC = "public"
GATEWAY = "sms gateway"

# Where srs.api keeps the (endpoint, method) pairs whose document requires a request body.
REQUIRED_BODIES = "srs_api_required_bodies"

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


def _token_staff():
    """The staff member whose valid bearer token this request carries; 401 without one."""
    staff = staff_for_token(bearer_token(request.headers.get("Authorization")), now=utcnow())
    if staff is None:
        abort(401, message="A valid bearer token is required.")
    return staff


# The site an API call names, read in the token's statement (``staff_for_token_with``).
_SITE = (Site, Site.id == bindparam("site_id"))


def _token_staff_at(site_id: int):
    """:func:`_token_staff`, and the site ``site_id`` read with the token (None: no such
    site), kept for the request: the operation's ``get_site`` finds it in the session."""
    staff, site = staff_for_token_with(
        bearer_token(request.headers.get("Authorization")), now=utcnow(), also=_SITE,
        params={"site_id": site_id})
    if staff is None:
        abort(401, message="A valid bearer token is required.")
    g.api_site = site
    return staff


def token_required(*roles: str):
    """Require a valid bearer token; with ``roles``, one of them at ``site_id``'s site.

    401 without a valid token; 404 for an unknown site and, with the same body, for a site
    where the token's owner holds no role (so that site ids cannot be probed); 403 for a
    role at the site that may not; then 422 when a body the document requires is missing.
    """

    def decorator(func):
        @wraps(func)
        def wrapped(*args, **kwargs):
            if roles:
                staff = _token_staff_at(kwargs["site_id"])
                # No role at a site that does not exist: one answer for both.
                held = staff.roles_at(kwargs["site_id"]) if g.api_site is not None else set()
                if not held:
                    raise no_such_site()
                if not held & set(roles):
                    abort(403, message=f"This operation needs one of these roles at the site: "
                                       f"{', '.join(roles)}.")
            else:
                staff = _token_staff()
            g.api_staff = staff
            _require_declared_body()
            return func(*args, **kwargs)

        wrapped.srs_roles = frozenset(roles) if roles else ANY_STAFF
        return wrapped

    return decorator


def org_admin_token_required(func):
    """Require a bearer token of an organisation admin (``Staff.org_admin``).

    401 without a valid token; for anyone else 403, except that an operation on a site
    (``site_id``) the caller holds no role at answers the 404 of a site that does not exist,
    as :func:`token_required` does; then 422 when a body the document requires is missing.
    """

    @wraps(func)
    def wrapped(*args, **kwargs):
        staff = _token_staff()
        if not staff.org_admin:
            if "site_id" in kwargs and not staff.roles_at(kwargs["site_id"]):
                raise no_such_site()
            abort(403, message="Only an organisation admin may call this operation.")
        g.api_staff = staff
        _require_declared_body()
        return func(*args, **kwargs)

    wrapped.srs_roles = ORG_ADMIN
    return wrapped


def public_operation(func):
    """An operation anyone may call, without a token (an anonymous report); then 422 when
    a body the document requires is missing."""

    @wraps(func)
    def wrapped(*args, **kwargs):
        _require_declared_body()
        return func(*args, **kwargs)

    wrapped.srs_roles = PUBLIC
    return wrapped


def gateway_token_required(func):
    """Require the SMS gateway's bearer token: 401 without a valid token, 403 for a staff
    member's token (the gateway's operations are not theirs); then 422 when a body the
    document requires is missing."""

    @wraps(func)
    def wrapped(*args, **kwargs):
        raw = bearer_token(request.headers.get("Authorization"))
        if not gateway_token_valid(raw):
            if staff_for_token(raw, now=utcnow()) is not None:
                abort(403, message="Only the SMS gateway's token may call this operation.")
            abort(401, message="The SMS gateway's bearer token is required.")
        _require_declared_body()
        return func(*args, **kwargs)

    wrapped.srs_roles = GATEWAY
    return wrapped


def _require_declared_body() -> None:
    """A request body the OpenAPI document marks required is there, and JSON.

    Without this a body-less call would be read as ``{}`` and, where every field may be
    left out, be carried out. Called after the access checks, so that a caller learns
    nothing about input before it may call the operation.

    :raises Invalid: on ``_body``.
    """
    required = current_app.extensions.get(REQUIRED_BODIES, frozenset())
    if (request.endpoint, request.method) not in required:
        return
    if not request.is_json or not request.get_data(cache=True).strip():
        raise Invalid("This operation needs a JSON body.", {"_body": [
            "Send a JSON object, with Content-Type: application/json."]})
