"""Who may open a site's pages: the decorator that names the site by its slug.

Like the decorators of ``srs.auth.access`` it declares its roles (``srs_roles``) for the
authorization-matrix test.
"""

from functools import wraps

from flask import abort
from flask_login import current_user

from srs.extensions import db, login_manager
from srs.sites.models import Site


def _site_or_404(slug: str) -> Site:
    site = db.session.execute(db.select(Site).filter_by(slug=slug)).scalar_one_or_none()
    if site is None:
        abort(404, "No such site.")
    return site


def site_role_required(*roles: str):
    """A staff member holding one of ``roles`` at the site named by ``slug``.

    The view receives the Site as ``site`` instead of ``slug``.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(slug: str, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            site = _site_or_404(slug)
            if not current_user.has_role(site.id, *roles):
                abort(403, "Your role at this site does not allow this page.")
            return view(site=site, **kwargs)

        wrapped.srs_roles = frozenset(roles)
        return wrapped

    return decorator
