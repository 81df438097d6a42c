"""Sites, their board and their settings."""

from flask import g, request
from flask_smorest import Blueprint

from srs.api.access import SECURITY, token_required
from srs.auth.models import Role
from srs.auth.service import Actor
from srs.booths.schemas import BoardSchema
from srs.booths.service import site_board
from srs.common import utcnow
from srs.org.service import all_sites
from srs.sites import service
from srs.sites.schemas import SiteSchema, SiteSettingsChangeSchema, SiteSettingsSchema

blp = Blueprint("api_sites", __name__, url_prefix="/api/v1", description="Sites")


@blp.get("/sites")
@blp.doc(operationId="listSites", security=SECURITY)
@token_required()
@blp.response(200, SiteSchema(many=True))
def list_sites():
    """List the sites the token's owner has a role at; an organisation admin's, every site."""
    return all_sites() if g.api_staff.org_admin else service.sites_for(g.api_staff)


@blp.get("/sites/<int:site_id>/board")
@blp.doc(operationId="getSiteBoard", security=SECURITY)
@token_required(Role.NURSE, Role.SUPERVISOR, Role.ADMIN)
@blp.response(200, BoardSchema)
def get_site_board(site_id):
    """Booths of a site with their state."""
    return site_board(service.get_site(site_id), now=utcnow())


@blp.get("/sites/<int:site_id>/settings")
@blp.doc(operationId="getSiteSettings", security=SECURITY)
@token_required(Role.ADMIN)
@blp.response(200, SiteSettingsSchema)
def get_site_settings(site_id):
    """A site's timer durations (seconds) and other settings."""
    return service.get_site(site_id)


@blp.patch("/sites/<int:site_id>/settings")
@blp.doc(operationId="updateSiteSettings", security=SECURITY)
@token_required(Role.ADMIN)
@blp.arguments(SiteSettingsChangeSchema)
@blp.response(200, SiteSettingsSchema)
def update_site_settings(changes, site_id):
    """Change some of a site's settings; every duration in seconds, within its range."""
    return service.update_settings(service.get_site(site_id), changes,
                                   actor=Actor.of(g.api_staff, request.remote_addr),
                                   now=utcnow())
