"""The treatment report as the API gives it (``getHatReport``): counts only."""

from marshmallow import Schema, fields, pre_dump

from srs.hat.models import DOSE_OUTCOMES


def _outcome_counts():
    return fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": f"Doses by outcome: {', '.join(DOSE_OUTCOMES)}."})


class ReasonCountSchema(Schema):
    outcome = fields.String(metadata={"description": "withheld, declined or missed."})
    reason = fields.String()
    count = fields.Integer()


class DayDosesSchema(Schema):
    day = fields.Date()
    counts = _outcome_counts()
    reasons = fields.List(fields.Nested(ReasonCountSchema))

    @pre_dump
    def _from_day(self, day, **_kwargs):
        return {"day": day.day, "counts": day.counts, "reasons": [
            {"outcome": o, "reason": r, "count": n} for o, r, n in day.reasons]}


class RetentionSchema(Schema):
    months = fields.Integer()
    cohort = fields.Integer(metadata={
        "description": "Treatments begun at least ``months`` before the month's end."})
    retained = fields.Integer(metadata={
        "description": "Of them, not ended by the month's end."})
    percent = fields.Integer(allow_none=True, metadata={
        "description": "retained / cohort, rounded; null when the cohort is empty."})


class RegisterLineSchema(Schema):
    drug_id = fields.Integer()
    label = fields.String()
    unit = fields.String()
    opening = fields.Integer(metadata={"description": "The balance on the 1st, 00:00."})
    moved = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "The month's movements by kind (received, drawn, wasted, destroyed, "
                       "returned, adjusted), signed as the ledger has them."})
    closing = fields.Integer(metadata={"description": "The balance at the month's end."})

    @pre_dump
    def _from_line(self, line, **_kwargs):
        drug = line["drug"]
        return {"drug_id": drug.id, "label": drug.label, "unit": drug.unit,
                "opening": line["opening"], "moved": line["moved"],
                "closing": line["closing"]}


class HatReportSchema(Schema):
    site_id = fields.Integer()
    month = fields.String(metadata={"description": "YYYY-MM, site time."})
    in_treatment = fields.Integer(metadata={"description": "Patients in treatment (enrolled "
                                                           "or held) at the month's end."})
    new_enrolments = fields.Integer()
    ended = fields.Integer(metadata={"description": "Treatments ended in the month."})
    dose_totals = _outcome_counts()
    days = fields.List(fields.Nested(DayDosesSchema), metadata={
        "description": "Every day of the month, with why each dose was not given."})
    retention = fields.List(fields.Nested(RetentionSchema))
    overdoses = fields.Integer(metadata={
        "description": "Overdose responses whose client was in treatment when it started."})
    register = fields.List(fields.Nested(RegisterLineSchema))

    @pre_dump
    def _from_report(self, report, **_kwargs):
        return {"site_id": report.site.id, "month": f"{report.month:%Y-%m}",
                "in_treatment": report.in_treatment, "new_enrolments": report.new_enrolments,
                "ended": report.ended, "dose_totals": report.dose_totals, "days": report.days,
                "retention": report.retention, "overdoses": report.overdoses,
                "register": report.register}
