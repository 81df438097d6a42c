"""The schema comes from migrations, and the migrations build exactly the models."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import app_config, flask_cli, server_env
from sqlalchemy import exc, text

from srs import create_app
from srs.extensions import db, render_migration_type


@pytest.fixture
def migrated(databases):
    url = databases.new("mig")
    result = flask_cli(["db", "upgrade"], server_env(url))
    assert result.returncode == 0, result.stderr
    app = create_app(app_config(url))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_migrations_produce_exactly_the_models(migrated):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "render_item": render_migration_type})
        differences = compare_metadata(context, db.metadata)
    assert differences == [], f"models and migrations differ: {differences}"


def test_audit_trail_refuses_updates_and_deletes_after_migrating(migrated):
    with db.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO audit_event (at, actor, action, entity) "
            "VALUES (CURRENT_TIMESTAMP, 'test', 'login', 'login_session')"))
    for statement in ("UPDATE audit_event SET action = 'nothing'", "DELETE FROM audit_event"):
        with pytest.raises(exc.DBAPIError, match="append-only"):
            with db.engine.begin() as connection:
                connection.execute(text(statement))
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT action FROM audit_event")).scalars().all() == [
            "login"]


def test_downgrade_to_base_and_back(databases):
    url = databases.new("mig")
    env = server_env(url)
    for args in (["db", "upgrade"], ["db", "downgrade", "base"], ["db", "upgrade"]):
        result = flask_cli(args, env)
        assert result.returncode == 0, result.stderr
    check = flask_cli(["db", "check"], env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def test_migrated_database_enforces_every_timer_range(migrated):
    """Alembic does not compare CHECK constraints, so try each bound for real."""
    from srs.sites.models import TIMER_SETTINGS

    def insert(slug: str, column: str, value: int):
        with db.engine.begin() as connection:
            connection.execute(text(
                f"INSERT INTO site (name, slug, timezone, created_at, {column}) "
                f"VALUES ('x', :slug, 'UTC', CURRENT_TIMESTAMP, :value)"),
                {"slug": slug, "value": value})

    for n, setting in enumerate(TIMER_SETTINGS):
        insert(f"low-{n}", setting.name, setting.minimum)
        insert(f"high-{n}", setting.name, setting.maximum)
        for value in (setting.minimum - 1, setting.maximum + 1):
            with pytest.raises(exc.IntegrityError):
                insert(f"bad-{n}-{value}", setting.name, value)
