"""The club's survey and monthly report as the API and the tablet form take and give them."""

from marshmallow import RAISE, Schema, fields, pre_dump, pre_load, validate

from srs.compassion.models import LINKAGE_OUTCOMES, STATES, STREET_SUPPLY
from srs.forms import Form

OVERDOSES_MAX = 99


class _TrueOrFalse(fields.Boolean):
    """JSON's true or false only."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class SurveyInputSchema(Schema):
    """DULF's three questions, asked every 3 months."""

    class Meta:
        unknown = RAISE

    overdoses_since = fields.Integer(
        required=True, strict=True,
        validate=validate.Range(min=0, max=OVERDOSES_MAX,
                                error=f"A whole number from 0 to {OVERDOSES_MAX}."),
        metadata={"description": "Overdoses the member had since their last survey (or since "
                                 "joining), as they tell it."})
    street_supply = fields.String(
        required=True, validate=validate.OneOf(
            STREET_SUPPLY, error="Choose none, less, same or more."),
        metadata={"description": "Use of street supply since the last survey: none, less, "
                                 "same or more than before."})
    treatment_contact = _TrueOrFalse(
        required=True, error_messages={"invalid": "Choose yes or no."},
        metadata={"description": "Whether the member had contact with treatment since."})
    note = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=300),
        metadata={"description": "A note (no names)."})


class SurveySchema(Schema):
    id = fields.Integer()
    member_id = fields.Integer()
    at = fields.DateTime()
    by = fields.Integer(allow_none=True, metadata={"description": "Staff id who asked."})
    overdoses_since = fields.Integer()
    street_supply = fields.String()
    treatment_contact = fields.Boolean()
    note = fields.String(allow_none=True)


class SurveyDueSchema(Schema):
    member_id = fields.Integer()
    client_code = fields.String()
    due_on = fields.Date(metadata={"description": "The local day it came due."})
    last_at = fields.DateTime(allow_none=True, metadata={
        "description": "The last survey; null when the member has none yet."})

    @pre_dump
    def _from_due(self, due, **_kwargs):
        return {"member_id": due.member.id, "client_code": due.member.client.code,
                "due_on": due.due_on, "last_at": due.last_at}


class SurveysDueSchema(Schema):
    day = fields.Date(metadata={"description": "Today at the site."})
    survey_days = fields.Integer(metadata={
        "description": "Days between surveys (the site's setting)."})
    due = fields.List(fields.Nested(SurveyDueSchema))


def _counts(description: str):
    return fields.Dict(keys=fields.String(), values=fields.Integer(),
                       metadata={"description": description})


class SubstanceSuppliesSchema(Schema):
    substance = fields.String()
    supplies = fields.Integer()
    quantity_g = fields.Float()


class ClubReportSchema(Schema):
    site_id = fields.Integer()
    month = fields.String(metadata={"description": "YYYY-MM, site time."})
    members_by_state = _counts(f"Members by state at the month's end: {', '.join(STATES)}.")
    supplies = fields.Integer()
    quantity_g = fields.Float(metadata={"description": "Grams supplied in the month."})
    supplies_by_substance = fields.List(fields.Nested(SubstanceSuppliesSchema))
    limits_reached = _counts("Supplies refused at a limit in the month, by limit.")
    linkage = _counts(f"Linkage conversations by outcome: {', '.join(LINKAGE_OUTCOMES)}.")
    surveys = fields.Integer(metadata={"description": "Surveys recorded in the month."})
    survey_overdoses = fields.Integer(metadata={
        "description": "Overdoses members told of in those surveys."})
    street_supply = _counts(f"Those surveys by street supply: {', '.join(STREET_SUPPLY)}.")
    treatment_contact = fields.Integer(metadata={
        "description": "Those surveys with treatment contact."})
    member_visits = fields.Integer()
    member_overdoses = fields.Integer(metadata={
        "description": "Overdose responses whose client was a member when it started."})
    member_rate = fields.Float(allow_none=True, metadata={
        "description": "Member overdoses per 1,000 member visits; null without a visit."})
    other_visits = fields.Integer()
    other_overdoses = fields.Integer()
    other_rate = fields.Float(allow_none=True, metadata={
        "description": "Other clients' overdoses per 1,000 of their visits."})

    @pre_dump
    def _from_report(self, report, **_kwargs):
        from srs.compassion.evaluation import grams

        return {
            "site_id": report.site.id, "month": f"{report.month:%Y-%m}",
            "members_by_state": report.members_by_state, "supplies": report.supplies,
            "quantity_g": report.quantity_g,
            "supplies_by_substance": [
                {"substance": s, "supplies": v["supplies"],
                 "quantity_g": grams(v["quantity_mg"])}
                for s, v in report.supplies_by_substance.items()],
            "limits_reached": report.limits_reached, "linkage": report.linkage,
            "surveys": report.surveys, "survey_overdoses": report.survey_overdoses,
            "street_supply": report.street_supply,
            "treatment_contact": report.treatment_contact,
            "member_visits": report.member_visits,
            "member_overdoses": report.member_overdoses, "member_rate": report.member_rate,
            "other_visits": report.other_visits, "other_overdoses": report.other_overdoses,
            "other_rate": report.other_rate}


# --- The tablet form --------------------------------------------------------------------------

_YES_NO = {"yes": True, "no": False}


class SurveyForm(Form, SurveyInputSchema):
    """The tablet's survey: the count typed, street supply and treatment contact tapped."""

    strip_text = True

    @pre_load
    def _from_inputs(self, data, **_kwargs):
        data = {k: v for k, v in dict(data).items()
                if k in ("overdoses_since", "street_supply", "treatment_contact", "note")}
        typed = (data.get("overdoses_since") or "").strip()
        data["overdoses_since"] = int(typed) if typed.isdigit() and len(typed) < 4 else typed
        if not data["overdoses_since"] and data["overdoses_since"] != 0:
            data.pop("overdoses_since")
        if "treatment_contact" in data:
            data["treatment_contact"] = _YES_NO.get(data["treatment_contact"],
                                                    data["treatment_contact"])
        if not (data.get("note") or "").strip():
            data.pop("note", None)
        if not data.get("street_supply"):
            data.pop("street_supply", None)
        return data

    def handle_error(self, error, data, **_kwargs):
        messages = error.messages
        if "overdoses_since" in messages:
            messages["overdoses_since"] = [
                f"Type how many overdoses since the last survey: a whole number from 0 to "
                f"{OVERDOSES_MAX} (0 if none)."]
        if "street_supply" in messages:
            messages["street_supply"] = ["Choose how much street supply they used: none, "
                                         "less, the same or more."]
        if "treatment_contact" in messages:
            messages["treatment_contact"] = ["Choose yes or no: any contact with treatment."]
        if "note" in messages:
            messages["note"] = ["A note is at most 300 characters."]
