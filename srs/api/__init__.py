"""The JSON API under /api/v1, documented at /api/v1/openapi.json."""

from flask_smorest import Api

from srs.errors import handle_http_exception


class SrsApi(Api):
    """flask-smorest with SRS's error shape, handled for API paths only."""

    def _register_error_handlers(self):
        # srs.errors registers one handler for pages and API alike.
        pass

    def handle_http_exception(self, error):
        return handle_http_exception(error)


api = SrsApi()


def init_app(app) -> None:
    from srs.api import (
        alerts,
        booths,
        displays,
        incidents,
        naloxone,
        overdose,
        referrals,
        sites,
        staff,
        tokens,
    )
    from srs.extensions import csrf

    app.config.setdefault("API_TITLE", "SRS")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api.init_app(app, spec_kwargs={"info": {"description": (
        "Everything a screen of SRS can do. Authenticate with a bearer token "
        "(`flask --app app srs token create USERNAME`). Errors are "
        '`{"code", "status", "message", "errors": {field: [messages]}}`.')}})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    for blueprint in (sites.blp, booths.blp, alerts.blp, overdose.blp, naloxone.blp,
                      referrals.blp, incidents.blp, displays.blp, tokens.blp, staff.blp):
        # Bearer tokens, not cookies: a forged cross-site request carries no token.
        csrf.exempt(blueprint)
        api.register_blueprint(blueprint)
