"""Who may open a page: decorators that also declare their roles.

Each decorated view carries ``srs_roles`` so the authorization-matrix test can
check every route against what it declares.
"""

from functools import wraps

from flask import abort, current_app, request
from flask_login import current_user

from srs.auth.service import Actor
from srs.extensions import limiter, login_manager

ANY_STAFF = "any staff"
# What a view for organisation admins declares: the flag on staff, not a role at a site.
ORG_ADMIN = "organisation admin"

# Every PIN typed on a locked tablet (unlocking, switching person, taking an alarm) counts
# against one limit per address: three doors to the same guess.
pin_rate_limit = limiter.shared_limit(lambda: current_app.config["SRS_PIN_RATE_LIMIT"],
                                      scope="pin")


def is_display() -> bool:
    """True when this request comes from a signed-in wall display (not a person)."""
    return getattr(current_user, "is_display", False)


def staff_required(view):
    """Any signed-in, unlocked staff member (a wall display is none)."""

    @wraps(view)
    def wrapped(**kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if is_display():
            abort(403, "A wall display shows the dashboard only.")
        return view(**kwargs)

    wrapped.srs_roles = ANY_STAFF
    return wrapped


def any_site_role_required(*roles: str):
    """A staff member holding one of ``roles`` at any site."""

    def decorator(view):
        @wraps(view)
        def wrapped(**kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not any(r.role in roles for r in current_user.roles):
                abort(403, "Your role does not allow this page.")
            return view(**kwargs)

        wrapped.srs_roles = frozenset(roles)
        return wrapped

    return decorator


def org_admin_required(view):
    """A signed-in organisation admin (``Staff.org_admin``), whatever their roles at sites."""

    @wraps(view)
    def wrapped(**kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not getattr(current_user, "org_admin", False):
            abort(403, "Only an organisation admin may open this page.")
        return view(**kwargs)

    wrapped.srs_roles = ORG_ADMIN
    return wrapped


def public(view):
    """Mark a view as open to anyone (login page, lock screen, static files)."""
    view.srs_roles = "public"
    return view


def current_actor() -> Actor:
    """The person signed in on this page request, for the audit trail."""
    return Actor.of(current_user, request.remote_addr)
