"""Retention: records older than a site's period lose their client, and every report's figure
stays what it was."""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import (
    ACTOR,
    make_booth,
    make_client,
    make_referral,
    make_site,
    make_staff,
    make_submitted_incident,
)
from routes import bearer
from sqlalchemy import exc, text

from srs.auth.models import AuditEvent, Role
from srs.booths.models import Consumption, Visit
from srs.clients import retention
from srs.clients.models import Client
from srs.clients.service import client_for_code, find_clients
from srs.common import utcnow
from srs.extensions import db
from srs.incidents import reports
from srs.incidents.models import Incident
from srs.naloxone.models import SessionTrainee, TakeHomeKit, Trainee, TrainingSession
from srs.overdose.models import OverdoseResponse
from srs.referrals.models import CareProfile, Referral
from srs.sites.models import Site

TORONTO = ZoneInfo("America/Toronto")
# A fixed now: with 730 days the period starts on the site's 1 December 2024.
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
CUTOFF = datetime(2024, 12, 1, tzinfo=TORONTO).astimezone(UTC)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=TORONTO).astimezone(UTC)


def months(first: date, last: date) -> list[date]:
    out, month = [], first
    while month <= last:
        out.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return out


def visit(site, client, arrived, *, booth=None, substances=()):
    row = Visit(site_id=site.id, client_id=client.id, state="departed", arrived_at=arrived,
                booth_id=booth.id if booth else None,
                departed_at=arrived + timedelta(minutes=40), consumed=bool(substances))
    db.session.add(row)
    db.session.flush()
    if substances:
        db.session.add(Consumption(visit_id=row.id, recorded_at=arrived,
                                   substances=list(substances), route="injects"))
    return row


def client(site, code, *, since: datetime, handle=None) -> Client:
    row = make_client(site, code=code, handle=handle)
    row.created_at = since
    return row


@dataclass
class Floor:
    site: Site
    gone: Client      # visited only before the period, with a handle, note, flags and profile
    both: Client      # visits before the period and in it, right across its first midnight
    fresh: Client     # visits only in the period
    kit_only: Client  # visits before the period; a take-home kit in it
    bare: Client      # known before the period, no record at all


@pytest.fixture
def floor(app):
    site = make_site(name="Queen St", slug="queen")
    b1 = make_booth(site, label="B1")
    reporter = make_staff(site, role="nurse")
    gone = client(site, "F-GONE-1980", since=local(2023, 11, 20), handle="Sparky")
    gone.flag_note = "Prefers the corner booth"
    gone.restricted_until, gone.restriction_reason = date(2024, 6, 1), "Shouting at staff"
    both = client(site, "M-BOTH-1990", since=local(2023, 12, 1), handle="Blue")
    fresh = client(site, "TF-NEWW-2001", since=local(2026, 2, 1))
    kit_only = client(site, "X-KITS-1975", since=local(2024, 1, 1), handle="Kit")
    bare = client(site, "F-BARE-1999", since=local(2024, 1, 5))
    db.session.add(CareProfile(client_id=gone.id, housing="unstable"))

    for month in months(date(2023, 12, 1), date(2026, 11, 1)):
        day = local(month.year, month.month, 10, 14, 0)
        visit(site, both, day, booth=b1, substances=["fentanyl"])
        if month < date(2024, 12, 1):
            visit(site, gone, day + timedelta(hours=3), substances=["crack"])
        if month >= date(2026, 3, 1):
            visit(site, fresh, day + timedelta(days=2))
    for month in months(date(2024, 1, 1), date(2024, 3, 1)):
        visit(site, kit_only, local(month.year, month.month, 20, 9, 0))
    # The last minutes before the period and the first ones in it.
    visit(site, gone, local(2024, 11, 30, 23, 50))
    visit(site, both, local(2024, 11, 30, 23, 55))
    visit(site, both, local(2024, 12, 1, 0, 10))

    db.session.add_all([
        TakeHomeKit(site_id=site.id, client_id=gone.id, form="nasal",
                    given_at=local(2024, 5, 10, 15, 0), training_given=True),
        TakeHomeKit(site_id=site.id, client_id=kit_only.id, form="injectable",
                    given_at=local(2026, 6, 2, 11, 0)),
    ])
    # Naloxone training: the gone client trained before the period, the returning one in it
    # (with a police officer beside them, whom retention never touches).
    for held, who in ((date(2024, 5, 10), gone), (date(2026, 4, 8), both)):
        trained = Trainee(site_id=site.id, kind="person_at_risk", client_id=who.id,
                          created_at=local(held.year, held.month, held.day, 12, 0))
        officer = Trainee(site_id=site.id, kind="police", created_at=trained.created_at)
        db.session.add(TrainingSession(
            site_id=site.id, held_on=held, trainer_id=reporter.id, curriculum="THN",
            format="standard", recorded_at=trained.created_at, attendance=[
                SessionTrainee(trainee=trained), SessionTrainee(trainee=officer)]))
    overdose_visit = visit(site, gone, local(2024, 3, 3, 12, 0), booth=b1,
                           substances=["fentanyl"])
    db.session.add(OverdoseResponse(
        site_id=site.id, visit_id=overdose_visit.id, visit_seq=1, client_id=gone.id,
        booth_id=b1.id, kind="opioid", source="booth", started_at=local(2024, 3, 3, 12, 20),
        closed_at=local(2024, 3, 3, 12, 50), outcome="recovered_on_site",
        report_draft={"client_code": "F-GONE-1980", "timeline": [
            {"detail": "Opioid response started for F-GONE-1980 (B1)"}]}))
    db.session.commit()
    make_referral(visit(site, gone, local(2024, 6, 12, 10, 0)), at=local(2024, 6, 12, 10, 20))
    make_referral(visit(site, both, local(2026, 5, 12, 10, 0)), at=local(2026, 5, 12, 10, 20))
    for moment, who in ((local(2024, 4, 4, 13, 0), gone), (local(2026, 4, 4, 13, 0), both)):
        incident = make_submitted_incident(site, reporter, now=moment)
        incident.narrative = f"{who.code} complained of the wait."
        incident.clients.append(who)
    db.session.commit()
    return Floor(site, gone, both, fresh, kit_only, bare)


def set_retention(site, days=730):
    site.retention_days = days
    db.session.commit()


def every_figure(site) -> dict:
    """Every monthly figure from before the first visit to now, and the weekly review's
    figures for weeks before, across and after the start of the period."""
    figures = {}
    for month in months(date(2023, 11, 1), date(2026, 12, 1)):
        report = reports.monthly_report(site, month)
        figures[month] = [(figure.name, value) for figure, value in report["figures"]]
    for monday in (date(2024, 3, 4), date(2024, 11, 25), date(2024, 12, 2), date(2026, 11, 30)):
        review = reports.weekly_review(site, monday, {}, today=NOW.date())
        figures[monday] = (review.visits_per_week, review.overdoses_per_week,
                           review.type_per_week, review.by_band, review.by_booth,
                           review.naloxone_per_overdose, review.minutes_to_naloxone,
                           len(review.incidents))
    return figures


def people(site) -> dict:
    """The site's clients that are not placeholders, by code."""
    return {c.code: c for c in db.session.execute(db.select(Client).filter_by(
        site_id=site.id, placeholder=False)).scalars()}


def retention_events(site) -> list[AuditEvent]:
    return list(db.session.execute(db.select(AuditEvent).filter_by(
        site_id=site.id, action="retention_applied").order_by(AuditEvent.id)).scalars())


# --- The run -----------------------------------------------------------------------------------


def test_every_monthly_and_weekly_figure_is_the_same_after_a_run_and_after_another(floor):
    before = every_figure(floor.site)
    # The data is what the test means: the period's first months count a returning client.
    assert dict(before[date(2024, 12, 1)])["new_clients"] == 0
    assert dict(before[date(2024, 11, 1)])["unique_clients"] == 2
    assert dict(before[date(2024, 5, 1)])["people_trained_by_kind"]["person_at_risk"] == 1
    set_retention(floor.site)

    retention.apply_retention(now=NOW)
    assert every_figure(floor.site) == before
    retention.apply_retention(now=NOW + timedelta(days=1))
    assert every_figure(floor.site) == before


def test_old_records_lose_their_client_and_recent_clients_keep_theirs(floor):
    set_retention(floor.site)
    both_id, kit_id, gone_id = floor.both.id, floor.kit_only.id, floor.gone.id
    retention.apply_retention(now=NOW)
    db.session.expire_all()

    kept = people(floor.site)
    # Visited only before the period: the code, handle, note and flags are gone, with the row.
    assert "F-GONE-1980" not in kept and db.session.get(Client, gone_id) is None
    assert "F-BARE-1999" not in kept
    assert db.session.get(CareProfile, gone_id) is None
    # A visit in the period keeps the code and the handle; the older visits are not theirs.
    assert kept["M-BOTH-1990"].id == both_id and kept["M-BOTH-1990"].handle == "Blue"
    assert kept["TF-NEWW-2001"].handle is None
    # A kit in the period keeps the code for it; no visit in the period: the handle goes.
    assert kept["X-KITS-1975"].id == kit_id and kept["X-KITS-1975"].handle is None
    assert set(kept) == {"M-BOTH-1990", "TF-NEWW-2001", "X-KITS-1975"}

    old_visits = list(db.session.execute(db.select(Visit).where(
        Visit.site_id == floor.site.id, Visit.arrived_at < CUTOFF)).scalars())
    assert old_visits and all(v.client.placeholder for v in old_visits)
    assert db.session.scalar(db.select(db.func.min(Visit.arrived_at)).filter_by(
        client_id=both_id)) == local(2024, 12, 1, 0, 10)
    placeholders = {v.client for v in old_visits}
    assert len(placeholders) == 3  # one for each person who had visits before the period
    for placeholder in placeholders:
        assert placeholder.code.startswith("retired-")
        assert (placeholder.handle, placeholder.flag_note, placeholder.restricted_until,
                placeholder.restriction_reason) == (None, None, None, None)
    assert sorted((p.gender, p.birth_year) for p in placeholders) == [
        ("female", 1980), ("male", 1990), ("other", 1975)]

    # What pointed at the person before the period points at their placeholder, codes too.
    response = db.session.execute(db.select(OverdoseResponse)).scalar_one()
    assert response.client.placeholder
    assert "F-GONE-1980" not in str(response.report_draft)
    assert response.client.code in response.report_draft["timeline"][0]["detail"]
    old_kit, new_kit = db.session.execute(db.select(TakeHomeKit).order_by(
        TakeHomeKit.given_at)).scalars()
    assert old_kit.client.placeholder and new_kit.client_id == kit_id
    old_referral, new_referral = db.session.execute(db.select(Referral).order_by(
        Referral.referred_at)).scalars()
    assert old_referral.client.placeholder and old_referral.offer.client_id == \
        old_referral.client_id
    assert new_referral.client_id == both_id
    old_incident, new_incident = db.session.execute(db.select(Incident).order_by(
        Incident.occurred_at)).scalars()
    assert [c.placeholder for c in old_incident.clients] == [True]
    assert "F-GONE-1980" not in old_incident.narrative
    assert [c.code for c in new_incident.clients] == ["M-BOTH-1990"]
    old_trainee, new_trainee = db.session.execute(db.select(Trainee).where(
        Trainee.client_id.is_not(None)).order_by(Trainee.created_at)).scalars()
    assert old_trainee.client.placeholder and new_trainee.client_id == both_id


@pytest.mark.parametrize("batch", [retention.BATCH, 1])
def test_the_preview_counts_what_the_run_changes_and_the_run_is_audited(floor, monkeypatch,
                                                                         batch):
    monkeypatch.setattr(retention, "BATCH", batch)  # one client per commit: the same result
    preview = retention.retention_preview(floor.site, 730, NOW)
    assert preview.cutoff == CUTOFF
    set_retention(floor.site)
    done = retention.apply_retention(now=NOW)[floor.site.id]

    assert done == preview.counts
    assert done == {"clients": 3, "visits": 12 + 1 + 12 + 1 + 3 + 2, "take_home_kits": 1,
                    "overdose_responses": 1, "referral_offers": 1, "referrals": 1,
                    "incident_links": 1, "naloxone_trainees": 1, "hat_enrolments": 0,
                    "compassion_members": 0, "clients_cleared": 1,
                    "care_profiles": 1, "clients_removed": 2}
    event, = retention_events(floor.site)
    assert event.actor == "retention" and event.entity_id == str(floor.site.id)
    assert event.detail == {"retention_days": 730, "before": CUTOFF.isoformat(),
                            "complete": True, **done}

    # Nothing is left to change: a second run changes nothing, and says so.
    assert retention.retention_preview(floor.site, 730, NOW).counts == dict.fromkeys(
        retention.COUNTS, 0)
    assert retention.apply_retention(now=NOW)[floor.site.id] == dict.fromkeys(
        retention.COUNTS, 0)
    assert retention_events(floor.site)[-1].detail["visits"] == 0


def test_a_run_stopped_halfway_is_audited_and_the_next_one_finishes_it(floor, monkeypatch):
    before = every_figure(floor.site)
    preview = retention.retention_preview(floor.site, 730, NOW)
    set_retention(floor.site)
    monkeypatch.setattr(retention, "BATCH", 1)
    real, calls = retention._replace_codes_in_records, []

    def fail_the_second_batch(*args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return real(*args)

    monkeypatch.setattr(retention, "_replace_codes_in_records", fail_the_second_batch)
    first = retention.apply_retention(now=NOW)[floor.site.id]
    assert first["clients"] == 1 and first["clients_removed"] == 0
    assert retention_events(floor.site)[-1].detail == {
        "retention_days": 730, "before": CUTOFF.isoformat(), "complete": False, **first}

    second = retention.apply_retention(now=NOW)[floor.site.id]
    assert {name: first[name] + second[name] for name in retention.COUNTS} == preview.counts
    assert retention_events(floor.site)[-1].detail["complete"] is True
    assert every_figure(floor.site) == before


def test_a_site_without_retention_keeps_everything(floor):
    other = make_site(slug="other", retention_days=730)
    assert retention.apply_retention(now=NOW) == {other.id: dict.fromkeys(retention.COUNTS, 0)}
    assert set(people(floor.site)) == {"F-GONE-1980", "M-BOTH-1990", "TF-NEWW-2001",
                                       "X-KITS-1975", "F-BARE-1999"}
    assert retention_events(floor.site) == []


def test_a_longer_period_reaches_less(floor):
    assert retention.retention_preview(floor.site, 36500, NOW).counts == dict.fromkeys(
        retention.COUNTS, 0)
    later = retention.retention_preview(floor.site, 760, NOW)  # from 1 November 2024
    assert later.cutoff == local(2024, 11, 1)
    assert 0 < later.counts["visits"] < retention.retention_preview(
        floor.site, 730, NOW).counts["visits"]


def test_nobody_can_type_a_placeholders_code(floor):
    set_retention(floor.site)
    retention.apply_retention(now=NOW)
    placeholder = db.session.execute(db.select(Client).filter_by(
        site_id=floor.site.id, placeholder=True).limit(1)).scalar_one()
    assert find_clients(floor.site, "retired", actor=ACTOR) == []
    assert find_clients(floor.site, placeholder.code[8:14], actor=ACTOR) == []
    # The code of a client whose records retired is a new client's if they come back.
    again, new = client_for_code(floor.site, "F-GONE-1980", actor=ACTOR, now=NOW)
    assert new and not again.placeholder and again.handle is None


# --- The setting -------------------------------------------------------------------------------


def settings_url(site) -> str:
    return f"/api/v1/sites/{site.id}/settings"


def test_the_api_refuses_under_two_years_and_sets_and_unsets_the_period(client, floor):
    admin = make_staff(floor.site, role=Role.ADMIN)
    refused = client.patch(settings_url(floor.site), headers=bearer(admin),
                           json={"retention_days": 729})
    assert refused.status_code == 422
    assert "at least 730 days" in refused.get_json()["errors"]["retention_days"][0]
    assert client.get(settings_url(floor.site), headers=bearer(admin)).get_json()[
        "retention_days"] is None

    done = client.patch(settings_url(floor.site), headers=bearer(admin),
                        json={"retention_days": 730})
    assert done.status_code == 200 and done.get_json()["retention_days"] == 730
    unset = client.patch(settings_url(floor.site), headers=bearer(admin),
                         json={"retention_days": None})
    assert unset.status_code == 200 and unset.get_json()["retention_days"] is None
    changes = [e.detail for e in db.session.execute(db.select(AuditEvent).filter_by(
        site_id=floor.site.id, action="settings_updated").order_by(AuditEvent.id)).scalars()]
    assert changes == [{"retention_days": {"from": None, "to": 730}},
                       {"retention_days": {"from": 730, "to": None}}]


def test_the_database_refuses_a_period_under_two_years(app):
    site = make_site()
    with pytest.raises(exc.IntegrityError):
        with db.session.begin_nested():
            db.session.execute(text("UPDATE site SET retention_days = 729 WHERE id = :id"),
                               {"id": site.id})


def test_every_record_that_names_a_client_has_a_retention_rule(app):
    """A table that names a client and that retention does not know keeps the client's code
    for ever: a new one needs its rule in ``srs.clients.retention._old_records``."""
    assert retention.unknown_references() == []


def test_the_daily_job_is_in_the_table():
    from srs.jobs import JOBS

    job = next(j for j in JOBS if j.id == "retention")
    assert job.func is retention.apply_retention and job.trigger == "cron"


# --- The page ----------------------------------------------------------------------------------


def page_url(site, **query) -> str:
    return f"/sites/{site.slug}/admin/retention" + (
        "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def shown_counts(page: str) -> dict:
    return {name: int(value) for name, value in re.findall(
        r'data-count="(\w+)"><td>[^<]*</td><td>(\d+)</td>', page)}


def stored_days(site):
    db.session.rollback()
    return db.session.get(Site, site.id).retention_days


@pytest.fixture
def admin(floor, auth):
    staff = make_staff(floor.site, role=Role.ADMIN)
    assert auth.login(staff.username).status_code == 302
    return staff


def test_an_admin_sees_what_a_period_would_change_before_setting_it(client, floor, admin):
    page = client.get(page_url(floor.site))
    assert page.status_code == 200
    assert "No period is set" in page.text and "data-count" not in page.text

    page = client.get(page_url(floor.site, retention_days=730))
    assert page.status_code == 200
    expected = retention.retention_preview(floor.site, 730, utcnow()).counts
    assert shown_counts(page.text) == expected and expected["visits"] > 0
    assert 'data-testid="retention-confirm"' in page.text
    assert f"{expected['visits']} visits" in page.text
    assert stored_days(floor.site) is None


@pytest.mark.parametrize(("typed", "message"), [
    ("729", "at least 730 days"), ("36501", "at most 36500 days"),
    ("two years", "whole number of days"), ("", "Give a number of days")])
def test_a_period_outside_the_range_is_refused_beside_the_field_and_kept(
        client, auth, floor, admin, typed, message):
    for response in (client.get(page_url(floor.site, retention_days=typed)),
                     auth.post(page_url(floor.site), data={"retention_days": typed,
                                                           "confirmed": "true"})):
        assert response.status_code == 422
        assert message in response.text
        assert f'value="{typed}"' in response.text and 'aria-invalid="true"' in response.text
        assert "data-count" not in response.text
    assert stored_days(floor.site) is None


def test_setting_takes_a_confirmation_that_states_the_counts_and_is_audited(
        client, auth, floor, admin):
    asked = auth.post(page_url(floor.site), data={"retention_days": "730"})
    assert asked.status_code == 200
    expected = retention.retention_preview(floor.site, 730, utcnow()).counts
    assert 'data-testid="retention-confirm"' in asked.text
    assert f"would stop naming\n      {expected['clients']} clients" in asked.text
    assert stored_days(floor.site) is None

    done = auth.post(page_url(floor.site), data={"retention_days": "730", "confirmed": "true"})
    assert done.status_code == 303 and done.headers["Location"].endswith(page_url(floor.site))
    assert stored_days(floor.site) == 730
    page = client.get(page_url(floor.site))
    assert "older than <strong>730 days</strong>" in page.text
    assert shown_counts(page.text) == expected  # the period in force, counted

    lifted = auth.post(page_url(floor.site) + "/off")
    assert lifted.status_code == 303 and stored_days(floor.site) is None
    changes = [(e.staff_id, e.detail) for e in db.session.execute(db.select(AuditEvent).filter_by(
        site_id=floor.site.id, action="settings_updated").order_by(AuditEvent.id)).scalars()]
    assert changes == [(admin.id, {"retention_days": {"from": None, "to": 730}}),
                       (admin.id, {"retention_days": {"from": 730, "to": None}})]


def test_the_page_is_for_site_admins(client, auth, floor):
    nurse = make_staff(floor.site, role=Role.SUPERVISOR)
    auth.login(nurse.username)
    assert client.get(page_url(floor.site, retention_days=730)).status_code == 403
    assert auth.post(page_url(floor.site), data={"retention_days": "730",
                                                 "confirmed": "true"}).status_code == 403
    assert stored_days(floor.site) is None
