"""SRS: operations for supervised consumption sites."""

import logging
import os

from flask import Flask


def create_app(test_config=None):
    """Build the app from ``SRS_*`` settings (or ``test_config``); start nothing."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    from srs import api, assets, errors, idempotency, live, security, templating
    from srs.alerts.views import bp as alerts_bp
    from srs.audit.views import bp as audit_bp
    from srs.auth import sockets  # noqa: F401 - registers who may open a socket
    from srs.auth.views import bp as auth_bp
    from srs.booths import records as _booth_records  # noqa: F401 - a client's record
    from srs.booths.views import bp as booths_bp
    from srs.cli import srs_cli
    from srs.clients.retention_views import bp as retention_bp
    from srs.clients.views import bp as clients_bp
    from srs.common import RecordIdConverter
    from srs.compassion import records as _compassion_records  # noqa: F401 - a client's record
    from srs.compassion.evaluation_views import bp as club_eval_bp
    from srs.compassion.member_views import bp as club_bp
    from srs.compassion.supply_views import bp as club_supply_bp
    from srs.config import engine_options, from_environment, private_folder, rate_limit_settings
    from srs.controlled.views import bp as controlled_bp
    from srs.dashboard.views import bp as dashboard_bp
    from srs.drugchecks.pages import bp as earlywarning_bp
    from srs.drugchecks.views import bp as drugchecks_bp
    from srs.extensions import csrf, db, limiter, login_manager, migrate, render_migration_type
    from srs.hat import records as _hat_records  # noqa: F401 - a client's record, the register
    from srs.hat.dosing_views import bp as hat_dosing_bp
    from srs.hat.report_views import bp as hatreports_bp
    from srs.hat.views import bp as hat_bp
    from srs.health import bp as health_bp
    from srs.incidents import records as _incident_records  # noqa: F401 - a client's record
    from srs.incidents.views import bp as incidents_bp
    from srs.naloxone import records as _naloxone_records  # noqa: F401 - a client's record
    from srs.naloxone.training_views import bp as training_bp
    from srs.naloxone.views import bp as naloxone_bp
    from srs.org.views import bp as org_bp
    from srs.overdose import records as _overdose_records  # noqa: F401 - a client's record
    from srs.overdose.views import bp as overdose_bp
    from srs.referrals import records as _referral_records  # noqa: F401 - a client's record
    from srs.referrals.views import bp as referrals_bp
    from srs.sites.views import bp as sites_bp

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    app = Flask(__name__, instance_relative_config=True,
                template_folder=os.path.join(root, "templates"),
                static_folder=os.path.join(root, "static"),
                instance_path=os.environ.get("SRS_INSTANCE_PATH")
                or os.path.join(root, "instance"))
    private_folder(app.instance_path)
    # Before any route: an id too large for the database matches no route.
    app.url_map.converters["int"] = RecordIdConverter
    app.config.update(from_environment(app.instance_path))
    app.config.update(
        SRS_LOGIN_RATE_LIMIT="20 per minute", SRS_PIN_RATE_LIMIT="20 per minute",
        SRS_PASSWORD_HASH_METHOD="scrypt",
        # A floor page stays open all shift: its token lives as long as the login session.
        WTF_CSRF_TIME_LIMIT=None)
    if test_config is not None:
        app.config.update(test_config)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS",
                          engine_options(app.config["SQLALCHEMY_DATABASE_URI"],
                                         app.config.get("SRS_THREADS", 32)))
    for key, value in rate_limit_settings(app.config["SRS_REDIS_URL"]).items():
        app.config.setdefault(key, value)
    if app.config["SRS_REDIS_URL"]:
        from srs.live import message_channel

        app.config.setdefault("SRS_LIMIT_PREFIX",
                              message_channel(app.config["SQLALCHEMY_DATABASE_URI"]))
    if app.config["SRS_PROXY_HOPS"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["SRS_PROXY_HOPS"],
                                x_proto=app.config["SRS_PROXY_HOPS"],
                                x_host=app.config["SRS_PROXY_HOPS"])
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(root, "migrations"), render_as_batch=True,
                     compare_type=True, render_item=render_migration_type)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    csrf.init_app(app)
    limiter.init_app(app)
    live.init_app(app)
    api.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    idempotency.init_app(app)
    templating.init_app(app)
    assets.init_app(app)
    app.register_blueprint(auth_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(alerts_bp)
    app.register_blueprint(booths_bp)
    app.register_blueprint(naloxone_bp)
    app.register_blueprint(controlled_bp)
    app.register_blueprint(club_supply_bp)
    app.register_blueprint(training_bp)
    app.register_blueprint(drugchecks_bp)
    app.register_blueprint(earlywarning_bp)
    app.register_blueprint(overdose_bp)
    app.register_blueprint(referrals_bp)
    app.register_blueprint(incidents_bp)
    app.register_blueprint(sites_bp)
    app.register_blueprint(clients_bp)
    app.register_blueprint(org_bp)
    app.register_blueprint(retention_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(hat_bp)
    app.register_blueprint(hatreports_bp)
    app.register_blueprint(club_eval_bp)
    app.register_blueprint(hat_dosing_bp)
    app.register_blueprint(club_bp)
    app.cli.add_command(srs_cli)
    return app
