"""The schema comes from migrations, and the migrations build exactly the models."""

from datetime import UTC, date, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import app_config, flask_cli, server_env
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, exc, text
from sqlalchemy.pool import NullPool

from srs import create_app
from srs.common import UTCDateTime
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


# --- 0010: clients split by site ------------------------------------------------------------

CODE = "F-ABCD-1984"


def _day(day: int):
    return datetime(2026, 11, day, 17, 0, tzinfo=UTC)


def _clients_at_0009(url: str) -> dict:
    """A client who visited West first, then East (with an overdose, a kit, a referral and an
    incident there), one only a kit names, one nothing names; written at 0009."""
    app = create_app(app_config(url))
    tables = db.metadata.tables
    # 0009's client table: no site yet.
    client = Table("client", MetaData(), Column("id", Integer(), primary_key=True),
                   Column("code", String()), Column("handle", String()),
                   Column("flag_note", String()), Column("created_at", UTCDateTime()))
    ids = {}
    with app.app_context():
        with db.engine.begin() as conn:
            def add(table_name, **values):
                table_ = client if table_name == "client" else tables[table_name]
                return conn.execute(table_.insert().values(**values)).inserted_primary_key[0]

            ids["east"] = add("site", name="East", slug="east", timezone="America/Toronto")
            ids["west"] = add("site", name="West", slug="west", timezone="America/Toronto")
            staff = add("staff", username="nina", display_name="Nina", password_hash="x")
            ids["both"] = add("client", code=CODE, handle="Sparrow", flag_note="Prefers the door",
                              created_at=_day(1))
            ids["kit_only"] = add("client", code="M-KITS-1970", created_at=_day(1))
            ids["alone"] = add("client", code="X-LONE-1990", created_at=_day(1))
            add("care_profile", client_id=ids["both"], oat_medication="methadone",
                failed_oral_oat=1, housing="unstable")

            def visit(site, day):
                return add("visit", site_id=ids[site], client_id=ids["both"], state="departed",
                           arrived_at=_day(day), departed_at=_day(day) + timedelta(hours=1))

            ids["west_visits"] = [visit("west", 2), visit("west", 10)]
            east_visit = visit("east", 5)
            ids["east_visit"] = east_visit
            ids["east_response"] = add("overdose_response", site_id=ids["east"],
                                       visit_id=east_visit, client_id=ids["both"], kind="opioid",
                                       source="aftercare", started_at=_day(5))

            def kit(site, who):
                return add("take_home_kit", site_id=ids[site], client_id=ids[who],
                           form="nasal", given_at=_day(6))

            ids["east_kit"], ids["west_kit"] = kit("east", "both"), kit("west", "both")
            ids["lone_kit"] = kit("west", "kit_only")
            service = add("referral_service", site_id=ids["east"], name="OAT clinic",
                          service_type="oat")
            offer = add("referral_offer", site_id=ids["east"], visit_id=east_visit,
                        client_id=ids["both"], service_type="oat", status="accepted",
                        offered_at=_day(5))
            ids["east_referral"] = add(
                "referral", site_id=ids["east"], offer_id=offer, client_id=ids["both"],
                service_id=service, consent_given=True, referred_at=_day(5),
                follow_up_due=date(2026, 11, 12))
            ids["east_offer"] = offer
            ids["east_incident"] = add("incident", site_id=ids["east"], type="overdose",
                                       occurred_at=_day(5), reported_by=staff)
            add("incident_client", incident_id=ids["east_incident"], client_id=ids["both"])
        db.engine.dispose()
    return ids


def _rows(url: str, sql: str, **params) -> list[tuple]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def test_upgrading_splits_each_client_by_the_sites_it_visited_and_back(databases):
    url = databases.new("split")
    env = server_env(url)
    at_0009 = flask_cli(["db", "upgrade", "0009_drowsy_and_outcomes"], env)
    assert at_0009.returncode == 0, at_0009.stderr
    ids = _clients_at_0009(url)
    upgraded = flask_cli(["db", "upgrade"], env)
    assert upgraded.returncode == 0, upgraded.stderr

    both = _rows(url, "SELECT id, site_id, handle, flag_note FROM client WHERE code = :code "
                      "ORDER BY id", code=CODE)
    assert len(both) == 2
    # West saw the client first: it keeps the id; East gets its own record of the code.
    assert both[0] == (ids["both"], ids["west"], "Sparrow", "Prefers the door")
    east_id = both[1][0]
    assert both[1][1:] == (ids["east"], "Sparrow", "Prefers the door")
    assert _rows(url, "SELECT code, site_id FROM client WHERE id IN (:a, :b) ORDER BY id",
                 a=ids["kit_only"], b=ids["alone"]) == [
        ("M-KITS-1970", ids["west"]),  # the site of the kit that names it
        ("X-LONE-1990", ids["east"]),  # nothing names it: the first site
    ]

    def client_of(table_name: str, row_id: int) -> int:
        return _rows(url, f"SELECT client_id FROM {table_name} WHERE id = :id", id=row_id)[0][0]

    assert [client_of("visit", v) for v in ids["west_visits"]] == [ids["both"]] * 2
    assert client_of("take_home_kit", ids["west_kit"]) == ids["both"]
    for table_name, key in (("visit", "east_visit"), ("overdose_response", "east_response"),
                            ("take_home_kit", "east_kit"), ("referral_offer", "east_offer"),
                            ("referral", "east_referral")):
        assert client_of(table_name, ids[key]) == east_id, table_name
    assert _rows(url, "SELECT client_id FROM incident_client WHERE incident_id = :id",
                 id=ids["east_incident"]) == [(east_id,)]
    # What East saw of the care profile stays with East's record; West keeps its own.
    assert _rows(url, "SELECT client_id, oat_medication FROM care_profile ORDER BY client_id") \
        == [(ids["both"], "methadone"), (east_id, "methadone")]

    downgraded = flask_cli(["db", "downgrade", "0009_drowsy_and_outcomes"], env)
    assert downgraded.returncode == 0, downgraded.stderr
    assert _rows(url, "SELECT id FROM client WHERE code = :code", code=CODE) == [(ids["both"],)]
    assert client_of("visit", ids["east_visit"]) == ids["both"]
    assert client_of("referral", ids["east_referral"]) == ids["both"]
    assert _rows(url, "SELECT client_id FROM incident_client") == [(ids["both"],)]
    assert _rows(url, "SELECT client_id FROM care_profile") == [(ids["both"],)]
