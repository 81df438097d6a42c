"""A published drug alert's reach beyond the screens: its poster and short text, the SMS
outbox (subscribers by hashed number, JOIN and STOP, the gateway's own token, the send
command against a local fake gateway), anonymous bad-batch reports, and the reviewers'
figures."""

import json
import re
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import csrf_token
from factories import ACTOR, make_site, make_staff
from routes import assert_api_error, bearer, field_error

from srs.audit.models import AuditEvent
from srs.auth.service import Actor
from srs.booths import service as floor_service
from srs.drugchecks import outbox, service
from srs.drugchecks.inbound import receive_text
from srs.drugchecks.models import ADVICE, DrugAlert
from srs.drugchecks.outbox import OutboxMessage
from srs.drugchecks.poster import short_text
from srs.drugchecks.reports import monthly_figures
from srs.extensions import db
from srs.incidents import packets

NOW = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
CLIENT_CODE = "F-SECR-1990"
NUMBERS = {"east": "+15550100001", "everywhere": "+15550100002", "west": "+15550100003",
           "stopped": "+15550100004"}


def published(site, *, audience="public", **fields):
    """A drug alert of ``site`` drafted by SRS, validated and published by two people."""
    alert = service.create_alert(site, {"found": "Nitazene (FTIR)", "area": "Downtown",
                                        "expected": "Heroin", "advice": ["not_alone",
                                                                         "carry_naloxone"],
                                        "audience": audience, **fields}, actor=ACTOR, now=NOW)
    return signed(alert, site)


def signed(alert, site):
    """``alert`` validated by one supervisor and published by another."""
    first, second = make_staff(site, role="supervisor"), make_staff(site, role="supervisor")
    service.validate_alert(alert, site, actor=Actor.of(first), now=NOW)
    return service.publish_alert(alert, site, actor=Actor.of(second), now=NOW)


def messages(alert=None):
    query = db.select(OutboxMessage).order_by(OutboxMessage.id)
    if alert is not None:
        query = query.where(OutboxMessage.drug_alert_id == alert.id)
    return list(db.session.execute(query).scalars())


def texts(sender, text, now=NOW):
    return receive_text(sender, text, now=now)


@pytest.fixture
def east_west(app):
    east, west = make_site(name="East", slug="east"), make_site(name="West", slug="west")
    texts(NUMBERS["east"], "JOIN east")
    texts(NUMBERS["everywhere"], "join")
    texts(NUMBERS["west"], "JOIN West")
    texts(NUMBERS["stopped"], "JOIN east")
    texts(NUMBERS["stopped"], "STOP")
    return east, west


def gateway_headers():
    return {"Authorization": "Bearer " + outbox.new_gateway_token(actor=ACTOR, now=NOW)}


# --- The poster and the short text -----------------------------------------------------------


def test_the_poster_has_the_title_and_what_to_do_and_no_client_code(app, client, auth,
                                                                    output_dir):
    site = make_site(name="East", slug="east")
    nurse = make_staff(site, role="nurse", username="nina")
    visit = floor_service.check_in(site, code=CLIENT_CODE, handle=None, actor=ACTOR,
                                   actor_roles={"nurse"}, now=NOW)
    checked = service.record_check(site, {
        "visit_id": visit.id, "area": "Downtown", "expected": "Heroin", "colour": "Purple",
        "form": "powder", "methods": ["ftir"], "strips": {},
        "components": [{"substance": "Nitazene", "percent": 4}]}, actor=ACTOR, now=NOW)
    alert = db.session.get(DrugAlert, checked.drug_alert_id)
    service.update_alert(alert, site, {"effects": "Deep sedation, slow breathing"},
                         actor=ACTOR, now=NOW)
    signed(alert, site)

    auth.login("nina")
    response = client.get(f"/sites/east/drug-alerts/{alert.id}/poster.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    pdf = output_dir / "poster.pdf"
    pdf.write_bytes(response.data)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "DRUG ALERT" in text
    assert " ".join(alert.title.split()) in " ".join(text.split())
    for words in ("Nitazene", "Deep sedation", "Don't use alone", "Valid until",
                  "Monday 21 December 2026", "/report-a-bad-batch"):
        assert words in text, words
    assert CLIENT_CODE not in text and checked.sample_code not in text
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert re.search(r"^Pages:\s+1$", pages, re.M), pages
    if shutil.which("pdftoppm"):  # what a person looks at: one A4 page
        subprocess.run(["pdftoppm", "-png", "-r", "50", "-singlefile", str(pdf),
                        str(output_dir / "poster")], check=True)

    # The API gives the same poster to anyone at the site.
    api = client.get(f"/api/v1/sites/{site.id}/drug-alerts/{alert.id}/poster",
                     headers=bearer(nurse))
    assert api.status_code == 200 and api.data.startswith(b"%PDF")


def test_a_poster_with_much_to_say_stays_on_one_page(app, client, output_dir):
    site = make_site(name="East", slug="east")
    alert = published(site, found="Nitazene and xylazine in grey rock sold as heroin. " * 12,
                      effects="Long sedation, wounds, slow breathing after one hit. " * 12,
                      appearance="Grey rock, " * 15, packaging="Blue baggie, stamp " * 8,
                      advice=list(ADVICE), advice_text="Ask staff about checking. " * 12)
    response = client.get(f"/api/v1/sites/{site.id}/drug-alerts/{alert.id}/poster",
                          headers=bearer(make_staff(site, role="nurse")))
    pdf = output_dir / "crowded.pdf"
    pdf.write_bytes(response.data)
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert re.search(r"^Pages:\s+1$", pages, re.M), pages
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-singlefile", str(pdf),
                    str(output_dir / "crowded")], check=True)


def test_a_drafts_poster_is_a_preview_for_those_who_publish_only(app, client):
    site = make_site(name="East", slug="east")
    draft = service.create_alert(site, {"found": "Blue pills"}, actor=ACTOR, now=NOW)
    url = f"/api/v1/sites/{site.id}/drug-alerts/{draft.id}/poster"
    assert_api_error(client.get(url, headers=bearer(make_staff(site, role="nurse"))), 404)
    assert client.get(url, headers=bearer(make_staff(site, role="supervisor"))).status_code \
        == 200


def test_the_short_text_fits_one_sms_and_leads_with_the_key_advice(app, client, auth):
    site = make_site(name="East Side Community Health Centre", slug="east")
    alert = service.create_alert(site, {
        "area": "Downtown Eastside and the whole of Strathcona",
        "found": "Nitazene and xylazine found in samples sold as heroin; " * 6,
        "advice": ["carry_naloxone", "naloxone_may_not_reverse"]}, actor=ACTOR, now=NOW)
    text = short_text(alert)
    assert len(text) <= 160
    assert text.startswith("Drug Alert - Downtown Eastside")
    assert "Naloxone may not reverse it" in text  # the advice that saves a life comes first
    assert "SRS" not in text  # the organisation's name is the title's, not the text's

    auth.login(make_staff(site, role="supervisor").username)
    page = client.get(f"/sites/east/drug-alerts/{alert.id}").get_data(as_text=True)
    assert 'data-testid="short-text"' in page and "Naloxone may not reverse it" in page
    assert f"/sites/east/drug-alerts/{alert.id}/poster.pdf" in page


# --- The outbox ---------------------------------------------------------------------------


def test_a_public_alert_queues_one_text_per_subscriber_of_its_sites(east_west):
    east, _west = east_west
    alert = published(east)
    queued = messages(alert)
    by_number = {outbox.decrypt_number(m.subscriber.number_encrypted) for m in queued}
    assert by_number == {NUMBERS["east"], NUMBERS["everywhere"]}  # not West's, not STOP'd
    assert {m.body for m in queued} == {short_text(alert)}
    assert all(m.status == "queued" for m in queued)

    # Renewing (as publishing again would) queues nobody twice.
    service.renew_alert(alert, east, actor=ACTOR, now=NOW + timedelta(days=1))
    assert outbox.queue_for_alert(alert, now=NOW + timedelta(days=1)) == 0
    assert len(messages(alert)) == 2
    # A subscriber who joins later gets the alerts published from then on.
    texts("+15550100009", "JOIN east")
    assert outbox.queue_for_alert(alert, now=NOW) == 1


def test_a_staff_alert_texts_nobody(east_west):
    east, _west = east_west
    assert messages(published(east, audience="staff")) == []


def test_stop_cancels_what_is_queued_and_erases_the_number(east_west):
    east, _west = east_west
    alert = published(east)
    assert texts(NUMBERS["east"], "stop").startswith("You will get no more")
    row = outbox.subscriber_for(NUMBERS["east"])
    assert row.stopped_at is not None and row.number_encrypted is None
    assert sorted(m.status for m in messages(alert)) == ["cancelled", "queued"]
    second = published(east)
    assert [m.subscriber_id for m in messages(second)] != [row.id]
    assert row.id not in {m.subscriber_id for m in messages(second)}


def test_a_retracted_alert_sends_nothing_more(east_west):
    east, _west = east_west
    alert = published(east)
    service.retract_alert(alert, east, reason="Wrong batch", actor=ACTOR, now=NOW)
    assert {m.status for m in messages(alert)} == {"cancelled"}


def test_numbers_are_kept_only_hashed_and_encrypted(east_west, caplog):
    east, _west = east_west
    published(east)
    tables = ("sms_subscriber", "sms_outbox_message", "audit_event", "drug_alert")
    dumped = " ".join(str(row) for table in tables
                      for row in db.session.execute(db.text(f"SELECT * FROM {table}")))
    for number in NUMBERS.values():
        assert number not in dumped and number.lstrip("+") not in dumped
    assert number not in caplog.text
    row = outbox.subscriber_for(NUMBERS["everywhere"])
    assert len(row.number_hash) == 64 and row.number_encrypted.startswith("gAAAA")
    # The hash is keyed with the app's secret: a plain SHA-256 of the number is not it.
    import hashlib
    assert row.number_hash != hashlib.sha256(NUMBERS["everywhere"].encode()).hexdigest()


def test_join_names_a_site_or_says_which_there_are(app):
    make_site(name="East", slug="east")
    reply = texts("+15550100005", "JOIN Narnia")
    assert "No site is called Narnia" in reply and "East" in reply
    assert outbox.subscriber_for("+15550100005") is None
    assert "every site" in texts("+1 (555) 010-0005", "JOIN")
    assert outbox.subscriber_for("+15550100005").all_sites


# --- The gateway ------------------------------------------------------------------------------


def test_the_gateway_pulls_with_its_own_token_and_marks_what_it_sent(east_west, client):
    east, _west = east_west
    alert = published(east)
    staff = make_staff(east, role="admin")
    assert_api_error(client.get("/api/v1/sms/outbox"), 401)
    assert_api_error(client.get("/api/v1/sms/outbox", headers=bearer(staff)), 403)
    old = gateway_headers()
    headers = gateway_headers()  # a new token: the old one stops working
    assert_api_error(client.get("/api/v1/sms/outbox", headers=old), 401)

    pulled = client.get("/api/v1/sms/outbox", headers=headers).get_json()
    assert {m["to"] for m in pulled} == {NUMBERS["east"], NUMBERS["everywhere"]}
    assert all(m["body"] == short_text(alert) and len(m["body"]) <= 160 for m in pulled)
    marked = client.post("/api/v1/sms/outbox/sent", headers=headers,
                         json={"ids": [pulled[0]["id"]]})
    assert marked.get_json() == {"marked": 1}
    assert [m["id"] for m in client.get("/api/v1/sms/outbox", headers=headers).get_json()] \
        == [pulled[1]["id"]]


def test_the_gateway_token_command_prints_it_once_and_keeps_its_hash(app, runner):
    result = runner.invoke(args=["srs", "alerts", "gateway-token"])
    assert result.exit_code == 0, result.output
    raw = result.output.strip()
    assert raw.startswith("srsgw_") and outbox.gateway_token_valid(raw)
    kept = db.session.execute(db.select(outbox.GatewayToken)).scalars().all()
    assert raw not in {t.token_hash for t in kept}


def test_inbound_texts_need_the_gateway_token(app, client):
    site = make_site(name="East", slug="east")
    body = {"from": "+15550100006", "text": "JOIN east"}
    assert_api_error(client.post("/api/v1/sms/inbound", json=body), 401)
    assert_api_error(client.post("/api/v1/sms/inbound", json=body,
                                 headers=bearer(make_staff(site))), 403)
    answer = client.post("/api/v1/sms/inbound", json=body, headers=gateway_headers())
    assert answer.status_code == 200
    assert answer.get_json()["reply"] == "You will get drug alerts for East. Text STOP to end."
    assert outbox.subscriber_for("+15550100006").site_ids == [site.id]
    assert_api_error(client.post("/api/v1/sms/inbound", headers=gateway_headers(),
                                 json={"from": "not a number", "text": "JOIN"}), 422, "from")


def test_an_od_text_is_an_anonymous_report_for_the_site_it_names(app):
    make_site(name="East", slug="east")
    west = make_site(name="West", slug="west")
    reply = texts("+15550100007", "OD west grey rock sold as crack, friend went blue")
    assert reply.startswith("Thank you")
    [draft] = db.session.execute(db.select(DrugAlert)).scalars().all()
    assert draft.site_ids == [west.id] and draft.status == "draft"
    assert draft.evidence == "reported" and draft.drafted_by is None
    assert draft.effects == "grey rock sold as crack, friend went blue"
    # The sender is not kept with it, nor subscribed.
    assert outbox.subscriber_for("+15550100007") is None


class FakeGateway:
    """A gateway on 127.0.0.1 that takes every batch POSTed to it."""

    def __init__(self):
        self.batches, self.headers = [], []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                gateway.batches.append(json.loads(self.rfile.read(length)))
                gateway.headers.append(dict(self.headers))
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_send_command_posts_the_queued_texts_to_the_gateway(east_west, runner):
    east, _west = east_west
    alert = published(east)
    gateway = FakeGateway()
    try:
        result = runner.invoke(args=["srs", "alerts", "send", "--url", gateway.url,
                                     "--token", "gw-secret"])
    finally:
        gateway.close()
    assert result.exit_code == 0, result.output
    assert result.output == "Sent 2 messages.\n"
    [batch] = gateway.batches
    assert {m["to"] for m in batch["messages"]} == {NUMBERS["east"], NUMBERS["everywhere"]}
    assert {m["body"] for m in batch["messages"]} == {short_text(alert)}
    assert gateway.headers[0]["Authorization"] == "Bearer gw-secret"
    db.session.expire_all()
    assert {m.status for m in messages(alert)} == {"sent"}
    for number in NUMBERS.values():
        assert number not in result.output


def test_the_send_command_keeps_them_queued_when_the_gateway_is_down(east_west, runner):
    east, _west = east_west
    alert = published(east)
    gateway = FakeGateway()
    gateway.close()  # nobody listens there now
    result = runner.invoke(args=["srs", "alerts", "send", "--url", gateway.url])
    assert result.exit_code != 0 and "could not be reached" in result.output
    db.session.expire_all()
    assert {m.status for m in messages(alert)} == {"queued"}


# --- Anonymous reports --------------------------------------------------------------------


REPORT = {"site": "east", "occurred_on": "2026-12-06", "area": "Main and Hastings",
          "appearance": "Grey rock", "packaging": "Blue baggie", "sold_as": "Crack",
          "what_happened": "Friend went blue after one hit"}


def test_anyone_can_report_a_bad_batch_without_signing_in(app, client):
    site = make_site(name="East", slug="east")
    page = client.get("/report-a-bad-batch")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Report a bad batch" in body and "East" in body
    for identity in ("username", "password", "phone", "email", "client_code"):  # none asked
        assert f'name="{identity}"' not in body

    bad = client.post("/report-a-bad-batch", data={**REPORT, "what_happened": "",
                                                  "csrf_token": csrf_token(client)})
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert field_error(text, "what_happened") == "Say what happened."
    assert 'value="Grey rock"' in text  # what was typed is kept

    sent = client.post("/report-a-bad-batch", data={**REPORT, "csrf_token": csrf_token(client)})
    assert sent.status_code == 303
    assert "Thank you" in client.get(sent.headers["Location"]).get_data(as_text=True)
    [draft] = db.session.execute(db.select(DrugAlert)).scalars().all()
    assert (draft.status, draft.evidence, draft.audience) == ("draft", "reported", "staff")
    assert draft.site_ids == [site.id] and draft.drafted_by is None
    assert (draft.area, draft.expected, draft.appearance, draft.packaging) == (
        "Main and Hastings", "Crack", "Grey rock", "Blue baggie")
    assert "2026-12-06" in draft.found and draft.effects == "Friend went blue after one hit"
    [event] = db.session.execute(db.select(AuditEvent).where(
        AuditEvent.action == "drug_report_received")).scalars().all()
    assert event.detail == {"via": "form"} and event.staff_id is None


def test_the_report_form_needs_its_csrf_token(app, client):
    make_site(name="East", slug="east")
    assert client.post("/report-a-bad-batch", data=REPORT).status_code == 400
    assert db.session.execute(db.select(DrugAlert)).first() is None


def test_reports_are_rate_limited_per_address(app_with):
    app = app_with(SRS_REPORT_RATE_LIMIT="2 per hour")
    client = app.test_client()
    make_site(name="East", slug="east")
    token = csrf_token(client)
    statuses = [client.post("/report-a-bad-batch", data={**REPORT, "csrf_token": token})
                .status_code for _ in range(2)]
    assert statuses == [303, 303]
    assert client.post("/report-a-bad-batch",
                       data={**REPORT, "csrf_token": token}).status_code == 429
    # The API's submitDrugReport counts against the same limit.
    assert_api_error(client.post("/api/v1/drug-reports", json=REPORT), 429)


def test_submit_drug_report_is_public(app, client):
    site = make_site(name="East", slug="east")
    answer = client.post("/api/v1/drug-reports", json=REPORT)
    assert answer.status_code == 201 and answer.get_json() == {"received": True}
    [draft] = db.session.execute(db.select(DrugAlert)).scalars().all()
    assert draft.site_ids == [site.id] and draft.evidence == "reported"
    assert_api_error(client.post("/api/v1/drug-reports", json={**REPORT, "site": "nowhere"}),
                     422, "site")


# --- The figures ----------------------------------------------------------------------------


def test_figures_count_checks_by_method_and_finding_and_time_to_advisory(app, client, auth):
    site = make_site(name="East", slug="east")
    november = datetime(2026, 11, 10, 17, 0, tzinfo=UTC)
    service.record_check(site, {"checked_at": november, "expected": "Heroin",
                                "methods": ["fentanyl_strip"], "strips": {"fentanyl": "positive"},
                                "components": []}, actor=ACTOR, now=november)
    service.record_check(site, {"checked_at": NOW, "expected": "Heroin", "methods": ["ftir"],
                                "strips": {"benzodiazepine": "positive"},
                                "components": [{"substance": "Fentanyl"},
                                               {"substance": "Bromazolam"}]},
                         actor=ACTOR, now=NOW)
    advisory = service.create_alert(site, {"kind": "overdose_advisory"}, actor=ACTOR, now=NOW)
    advisory.first_overdose_at = NOW - timedelta(hours=5)
    db.session.commit()
    signed(advisory, site)

    report = monthly_figures(site, NOW.date().replace(day=1))
    nov, dec = report["periods"][-2:]
    assert (nov.checks, dict(nov.by_method)) == (1, {"fentanyl_strip": 1})
    assert dict(nov.by_finding) == {"Fentanyl": 1}
    assert dict(dec.by_method) == {"ftir": 1, "benzodiazepine_strip": 1}
    assert dict(dec.by_finding) == {"Fentanyl": 1, "Bromazolam": 1, "Benzodiazepine": 1}
    assert dict(dec.alerts) == {"overdose_advisory": 1}
    assert dec.median_hours == 5.0 and nov.alerts == {}

    auth.login(make_staff(site, role="reviewer").username)
    page = client.get("/sites/east/reports/drug-checking?month=2026-12")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'data-figure="median-hours">5.0<' in body
    assert 'data-figure="Bromazolam">1<' in body
    assert "Drug checking figures" in client.get("/").get_data(as_text=True)

    # The weekly packet carries the week's figures.
    html = packets.packet_html(site, datetime(2026, 12, 7).date(), {},
                               today=NOW.date(), generated_at=NOW)
    assert "Drug checking and alerts" in html and "Bromazolam" in html
