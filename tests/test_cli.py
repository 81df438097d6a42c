"""flask --app app srs ...: seed-demo, user create, token create."""

from pathlib import Path

from factories import make_site

from srs.auth.models import ApiToken, AuditEvent, Staff
from srs.auth.service import staff_for_token
from srs.booths.models import Booth
from srs.common import utcnow
from srs.extensions import db
from srs.naloxone.models import NaloxoneLot
from srs.naloxone.service import FAMILIES
from srs.overdose.models import OverdoseResponse
from srs.referrals import service as referrals
from srs.sites.models import Site


def test_seed_demo_creates_eight_booths_of_both_kinds_and_one_user_per_role(runner, app):
    result = runner.invoke(args=["srs", "seed-demo"])
    assert result.exit_code == 0, result.output
    site = db.session.execute(db.select(Site).filter_by(slug="demo")).scalar_one()
    kinds = [b.kind for b in db.session.execute(db.select(Booth).filter_by(site_id=site.id))
             .scalars()]
    assert len(kinds) == 8 and set(kinds) == {"injection", "inhalation"}
    for role in ("nurse", "supervisor", "reviewer", "admin"):
        assert f"demo-{role}" in result.output
        staff = db.session.execute(db.select(Staff).filter_by(username=f"demo-{role}")).scalar_one()
        assert staff.roles_at(site.id) == {role}
    assert "password" in result.output and "PIN" in result.output
    assert "20 x Naloxone HCl 0.4 mg/mL (ampoule), lot DEMO-A1" in result.output


def test_seed_demo_stocks_two_lots_of_each_kind_of_naloxone(runner, app):
    runner.invoke(args=["srs", "seed-demo"])
    site = db.session.execute(db.select(Site).filter_by(slug="demo")).scalar_one()
    lots = db.session.execute(db.select(NaloxoneLot).filter_by(site_id=site.id)).scalars().all()
    assert len(lots) == 4
    for forms in FAMILIES.values():
        of_kind = [lot for lot in lots if lot.form in forms]
        assert len(of_kind) == 2 and len({lot.expires_on for lot in of_kind}) == 2
        assert all(lot.quantity > 0 for lot in of_kind)
    # Each lot came in through the stock service: its ledger row and its audit entry.
    received = db.session.execute(db.select(AuditEvent).filter_by(
        action="naloxone_received", site_id=site.id)).scalars().all()
    assert sorted(int(e.entity_id) for e in received) == sorted(lot.id for lot in lots)


def test_seed_demo_gives_the_demo_site_its_referral_services_and_rules(runner, app):
    runner.invoke(args=["srs", "seed-demo"])
    site = db.session.execute(db.select(Site).filter_by(slug="demo")).scalar_one()
    rules = {rule.key for rule in referrals.current_rules(site, active_only=True)}
    assert rules == {rule["key"] for rule in referrals.DEFAULT_RULES}
    types = {s.service_type for s in referrals.services(site)}
    assert {"oat", "wound_care", "housing"} <= types


def test_seed_demo_makes_a_second_site_the_same_people_work(runner, app, client, auth):
    result = runner.invoke(args=["srs", "seed-demo"])
    sites = db.session.execute(db.select(Site).order_by(Site.id)).scalars().all()
    assert [s.slug for s in sites] == ["demo", "demo-north"]
    north = sites[1]
    assert db.session.execute(db.select(db.func.count(Booth.id)).filter_by(
        site_id=north.id)).scalar() == 4
    for role in ("nurse", "supervisor", "reviewer", "admin"):
        staff = db.session.execute(db.select(Staff).filter_by(username=f"demo-{role}")).scalar_one()
        assert all(staff.roles_at(s.id) == {role} for s in sites)
        assert staff.org_admin == (role == "admin")  # who may try creating a site
    assert "Demo site 'demo-north' (Demo North)" in result.output
    assert "each holds its role at both sites" in result.output
    written = (Path(app.instance_path) / "demo-logins.txt").read_text()
    assert written == result.output

    line = next(line for line in result.output.splitlines() if "demo-supervisor" in line)
    auth.login("demo-supervisor", line.split("password")[1].split()[0])
    dashboard = client.get("/supervise").get_data(as_text=True)
    assert "Demo Site" in dashboard and "Demo North" in dashboard


def test_the_demo_console_draws_a_dose_from_the_first_lot_to_expire(runner, app, client, auth):
    result = runner.invoke(args=["srs", "seed-demo"])
    line = next(line for line in result.output.splitlines() if "demo-nurse" in line)
    auth.login("demo-nurse", line.split("password")[1].split()[0])
    site = db.session.execute(db.select(Site).filter_by(slug="demo")).scalar_one()
    started = auth.post("/sites/demo/overdose/start",
                        {"kind": "opioid", "location": site.overdose_locations[0]})
    assert started.status_code in (200, 302, 303), started.get_data(as_text=True)
    response = db.session.execute(db.select(OverdoseResponse)).scalar_one()
    dose = auth.post(f"/sites/demo/overdose/{response.id}/dose", {"route": "im"},
                     headers={"HX-Request": "true"})
    assert dose.status_code == 200, dose.get_data(as_text=True)
    db.session.expire_all()
    lots = {lot.lot_number: lot.quantity for lot in db.session.execute(
        db.select(NaloxoneLot).filter_by(site_id=site.id)).scalars()}
    assert lots == {"DEMO-A1": 19, "DEMO-A2": 10, "DEMO-N1": 10, "DEMO-N2": 6}


def test_demo_logins_printed_work(runner, app, client, auth):
    result = runner.invoke(args=["srs", "seed-demo"])
    line = next(line for line in result.output.splitlines() if "demo-supervisor" in line)
    password = line.split("password")[1].split()[0]
    assert auth.login("demo-supervisor", password).status_code == 302
    assert b"Demo Site" in client.get("/supervise").data


def test_seed_demo_twice_changes_nothing(runner, app):
    runner.invoke(args=["srs", "seed-demo"])
    again = runner.invoke(args=["srs", "seed-demo"])
    assert again.exit_code != 0
    assert "already exists" in again.output
    assert db.session.execute(db.select(db.func.count(Site.id))).scalar() == 2


def test_user_create_with_password_and_pin(runner, app, auth):
    make_site(slug="east")
    result = runner.invoke(args=["srs", "user", "create", "nina", "--role", "nurse", "--site",
                                 "east", "--password", "long enough pass", "--pin", "246813"])
    assert result.exit_code == 0, result.output
    assert "Password (shown once)" not in result.output
    assert auth.login("nina", "long enough pass").status_code == 302


def test_user_create_generates_a_password_when_none_given(runner, app, auth):
    make_site(slug="east")
    result = runner.invoke(args=["srs", "user", "create", "nina", "--role", "nurse", "--site",
                                 "east"])
    assert result.exit_code == 0, result.output
    password = result.output.split("Password (shown once): ")[1].strip()
    assert auth.login("nina", password).status_code == 302


def test_user_create_refuses_bad_input_with_messages(runner, app):
    make_site(slug="east")
    cases = [
        (["nina", "--role", "nurse", "--site", "west"], "No site has the slug 'west'"),
        (["nina", "--role", "chef", "--site", "east"], "Invalid value for '--role'"),
        (["nina", "--role", "nurse", "--site", "east", "--password", "short"],
         "at least 10 characters"),
        (["nina", "--role", "nurse", "--site", "east", "--pin", "12"], "exactly 6 digits"),
        (["Nina Smith", "--role", "nurse", "--site", "east"], "lower-case letters"),
    ]
    for args, message in cases:
        result = runner.invoke(args=["srs", "user", "create", *args])
        assert result.exit_code != 0
        assert message in result.output, (args, result.output)
    assert db.session.execute(db.select(db.func.count(Staff.id))).scalar() == 0


def test_token_create_prints_only_the_token(runner, app):
    make_site(slug="east")
    runner.invoke(args=["srs", "user", "create", "nina", "--role", "nurse", "--site", "east"])
    result = runner.invoke(args=["srs", "token", "create", "nina"])
    assert result.exit_code == 0
    token = result.output
    assert token.endswith("\n") and token.count("\n") == 1
    assert staff_for_token(token.strip(), now=utcnow()).username == "nina"
    stored = db.session.execute(db.select(ApiToken)).scalar_one()
    assert token.strip() not in (stored.token_hash, stored.prefix)


def test_token_create_for_unknown_user_fails(runner, app):
    result = runner.invoke(args=["srs", "token", "create", "ghost"])
    assert result.exit_code != 0
    assert "No staff member is called 'ghost'" in result.output
