"""Treatment's monthly report against hand-made rows (patients, doses, retention, overdoses
among patients, register balances) on its page, the monthly CSV and the API, never a name;
the register's own export naming the person supplied for a pharmacist only, audited; and a
patient's access export holding their treatment."""

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest
from factories import make_client, make_controlled_drug, make_site, make_staff
from routes import bearer, pdf_text

from srs.audit.models import AuditEvent
from srs.auth.models import Role
from srs.auth.service import Actor
from srs.controlled import service as controlled
from srs.extensions import db
from srs.hat import identity
from srs.hat import reports as hat_reports
from srs.hat.models import HatDose, HatEnrolment, HatPrescription
from srs.incidents import reports
from srs.overdose.models import OverdoseResponse

NAMES = {"A": "Avery Quillfeather", "B": "Blake Moonstride", "C": "Casey Thornwick",
         "D": "Dana Ellsworthy", "E": "Emery Vantongeren", "F": "Frankie Oldcastle",
         "G": "Gray Hollowmere"}
WITHHELD = "POSS 3: withheld, prescriber told"


def at(day: date, hour: int = 12) -> datetime:
    """``hour`` o'clock on ``day`` in Toronto (the factories' sites' zone), as UTC."""
    return datetime(day.year, day.month, day.day, hour + 5, tzinfo=UTC)


def enrol(site, signer, letter: str, enrolled: date, *, ended: date | None = None,
          state: str | None = None) -> HatEnrolment:
    client = make_client(site, code=f"F-HAT{letter}-1980")
    enrolment = HatEnrolment(
        site_id=site.id, client_id=client.id, enrolled_at=at(enrolled), enrolled_by=signer.id,
        ended_at=at(ended) if ended else None,
        state=state or ("ended" if ended else "enrolled"),
        legal_name_enc=identity.encrypt(NAMES[letter]),
        date_of_birth_enc=identity.encrypt("1980-05-06"), health_number_enc=None,
        eligibility={"severe_oud": {"met": True, "note": None}},
        eligibility_signed_by=signer.id, eligibility_signed_at=at(enrolled))
    db.session.add(enrolment)
    db.session.commit()
    return enrolment


def dose(enrolment, day: date, outcome: str, *, reason: str | None = None, rx=None):
    db.session.add(HatDose(site_id=enrolment.site_id, enrolment_id=enrolment.id, day=day,
                           at=at(day), outcome=outcome, reason=reason,
                           dose_mg=100.0 if outcome == "given" else None,
                           prescription_id=rx.id if rx else None))


def overdose(site, enrolment, day: date):
    db.session.add(OverdoseResponse(site_id=site.id, client_id=enrolment.client_id,
                                    kind="opioid", source="booth", started_at=at(day)))


@pytest.fixture
def clinic(app):
    """November 2026 at a treatment clinic, made by hand (see each row's note)."""
    site = make_site(name="Crosstown", slug="east")
    prescriber = make_staff(site, role=Role.PRESCRIBER, username="dr-p")
    p = {
        # 12-month cohort (cutoff 1 Dec 2025) and every shorter one; still in treatment.
        "A": enrol(site, prescriber, "A", date(2025, 10, 15)),
        # 6- and 3-month cohorts; ended in October, before the month's end: not retained.
        "B": enrol(site, prescriber, "B", date(2026, 2, 10), ended=date(2026, 10, 5)),
        # 6- and 3-month cohorts; ended after the month's end: retained in November.
        "C": enrol(site, prescriber, "C", date(2026, 5, 20), ended=date(2026, 12, 3)),
        # 3-month cohort (cutoff 1 Sep 2026); held, still in treatment.
        "D": enrol(site, prescriber, "D", date(2026, 8, 20), state="on_hold"),
        # Enrolled in November: new, in treatment, in no cohort.
        "E": enrol(site, prescriber, "E", date(2026, 11, 10)),
        # Enrolled after the 3-month cutoff, ended in November.
        "F": enrol(site, prescriber, "F", date(2026, 9, 15), ended=date(2026, 11, 20)),
        # Enrolled in December: nothing of November.
        "G": enrol(site, prescriber, "G", date(2026, 12, 2)),
    }
    rx = HatPrescription(enrolment_id=p["A"].id, version=1, medication="hydromorphone",
                         route="iv", dose_mg=100.0, sessions_per_day=3,
                         min_interval_minutes=180, starts_on=date(2025, 10, 15),
                         signed_by=prescriber.id, signed_at=at(date(2025, 10, 15)))
    db.session.add(rx)
    db.session.flush()
    dose(p["A"], date(2026, 11, 3), "given", rx=rx)
    dose(p["A"], date(2026, 11, 3), "given", rx=rx)
    dose(p["A"], date(2026, 11, 3), "withheld", reason=WITHHELD)
    dose(p["D"], date(2026, 11, 4), "missed", reason="Did not attend")
    dose(p["D"], date(2026, 11, 4), "missed", reason="Did not attend")
    dose(p["E"], date(2026, 11, 30), "declined", reason="Felt unwell")
    dose(p["A"], date(2026, 10, 31), "given", rx=rx)  # October
    dose(p["A"], date(2026, 12, 1), "missed", reason="Did not attend")  # December
    overdose(site, p["A"], date(2026, 11, 12))  # a patient in treatment: counts
    overdose(site, p["B"], date(2026, 11, 12))  # ended in October: no longer a patient
    overdose(site, p["E"], date(2026, 11, 5))  # before E was enrolled
    overdose(site, p["A"], date(2026, 10, 12))  # another month
    db.session.commit()
    # The register: 10 before November, 5 received and 2 drawn for A in it.
    drug = make_controlled_drug(site, balance=10, now=at(date(2026, 10, 20)))
    actor = Actor.of(make_staff(site, role=Role.PHARMACIST, username="pharma"))
    controlled.receive(site, {"drug_id": drug.id, "supplier": "Pharma Ltd", "invoice": "I-2",
                              "lot_number": "L2", "expires_on": date(2099, 1, 1),
                              "quantity": 5}, actor=actor, now=at(date(2026, 11, 2)))
    controlled.draw_for_dose(drug, client=p["A"].client, quantity=2, dose_mg=100,
                             identity_checked=True, actor=actor, now=at(date(2026, 11, 3)))
    db.session.commit()
    return site, p, drug


def test_each_figure_matches_the_hand_count(clinic):
    site, _p, drug = clinic
    report = hat_reports.month_report(site, date(2026, 11, 1))
    assert (report.in_treatment, report.new_enrolments, report.ended) == (4, 1, 1)
    assert [(r.months, r.cohort, r.retained, r.percent) for r in report.retention] == [
        (3, 4, 3, 75), (6, 3, 2, 67), (12, 1, 1, 100)]
    assert report.overdoses == 1
    assert len(report.days) == 30 and report.dose_totals == {
        "given": 2, "withheld": 1, "declined": 1, "missed": 2}
    day = {d.day: d for d in report.days}
    assert day[date(2026, 11, 3)].counts == {"given": 2, "withheld": 1, "declined": 0,
                                             "missed": 0}
    assert day[date(2026, 11, 3)].reasons == [("withheld", WITHHELD, 1)]
    assert day[date(2026, 11, 4)].reasons == [("missed", "Did not attend", 2)]
    assert report.reasons == {"declined: Felt unwell": 1, "missed: Did not attend": 2,
                              f"withheld: {WITHHELD}": 1}
    [line] = report.register
    assert line["drug"].id == drug.id and (line["opening"], line["closing"]) == (10, 13)
    assert line["moved"]["received"] == 5 and line["moved"]["drawn"] == -2
    # December: E, A, D and G in treatment; C and F ended; the December missed dose.
    december = hat_reports.month_report(site, date(2026, 12, 1))
    assert (december.in_treatment, december.new_enrolments, december.ended) == (4, 1, 1)
    assert december.dose_totals["missed"] == 1


def test_the_page_csv_and_api_show_the_figures_and_no_name(clinic, client, auth):
    site, p, _drug = clinic
    make_staff(site, role=Role.REVIEWER, username="rev")
    auth.login("rev")
    # Reached from the monthly report's pages.
    monthly = client.get("/sites/east/reports/monthly?month=2026-11").get_data(as_text=True)
    assert 'data-testid="hat-report-link"' in monthly and "/sites/east/hat/report" in monthly
    page = client.get("/sites/east/hat/report?month=2026-11")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for figure, value in (("in_treatment", 4), ("new_enrolments", 1), ("ended", 1),
                          ("overdoses", 1)):
        assert f'data-figure="{figure}">{value}<' in text, figure
    assert 'data-months="6"><th scope="row">6 months</th><td class="num" data-figure="cohort">3' \
           '</td><td class="num" data-figure="retained">2</td><td class="num" ' \
           'data-figure="percent">67 %<' in text
    assert "Withheld: POSS 3: withheld, prescriber told (1)" in text
    assert 'data-figure="closing">13<' in text
    assert not any(name in text for name in NAMES.values())
    assert not any(e.client.code in text for e in p.values())

    exported = client.get("/sites/east/reports/monthly.csv?month=2026-11").get_data(
        as_text=True)
    rows = {(r["figure"], r["breakdown"]): r["value"]
            for r in csv.DictReader(io.StringIO(exported))}
    assert rows[("hat_patients_in_treatment", "")] == "4"
    assert rows[("hat_new_enrolments", "")] == "1"
    assert rows[("hat_treatments_ended", "")] == "1"
    assert rows[("hat_doses_by_outcome", "Missed")] == "2"
    assert rows[("hat_doses_not_given_by_reason", "declined: Felt unwell")] == "1"
    assert rows[("hat_retention_cohort", "3 months")] == "4"
    assert rows[("hat_retained", "12 months")] == "1"
    assert rows[("hat_retention_percent", "6 months")] == "67"
    assert rows[("hat_overdoses_among_patients", "")] == "1"
    assert rows[("hat_register_closing_balance", "Diacetylmorphine 200 mg vial")] == "13"
    assert not any(name in exported for name in NAMES.values())

    body = client.get(f"/api/v1/sites/{site.id}/hat/report?month=2026-11",
                      headers=bearer(make_staff(site, role=Role.PRESCRIBER))).get_json()
    assert (body["in_treatment"], body["overdoses"]) == (4, 1)
    assert body["retention"][0] == {"months": 3, "cohort": 4, "retained": 3, "percent": 75}
    assert body["register"][0]["closing"] == 13
    assert not any(name in json.dumps(body) for name in NAMES.values())


def test_sites_without_treatment_report_no_treatment_figures(app):
    site = make_site()
    figures = {f.name for f, _value in reports.monthly_report(site, date(2026, 11, 1))[
        "figures"]}
    assert "total_visits" in figures and not any(n.startswith("hat_") for n in figures)


def test_who_may_open_the_report(clinic, client, auth):
    site, _p, _drug = clinic
    make_staff(site, role=Role.NURSE, username="nina")
    auth.login("nina")
    assert client.get("/sites/east/hat/report").status_code == 403
    auth.logout()
    auth.login("pharma")
    page = client.get("/sites/east/hat/report?month=2026-11").get_data(as_text=True)
    assert 'data-figure="in_treatment">4<' in page
    assert 'data-testid="hat-report-link"' in client.get("/").get_data(as_text=True)


def test_the_register_export_names_the_patient_for_a_pharmacist_only(clinic, client, auth):
    site, p, _drug = clinic
    period = "start=2026-11-01&end=2026-11-30"
    auth.login("pharma")
    named = client.get(f"/sites/east/controlled/register.csv?{period}").get_data(as_text=True)
    [drawn] = [r for r in csv.DictReader(io.StringIO(named))
               if r["Movement"] == "Drawn for a dose"]
    assert drawn["Supplier or person supplied"] == p["A"].client.code
    assert drawn["Legal name"] == NAMES["A"]
    assert NAMES["A"] in " ".join(pdf_text(client.get(
        f"/sites/east/controlled/register.pdf?{period}").data).split())
    reads = db.session.scalars(db.select(AuditEvent).filter_by(
        action="patient_identity_read")).all()
    assert [(e.entity, e.entity_id) for e in reads] == [("hat_enrolment", str(p["A"].id))] * 2
    exports = db.session.scalars(db.select(AuditEvent).filter_by(
        action="controlled_register_exported")).all()
    assert [e.detail["legal_names"] for e in exports] == [1, 1]
    details = json.dumps([e.detail for e in db.session.scalars(db.select(AuditEvent))])
    assert not any(name in details for name in NAMES.values())
    auth.logout()

    # A supervisor exports the register too, with the code alone; a nurse may not export.
    make_staff(site, role=Role.SUPERVISOR, username="sup")
    auth.login("sup")
    coded = client.get(f"/sites/east/controlled/register.csv?{period}").get_data(as_text=True)
    [drawn] = [r for r in csv.DictReader(io.StringIO(coded))
               if r["Movement"] == "Drawn for a dose"]
    assert drawn["Supplier or person supplied"] == p["A"].client.code
    assert drawn["Legal name"] == "" and NAMES["A"] not in coded
    assert NAMES["A"] not in " ".join(pdf_text(client.get(
        f"/sites/east/controlled/register.pdf?{period}").data).split())
    assert db.session.scalar(db.select(db.func.count(AuditEvent.id)).filter_by(
        action="patient_identity_read")) == 2
    auth.logout()
    make_staff(site, role=Role.NURSE, username="nina")
    auth.login("nina")
    assert client.get(f"/sites/east/controlled/register.csv?{period}").status_code == 403


def test_a_patients_access_export_holds_their_treatment(clinic, client, auth):
    site, p, _drug = clinic
    make_staff(site, role=Role.ADMIN, username="ada")
    auth.login("ada")
    patient = p["A"]
    exported = client.get(f"/sites/east/clients/{patient.client_id}/record.csv")
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    kinds = [r[0] for r in rows if r]
    assert kinds.count("hat_enrolment") == 1 and kinds.count("hat_prescription") == 1
    # 2 given and 1 withheld in November, October's given and December's missed.
    assert kinds.count("hat_dose") == 5
    header = next(r for r in rows if r[:1] == ["record_type"] and "identity_held" in r)
    enrolment = dict(zip(header, next(r for r in rows if r[:1] == ["hat_enrolment"]),
                         strict=True))
    assert enrolment["state"] == "enrolled" and enrolment["identity_held"] == "yes"
    assert enrolment["enrolled_at"].startswith("2025-10-15")
    assert "severe_oud" in enrolment["eligibility"]
    assert enrolment["eligibility_signed_at"].startswith("2025-10-15")
    text = exported.get_data(as_text=True)
    # The register's export alone names a patient: not their own access export either.
    assert WITHHELD in text and not any(name in text for name in NAMES.values())
    assert db.session.scalars(db.select(AuditEvent).filter_by(
        action="patient_identity_read")).all() == []
    pdf = pdf_text(client.get(f"/sites/east/clients/{patient.client_id}/record.pdf").data)
    assert "Treatment enrolments" in pdf and NAMES["A"] not in " ".join(pdf.split())
