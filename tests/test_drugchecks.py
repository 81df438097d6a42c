"""Drug checks and the early-warning programme: the watch list and overdose clusters drafting
alerts, the alert lifecycle with its second-person rule, the API and the pages."""

from datetime import UTC, datetime, timedelta

import pytest
from factories import ACTOR, make_site, make_staff
from routes import assert_api_error, bearer, field_error

from srs.audit.models import AuditEvent
from srs.auth.service import Actor
from srs.drugchecks import service
from srs.drugchecks.models import DrugAlert, DrugCheck
from srs.errors import Conflict, Invalid
from srs.extensions import db
from srs.overdose.models import OverdoseResponse

# Noon in Toronto (the factories' sites' zone), a Monday.
NOW = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)


def overdoses(site, *moments, kind="opioid"):
    for moment in moments:
        db.session.add(OverdoseResponse(site_id=site.id, kind=kind, source="not_checked_in",
                                        location="Washroom", started_at=moment))
    db.session.commit()


def advisories(site=None):
    query = db.select(DrugAlert).where(DrugAlert.kind == "overdose_advisory")
    rows = list(db.session.execute(query.order_by(DrugAlert.id)).scalars())
    return [a for a in rows if site is None or a.covers(site.id)]


def check(site, actor=ACTOR, **data):
    return service.record_check(site, {"methods": [], "strips": {}, "components": [], **data},
                                actor=actor, now=NOW)


def actions(entity_id=None):
    query = db.select(AuditEvent.action).where(AuditEvent.entity == "drug_alert")
    if entity_id is not None:
        query = query.where(AuditEvent.entity_id == str(entity_id))
    return list(db.session.execute(query.order_by(AuditEvent.id)).scalars())


# --- Overdose clusters ----------------------------------------------------------------------


def test_three_overdoses_within_a_day_draft_one_advisory_that_grows(app):
    site = make_site(name="East")
    overdoses(site, NOW - timedelta(hours=20), NOW - timedelta(hours=3))
    service.scan(now=NOW)
    assert advisories(site) == []  # two is no cluster
    overdoses(site, NOW - timedelta(minutes=5))
    service.scan(now=NOW)
    [advisory] = advisories(site)
    assert advisory.status == "draft" and advisory.cluster_count == 3
    assert advisory.title == "SRS - Overdose Advisory - East - 2026-12-07"
    assert advisory.site_ids == [site.id] and advisory.drafted_by is None
    service.scan(now=NOW + timedelta(minutes=2))  # nothing new: the same draft, untouched
    assert len(advisories(site)) == 1 and advisories(site)[0].cluster_count == 3
    # A fourth overdose grows the same cluster; so do two more the next morning, though the
    # first ones have left the window.
    overdoses(site, NOW + timedelta(hours=2))
    service.scan(now=NOW + timedelta(hours=2, minutes=1))
    overdoses(site, NOW + timedelta(hours=20), NOW + timedelta(hours=22))
    service.scan(now=NOW + timedelta(hours=22, minutes=1))
    [advisory] = advisories(site)
    assert advisory.cluster_count == 6
    assert advisory.last_overdose_at == NOW + timedelta(hours=22)
    assert "6 overdoses" in advisory.effects
    assert actions(advisory.id).count("drug_alert_cluster_grew") == 2


def test_a_cluster_another_scan_drafted_a_moment_before_is_not_a_failure(app, monkeypatch):
    """Two scans at once (the scheduler's, and one run by hand) find the same cluster; the
    second did not yet see the first's draft and used to fail on the cluster's unique key."""
    site = make_site()
    overdoses(site, NOW - timedelta(hours=3), NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    service.scan(now=NOW)
    (first,) = advisories(site)
    monkeypatch.setattr(service, "_cluster_draft", lambda key: None)  # not yet seen
    assert service.scan(now=NOW + timedelta(minutes=2)) == 0
    monkeypatch.undo()
    assert [a.id for a in advisories(site)] == [first.id]
    assert actions(first.id) == ["drug_alert_drafted"]


def test_a_cluster_after_a_quiet_spell_is_a_new_advisory(app):
    site = make_site()
    overdoses(site, NOW - timedelta(hours=2), NOW - timedelta(hours=1), NOW)
    service.scan(now=NOW)
    later = NOW + timedelta(days=5)
    overdoses(site, later - timedelta(hours=2), later - timedelta(hours=1), later)
    service.scan(now=later)
    assert [a.cluster_count for a in advisories(site)] == [3, 3]


def test_the_sites_own_threshold_and_window(app):
    site = make_site(cluster_overdoses=2, cluster_window_seconds=3600)
    overdoses(site, NOW - timedelta(hours=2), NOW)  # two, but two hours apart
    service.scan(now=NOW)
    assert advisories(site) == []
    overdoses(site, NOW - timedelta(minutes=30))
    service.scan(now=NOW)
    assert advisories(site)[0].cluster_count == 2


def test_other_emergencies_are_no_overdoses(app):
    site = make_site()
    overdoses(site, NOW - timedelta(hours=2), NOW - timedelta(hours=1), NOW, kind="other")
    service.scan(now=NOW)
    assert advisories(site) == []


def test_a_day_above_twice_the_trailing_median_drafts_an_advisory(app):
    # One overdose a day for four weeks: the median is 1. A window too short to cluster.
    site = make_site(cluster_window_seconds=600)
    overdoses(site, *(NOW - timedelta(days=d) for d in range(1, 29)))
    overdoses(site, NOW - timedelta(hours=3), NOW - timedelta(hours=2))
    service.scan(now=NOW)
    assert advisories(site) == []  # two is not above twice one
    overdoses(site, NOW - timedelta(hours=1))
    service.scan(now=NOW)
    [advisory] = advisories(site)
    assert advisory.cluster_key.endswith(":trend:20261207") and advisory.cluster_count == 3
    overdoses(site, NOW - timedelta(minutes=1))
    service.scan(now=NOW)
    assert [a.cluster_count for a in advisories(site)] == [4]


def test_the_trend_factor_is_the_sites(app):
    site = make_site(cluster_window_seconds=600, cluster_trend_factor=3.0)
    overdoses(site, *(NOW - timedelta(days=d) for d in range(1, 29)))
    overdoses(site, NOW - timedelta(hours=3), NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    service.scan(now=NOW)
    assert advisories(site) == []


def test_the_organisation_clusters_across_its_sites_with_its_own_threshold(app):
    east, west, north = make_site(name="East"), make_site(name="West"), make_site(name="North")
    # Two at each site: no site reaches 3, the organisation (5) does at the fifth.
    overdoses(east, NOW - timedelta(hours=5), NOW - timedelta(hours=4))
    overdoses(west, NOW - timedelta(hours=3), NOW - timedelta(hours=2))
    service.scan(now=NOW)
    assert advisories() == []
    overdoses(north, NOW - timedelta(hours=1))
    service.scan(now=NOW)
    [advisory] = advisories()
    assert advisory.scope == "organisation" and advisory.site_id is None
    assert advisory.site_ids == [east.id, west.id, north.id]
    assert advisory.title == "SRS - Overdose Advisory - All sites - 2026-12-07"
    overdoses(north, NOW - timedelta(minutes=30))
    service.scan(now=NOW)
    assert [a.cluster_count for a in advisories()] == [6]
    # Every covered site sees it on its list.
    assert service.alerts_for(west) == [advisory]


def test_the_organisations_thresholds_come_from_its_settings(app):
    app.config["SRS_ORG_CLUSTER_OVERDOSES"] = 3
    app.config["SRS_ORGANISATION_NAME"] = "Fraser Health"
    try:
        east, west = make_site(name="East"), make_site(name="West")
        overdoses(east, NOW - timedelta(hours=5), NOW - timedelta(hours=4))
        overdoses(west, NOW - timedelta(hours=3))
        service.scan(now=NOW)
        [advisory] = advisories()
        assert advisory.title.startswith("Fraser Health - Overdose Advisory - All sites")
    finally:
        del app.config["SRS_ORG_CLUSTER_OVERDOSES"], app.config["SRS_ORGANISATION_NAME"]


def test_the_organisation_trend_rule(app):
    east, west = make_site(cluster_window_seconds=600), make_site(cluster_window_seconds=600)
    for site in (east, west):
        overdoses(site, *(NOW - timedelta(days=d, hours=1) for d in range(1, 29)))
    # The organisation's day: 2 a day usually (median 2); 5 in the last 24 h, spread out.
    overdoses(east, *(NOW - timedelta(hours=h) for h in (1, 6, 11)))
    overdoses(west, *(NOW - timedelta(hours=h) for h in (16, 21)))
    app.config["SRS_ORG_CLUSTER_OVERDOSES"] = 50
    try:
        service.scan(now=NOW)
    finally:
        del app.config["SRS_ORG_CLUSTER_OVERDOSES"]
    [advisory] = [a for a in advisories() if a.scope == "organisation"]
    assert advisory.cluster_key == "org:trend:20261207" and advisory.cluster_count == 5


# --- The watch list -------------------------------------------------------------------------


@pytest.mark.parametrize("data, watched", [
    ({"strips": {"nitazene": "positive"}, "methods": ["nitazene_strip"]}, "Nitazenes"),
    ({"strips": {"xylazine": "positive"}}, "Xylazine"),
    ({"components": [{"substance": "Medetomidine", "uncertain": True, "percent": None}]},
     "Medetomidine"),
    ({"components": [{"substance": "Carfentanil", "uncertain": False, "percent": 2}]},
     "Carfentanil"),
    ({"expected": "Heroin", "strips": {"benzodiazepine": "positive"}},
     "Benzodiazepines in an expected opioid"),
    ({"expected": "Fentanyl", "components": [
        {"substance": "Bromazolam", "uncertain": False, "percent": 10}]},
     "Benzodiazepines in an expected opioid"),
    ({"expected": "Cocaine", "strips": {"fentanyl": "positive"}},
     "Fentanyl in an expected stimulant"),
    ({"expected": "Methamphetamine", "components": [
        {"substance": "Fentanyl", "uncertain": False, "percent": 5}]},
     "Fentanyl in an expected stimulant"),
])
def test_a_finding_on_the_watch_list_drafts_one_drug_alert(app, data, watched):
    site = make_site(name="East")
    recorded = check(site, area="Downtown", colour="blue", form="powder", **data)
    alert = db.session.scalar(db.select(DrugAlert).where(
        DrugAlert.drug_check_id == recorded.id))
    assert alert is not None and alert.status == "draft" and alert.kind == "drug_alert"
    assert watched in alert.found
    assert alert.title == "SRS - Drug Alert - Downtown - 2026-12-07"
    assert alert.appearance == "blue, Powder"
    assert alert.evidence == ("ftir" if data.get("components") else "strip")
    # Drafting again for the same check gives the same alert.
    assert service.draft_from_check(recorded, site, now=NOW).id == alert.id
    assert db.session.scalar(db.select(db.func.count(DrugAlert.id))) == 1


@pytest.mark.parametrize("data", [
    {"expected": "Heroin", "strips": {"fentanyl": "positive"}},  # fentanyl in an opioid
    {"expected": "Cocaine", "strips": {"benzodiazepine": "positive"}},  # not a rule
    {"expected": "Cocaine", "strips": {"fentanyl": "negative", "xylazine": "invalid"}},
    {"components": [{"substance": "Caffeine", "uncertain": False, "percent": 40}]},
])
def test_findings_off_the_watch_list_draft_nothing(app, data):
    recorded = check(make_site(), **data)
    assert recorded.drug_alert_id is None
    assert db.session.scalar(db.select(db.func.count(DrugAlert.id))) == 0


def test_the_watch_list_is_the_sites(app):
    site = make_site()
    service.add_watch_item(site, substance="Bromazolam", actor=ACTOR, now=NOW)
    with pytest.raises(Invalid):
        service.add_watch_item(site, substance="bromazolam", actor=ACTOR, now=NOW)
    recorded = check(site, expected="Cocaine", components=[
        {"substance": "Bromazolam", "uncertain": False, "percent": None}])
    assert recorded.drug_alert_id is not None
    xylazine = next(w for w in service.watch_list(site) if w.substance == "Xylazine")
    service.retire_watch_item(site, xylazine.id, actor=ACTOR, now=NOW)
    assert check(site, strips={"xylazine": "positive"}).drug_alert_id is None


def test_a_check_refuses_what_it_cannot_record(app):
    site = make_site()
    with pytest.raises(Invalid) as refused:
        check(site, expected="Tea", methods=["fentanyl_strip"], lab_status="received",
              components=[{"substance": "Sugar", "uncertain": False, "percent": None}])
    assert set(refused.value.errors) == {"expected", "strips", "components", "lab_result"}
    with pytest.raises(Invalid) as refused:
        check(site)
    assert "methods" in refused.value.errors
    first = check(site, sample_code="S-1", methods=["reagent"])
    with pytest.raises(Invalid) as refused:
        check(site, sample_code="S-1", methods=["reagent"])
    assert "sample_code" in refused.value.errors
    assert first.linked_overdose is False
    numbered = check(site, methods=["reagent"])
    assert numbered.sample_code == "20261207-001"
    assert check(site, methods=["reagent"]).sample_code == "20261207-002"


def test_a_check_links_to_an_overdose_of_its_own_site(app):
    site, other = make_site(), make_site()
    overdoses(site, NOW)
    overdoses(other, NOW)
    ours, theirs = db.session.execute(db.select(OverdoseResponse.id).order_by(
        OverdoseResponse.id)).scalars()
    linked = check(site, methods=["reagent"], overdose_response_id=ours, used_before=True)
    assert linked.linked_overdose and linked.used_before
    with pytest.raises(Invalid) as refused:
        check(site, methods=["reagent"], overdose_response_id=theirs)
    assert "overdose_response_id" in refused.value.errors


# --- The lifecycle --------------------------------------------------------------------------


def people(site):
    ann = make_staff(site, role="supervisor")
    bob = make_staff(site, role="supervisor")
    return Actor.of(ann), Actor.of(bob)


def test_a_second_person_validates_then_publish_retract(app):
    site = make_site()
    ann, bob = people(site)
    alert = service.create_alert(site, {"found": "Blue pills"}, actor=ann, now=NOW)
    with pytest.raises(Conflict, match="second person"):
        service.validate_alert(alert, site, actor=ann, now=NOW)
    with pytest.raises(Conflict, match="validated"):
        service.publish_alert(alert, site, actor=ann, now=NOW)
    service.validate_alert(alert, site, actor=bob, now=NOW)
    service.publish_alert(alert, site, actor=ann, now=NOW + timedelta(hours=1))
    assert alert.status == "published"
    assert alert.valid_until == NOW + timedelta(days=14, hours=1)
    service.retract_alert(alert, site, reason="Wrong batch", actor=bob, now=NOW)
    assert alert.status == "retracted" and alert.retract_reason == "Wrong batch"
    with pytest.raises(Conflict):
        service.retract_alert(alert, site, reason="Again", actor=bob, now=NOW)
    assert actions(alert.id) == ["drug_alert_drafted", "drug_alert_validated",
                                 "drug_alert_published", "drug_alert_retracted"]


def test_an_edit_needs_validating_again_and_not_by_the_editor(app):
    site = make_site()
    ann, bob = people(site)
    alert = service.create_alert(site, {"found": "Blue pills"}, actor=ann, now=NOW)
    service.validate_alert(alert, site, actor=bob, now=NOW)
    service.update_alert(alert, site, {"area": "Harbour"}, actor=bob, now=NOW)
    assert alert.status == "draft" and alert.validated_by is None
    assert " - Harbour - " in alert.title
    with pytest.raises(Conflict, match="second person"):
        service.validate_alert(alert, site, actor=bob, now=NOW)
    carl = Actor.of(make_staff(site, role="admin"))
    service.validate_alert(alert, site, actor=carl, now=NOW)
    assert alert.status == "validated" and alert.validated_by == carl.staff_id


def test_an_alert_srs_drafted_is_published_by_someone_other_than_its_validator(app):
    """Two people sign for every published alert: a watch-list draft validated by one
    supervisor waits for a second to publish it; an edit by another counts as a signature."""
    site = make_site()
    ann, bob = people(site)
    drafted = check(site, expected="Heroin", strips={"benzodiazepine": "positive"})
    alert = db.session.get(DrugAlert, drafted.drug_alert_id)
    assert alert.drafted_by is None
    service.validate_alert(alert, site, actor=ann, now=NOW)
    assert not service.may_publish(alert, ann.staff_id)
    with pytest.raises(Conflict, match="second person must publish"):
        service.publish_alert(alert, site, actor=ann, now=NOW)
    assert alert.status == "validated" and "drug_alert_published" not in actions(alert.id)
    service.publish_alert(alert, site, actor=bob, now=NOW)
    assert (alert.status, alert.validated_by, alert.published_by) == (
        "published", ann.staff_id, bob.staff_id)

    # Edited by one, validated and published by the other: two signatures already.
    other = check(site, sample_code="S-2", strips={"xylazine": "positive"})
    alert = db.session.get(DrugAlert, other.drug_alert_id)
    service.update_alert(alert, site, {"urgent": True}, actor=ann, now=NOW)
    service.validate_alert(alert, site, actor=bob, now=NOW)
    service.publish_alert(alert, site, actor=bob, now=NOW)
    assert alert.status == "published"


def test_published_alerts_expire_and_renew(app):
    site = make_site(alert_valid_for_days=3)
    ann, bob = people(site)
    alert = service.create_alert(site, {"found": "Blue pills"}, actor=ann, now=NOW)
    service.validate_alert(alert, site, actor=bob, now=NOW)
    service.publish_alert(alert, site, actor=bob, now=NOW)
    service.scan(now=NOW + timedelta(days=2))
    assert alert.status == "published"
    service.renew_alert(alert, site, actor=ann, now=NOW + timedelta(days=2))
    assert alert.valid_until == NOW + timedelta(days=6)
    service.scan(now=NOW + timedelta(days=6))
    assert alert.status == "expired"
    with pytest.raises(Conflict):
        service.update_alert(alert, site, {"area": "Harbour"}, actor=ann, now=NOW)
    service.renew_alert(alert, site, actor=ann, now=NOW + timedelta(days=7))
    assert alert.status == "published" and alert.valid_until == NOW + timedelta(days=10)
    assert actions(alert.id)[-3:] == ["drug_alert_renewed", "drug_alert_expired",
                                      "drug_alert_renewed"]


# --- The API --------------------------------------------------------------------------------


@pytest.fixture
def api(client):
    site = make_site(slug="east", name="East")
    people = {who: make_staff(site, role=role, username=name) for who, name, role in (
        ("nurse", "nina", "nurse"), ("drug_checker", "dana", "drug_checker"),
        ("supervisor", "sam", "supervisor"), ("supervisor2", "sue", "supervisor"),
        ("reviewer", "rita", "reviewer"))}
    headers = {who: bearer(person) for who, person in people.items()}

    class Api:
        def __init__(self):
            self.site = site

        def post(self, path, json=None, who="nurse"):
            return client.post(f"/api/v1/sites/{site.id}{path}", json=json, headers=headers[who])

        def get(self, path, who="nurse"):
            return client.get(f"/api/v1/sites/{site.id}{path}", headers=headers[who])

    return Api()


def test_api_records_and_lists_checks(api):
    body = {"sample_code": "A-7", "expected": "Heroin", "colour": "grey", "form": "powder",
            "methods": ["benzodiazepine_strip", "ftir"], "strips": {"benzodiazepine": "positive"},
            "components": [{"substance": "Fentanyl", "percent": 12},
                           {"substance": "Bromazolam", "uncertain": True}],
            "used_before": False}
    made = api.post("/drug-checks", body, who="drug_checker")
    assert made.status_code == 201, made.get_json()
    check = made.get_json()
    assert check["strips"]["benzodiazepine"] == "positive" and check["drug_alert_id"]
    assert [c["substance"] for c in check["components"]] == ["Fentanyl", "Bromazolam"]
    assert_api_error(api.post("/drug-checks", {**body, "sample_code": "A-8",
                                               "expected": "Tea"}), 422, "expected")
    assert_api_error(api.post("/drug-checks", {"methods": ["smell"]}), 422, "methods")
    assert_api_error(api.post("/drug-checks", {"components": [
        {"substance": "Fentanyl", "percent": 140}], "methods": ["ftir"]}), 422, "components")
    assert_api_error(api.post("/drug-checks", {"methods": ["reagent"]}, who="reviewer"), 403)
    listed = api.get("/drug-checks", who="drug_checker").get_json()
    assert [c["sample_code"] for c in listed] == ["A-7"]


def test_api_alert_lifecycle_and_refusals(api, app, socket_client, auth):
    made = api.post("/drug-alerts", {"kind": "drug_alert", "area": "Harbour",
                                     "found": "Xylazine in heroin", "advice": ["not_alone"],
                                     "audience": "public", "urgent": True}, who="supervisor")
    assert made.status_code == 201, made.get_json()
    alert = made.get_json()
    assert alert["status"] == "draft" and alert["evidence"] == "reported"
    assert alert["title"].startswith("SRS - Drug Alert - Harbour - ")
    path = f"/drug-alerts/{alert['id']}"
    refused = assert_api_error(api.post(f"{path}/validate", who="supervisor"), 409)
    assert "second person" in refused["message"]
    assert_api_error(api.post(f"{path}/publish", who="supervisor"), 409)
    assert_api_error(api.post(f"{path}/validate", who="nurse"), 403)
    assert_api_error(api.post("/drug-alerts", {"kind": "rumour"}, who="supervisor"), 422, "kind")
    # Nurses see published alerts only.
    assert api.get("/drug-alerts").get_json() == []
    assert [a["id"] for a in api.get("/drug-alerts", who="supervisor").get_json()] == [
        alert["id"]]
    validated = api.post(f"{path}/validate", who="supervisor2")
    assert validated.status_code == 200 and validated.get_json()["status"] == "validated"

    auth.login("nina")
    screen = socket_client()
    screen.get_received()
    published = api.post(f"{path}/publish", who="supervisor")
    assert published.status_code == 200, published.get_json()
    assert published.get_json()["valid_until"]
    events = [e["args"][0] for e in screen.get_received() if e["name"] == "drug_alert"]
    assert events == [{"id": alert["id"], "site_ids": [api.site.id], "kind": "drug_alert",
                       "title": published.get_json()["title"], "evidence": "reported",
                       "published_at": datetime.fromisoformat(
                           published.get_json()["published_at"]).replace(
                           microsecond=0).isoformat()}]
    assert [a["id"] for a in api.get("/drug-alerts").get_json()] == [alert["id"]]
    assert_api_error(api.post(f"{path}/retract", {}, who="supervisor"), 422, "reason")
    retracted = api.post(f"{path}/retract", {"reason": "Lab found no xylazine"},
                         who="supervisor2")
    assert retracted.get_json()["status"] == "retracted"
    assert_api_error(api.post(f"{path}/retract", {"reason": "Again"}, who="supervisor"), 409)
    assert_api_error(api.post("/drug-alerts/999999/validate", who="supervisor"), 404)


# --- The pages ------------------------------------------------------------------------------


def test_a_nurse_records_a_check_from_the_page_and_sees_the_drafted_alert(app, client, auth):
    site = make_site(slug="east", name="East")
    make_staff(site, role="nurse", username="nina")
    auth.login("nina")
    page = client.get("/sites/east/drug-checks")
    assert page.status_code == 200 and b"Record a check" in page.data
    done = auth.post("/sites/east/drug-checks", {
        "sample_type": "substance", "expected": "Heroin", "strip-fentanyl": "positive",
        "strip-benzodiazepine": "positive", "colour": "grey", "area": "Harbour"},
        follow_redirects=True)
    assert done.status_code == 200
    text = done.get_data(as_text=True)
    assert 'data-testid="check-recorded"' in text and "a drug alert was drafted" in text
    recorded = db.session.scalar(db.select(DrugCheck))
    assert recorded.methods == ["fentanyl_strip", "benzodiazepine_strip"]
    assert recorded.recorded_by is not None and recorded.area == "Harbour"


def test_the_check_form_keeps_what_was_typed_and_says_what_is_wrong(app, client, auth):
    site = make_site(slug="east")
    make_staff(site, role="drug_checker", username="dana")
    auth.login("dana")
    refused = auth.post("/sites/east/drug-checks", {
        "expected": "Tea", "colour": "pink", "methods": "lab", "lab_status": "received"})
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "site&#39;s list" in field_error(text, "expected")
    assert "lab&#39;s result" in field_error(text, "lab_result")
    assert 'name="colour" maxlength="40" value="pink"' in text
    refused = auth.post("/sites/east/drug-checks", {
        "comp-0-substance": "Fentanyl", "comp-0-percent": "140", "area": "Harbour"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "Component 1: A share from 0 to 100." in field_error(text, "components")
    assert 'value="Harbour"' in text and 'value="140"' in text
    assert db.session.scalar(db.select(db.func.count(DrugCheck.id))) == 0


def test_the_drafter_cannot_validate_on_the_alert_page_and_a_second_person_can(
        app, client, auth):
    site = make_site(slug="east", name="East")
    make_staff(site, role="supervisor", username="ann")
    make_staff(site, role="admin", username="bob")
    auth.login("ann")
    made = auth.post("/sites/east/drug-alerts", {"kind": "drug_alert", "area": "Harbour",
                                                 "found": "Pink powder sold as heroin"})
    assert made.status_code == 303
    url = made.headers["Location"]
    page = client.get(url).get_data(as_text=True)
    assert 'data-testid="validate"' not in page and 'data-testid="validate-refused"' in page
    refused = auth.post(f"{url}/validate")
    assert refused.status_code == 409
    assert "a second person must validate it" in refused.get_data(as_text=True)
    bad = auth.post(f"{url}/edit", {"area": "Harbour", "valid_for_days": "900",
                                    "evidence": "reported", "audience": "staff",
                                    "effects": "Long sleep"})
    assert bad.status_code == 422
    assert "365" in field_error(bad.get_data(as_text=True), "valid_for_days")
    assert "Long sleep" in bad.get_data(as_text=True)
    auth.logout()

    auth.login("bob")
    assert 'data-testid="validate"' in client.get(url).get_data(as_text=True)
    assert auth.post(f"{url}/validate").status_code == 303
    assert auth.post(f"{url}/publish").status_code == 303
    page = client.get(url).get_data(as_text=True)
    assert 'data-testid="renew"' in page and "Published" in page
    listing = client.get("/sites/east/drug-alerts").get_data(as_text=True)
    assert "SRS - Drug Alert - Harbour - " in listing
    retract = auth.post(f"{url}/retract", {"reason": ""})
    assert retract.status_code == 422
    assert auth.post(f"{url}/retract", {"reason": "Lab says heroin"}).status_code == 303
    assert db.session.scalar(db.select(DrugAlert.status)) == "retracted"


def test_the_page_offers_publishing_an_srs_draft_to_a_second_person_only(app, client, auth):
    site = make_site(slug="east", name="East")
    make_staff(site, role="supervisor", username="ann")
    make_staff(site, role="admin", username="bob")
    drafted = check(site, expected="Heroin", strips={"benzodiazepine": "positive"})
    url = f"/sites/east/drug-alerts/{drafted.drug_alert_id}"
    auth.login("ann")
    assert auth.post(f"{url}/validate").status_code == 303
    page = client.get(url).get_data(as_text=True)
    assert 'data-testid="publish"' not in page and 'data-testid="publish-refused"' in page
    refused = auth.post(f"{url}/publish")
    assert refused.status_code == 409
    assert "a second person must publish it" in refused.get_data(as_text=True)
    auth.logout()
    auth.login("bob")
    assert 'data-testid="publish"' in client.get(url).get_data(as_text=True)
    assert auth.post(f"{url}/publish").status_code == 303
    assert db.session.scalar(db.select(DrugAlert.status)) == "published"


def test_a_drug_checker_is_offered_only_what_they_may_open(app, client, auth):
    site = make_site(slug="east")
    make_staff(site, role="drug_checker", username="dana")
    auth.login("dana")
    home = client.get("/").get_data(as_text=True)
    assert 'data-testid="drug-checks-link"' in home
    assert 'data-testid="drug-alerts-link"' not in home
    page = client.get("/sites/east/drug-checks").get_data(as_text=True)
    assert 'data-testid="incidents-link"' not in page  # the incident pages refuse them
    assert 'action="/sites/east/drug-checks/watch"' not in page
    assert client.get("/sites/east/drug-alerts").status_code == 403
