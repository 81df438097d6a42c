"""What the database itself refuses in the overdose record and naloxone stock, after migrating."""

import pytest
from conftest import app_config, flask_cli, server_env
from sqlalchemy import exc, text

from srs import create_app
from srs.extensions import db


@pytest.fixture
def migrated(databases):
    url = databases.new("od-mig")
    result = flask_cli(["db", "upgrade"], server_env(url))
    assert result.returncode == 0, result.stderr
    app = create_app(app_config(url))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def run(sql: str, **params):
    with db.engine.begin() as connection:
        return connection.execute(text(sql), params)


def refused(sql: str, **params):
    with pytest.raises(exc.IntegrityError):
        run(sql, **params)


def test_the_migrated_schema_refuses_what_the_rules_forbid(migrated):
    run("INSERT INTO site (name, slug, timezone, created_at) "
        "VALUES ('East', 'east', 'UTC', CURRENT_TIMESTAMP)")
    site = run("SELECT id, naloxone_low_stock, overdose_locations FROM site").one()
    assert site.naloxone_low_stock == 10
    assert "Washroom" in str(site.overdose_locations)
    refused("UPDATE site SET naloxone_low_stock = -1")
    refused("UPDATE site SET naloxone_low_stock = 1001")

    insert = ("INSERT INTO overdose_response (site_id, kind, source, started_at, version, "
              "visit_seq, outcome, closed_at) VALUES (:site, :kind, 'booth', CURRENT_TIMESTAMP,"
              " 1, :seq, :outcome, :closed)")
    ok = {"site": site.id, "kind": "opioid", "seq": None, "outcome": None, "closed": None}
    run(insert, **ok)
    refused(insert, **{**ok, "kind": "cannabis"})
    refused(insert, **{**ok, "seq": 3})
    refused(insert, **{**ok, "outcome": "recovered_on_site"})  # an outcome needs a close
    refused(insert, **{**ok, "outcome": "fine", "closed": "2026-11-24 10:00:00"})
    response = run("SELECT id FROM overdose_response").scalar_one()

    step = ("INSERT INTO intervention (response_id, kind, at, recorded_at, stock_discrepancy, "
            "struck, dose_mg, spo2) VALUES (:r, :kind, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
            "false, false, :dose, :spo2)")
    good = {"r": response, "kind": "naloxone", "dose": 0.4, "spo2": None}
    run(step, **good)
    refused(step, **{**good, "dose": 0.01})
    refused(step, **{**good, "dose": 12})
    refused(step, **{**good, "kind": "spo2", "dose": None, "spo2": 49})

    run("INSERT INTO naloxone_lot (site_id, product, form, strength, lot_number, expires_on, "
        "quantity, received_at) VALUES (:site, 'Naloxone', 'ampoule', '0.4 mg/mL', 'A1', "
        "'2027-01-01', 5, CURRENT_TIMESTAMP)", site=site.id)
    refused("UPDATE naloxone_lot SET quantity = -1")
    refused("UPDATE naloxone_lot SET form = 'pill'")
