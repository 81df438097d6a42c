"""A site's settings page: every setting shown with its range, timers typed in minutes and
seconds and kept in seconds, the API's rules with messages under the fields, audited and
announced."""

import re
from html import unescape

import pytest
from factories import make_site, make_staff

from srs import live
from srs.auth.models import AuditEvent, Role
from srs.extensions import db
from srs.sites.models import TIMER_SETTINGS, Site
from srs.sites.settings_table import (
    API_NUMBERS,
    BOOLEAN,
    DECIMAL,
    DURATION,
    PAGE_SETTINGS,
    WHOLE,
)

OTHER_SETTINGS = ("timezone", "client_code_pattern", "opening_hours", "on_call_staff_id",
                  "overdose_locations", "naloxone_low_stock", "refresher_months",
                  "kit_expiry_warning_days")


@pytest.fixture
def east(app):
    site = make_site(name="East", slug="east")
    return {"site": site, "admin": make_staff(site, role=Role.ADMIN, username="ada"),
            "nurse": make_staff(site, role=Role.NURSE, username="nina"),
            "supervisor": make_staff(site, role=Role.SUPERVISOR, username="sam")}


URL = "/sites/east/admin/settings"


def page_form(html: str) -> dict:
    """The settings form's inputs as the page fills them (what a browser would send)."""
    form = {}
    html = re.sub(r"<template.*?</template>", "", html, flags=re.S)  # a line not yet added
    for tag in re.findall(r"<input [^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if re.search(r'type="(checkbox|radio)"', tag) and " checked" not in tag:
            continue  # a box not ticked sends nothing
        if name and name.group(1) != "csrf_token":
            form.setdefault(name.group(1), []).append(unescape(value.group(1)) if value else "")
    for name, text in re.findall(r'<textarea [^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html,
                                 re.S):
        form[name] = [unescape(text)]
    for name, options in re.findall(r'<select [^>]*name="([^"]+)"[^>]*>(.*?)</select>', html,
                                    re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        form[name] = [chosen.group(1) if chosen else ""]
    return form


def stored(site) -> Site:
    db.session.rollback()
    return db.session.get(Site, site.id)


def text_of(html: str) -> str:
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    return unescape(re.sub(r" ([:.,;])", r"\1", words))


def save(client, auth, **changes):
    """Post the page's own form with ``changes`` (input name: value) over it."""
    form = page_form(client.get(URL).get_data(as_text=True))
    form.update(changes)
    return auth.post(URL, form)


def error_under(html: str, name: str) -> str:
    match = re.search(rf'<p class="field-error"[^>]*data-error-for="{name}">(.*?)</p>', html,
                      re.S)
    assert match, f"no message under {name}"
    return unescape(match.group(1)).strip()


def test_the_page_shows_every_setting_with_its_range_and_help(client, auth, east):
    auth.login("ada")
    response = client.get(URL)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    text = text_of(html)
    for heading in ("Floor timers", "Alarms", "After-care", "Site", "Naloxone"):
        assert f"<legend class=\"settings__heading\">{heading}</legend>" in html
    form = page_form(html)
    for setting in TIMER_SETTINGS:
        minutes, seconds = divmod(setting.default, 60)
        assert form[f"{setting.name}-min"] == [str(minutes)], setting.name
        assert form[f"{setting.name}-sec"] == [f"{seconds:02d}"], setting.name
        assert setting.label in text
    assert "Between 0:10 and 2:00:00 (10 s to 120 min); default 15:00" in text  # booth limit
    assert "Between 0:00 and 4:00:00 (0 s to 240 min); default 15:00" in text  # after-care
    for name in OTHER_SETTINGS:
        assert name in form, name
    assert form["timezone"] == ["America/Toronto"]
    assert form["overdose_locations"] == east["site"].overdose_locations
    assert form["naloxone_low_stock"] == ["10"]
    assert form["on_call_staff_id"] == [""]
    assert "Between 0 and 1000 doses" in text
    assert form["refresher_months"] == ["12"] and form["kit_expiry_warning_days"] == ["60"]
    assert "Between 1 and 60 months; default 12" in text
    assert "Between 0 and 365 days; default 60" in text
    assert 'data-busy-label="Saving…"' in html and "hx-sync=\"this:drop\"" in html


def test_minutes_and_seconds_are_saved_in_seconds_and_the_save_says_what_changed(
        client, auth, east, monkeypatch):
    heard = []
    monkeypatch.setattr(live, "announce", lambda site_id, topic: heard.append((site_id, topic)))
    auth.login("ada")
    response = save(client, auth, **{
        "booth_time_limit_seconds-min": "20", "booth_time_limit_seconds-sec": "30",
        "min_observation_seconds-min": "", "min_observation_seconds-sec": "90",
        "lock_after_seconds-min": "2", "lock_after_seconds-sec": "",
        "opening_hours": " Daily 09:00-21:00 ",
        "overdose_locations": ["Washroom", "", "Back alley "]})
    assert response.status_code == 200, response.get_data(as_text=True)
    site = stored(east["site"])
    assert (site.booth_time_limit_seconds, site.min_observation_seconds,
            site.lock_after_seconds) == (1230, 90, 120)
    assert site.opening_hours == "Daily 09:00-21:00"
    assert site.overdose_locations == ["Washroom", "Back alley"]
    html = response.get_data(as_text=True)
    saved = text_of(re.search(r'data-testid="settings-saved">(.*?)</div>', html, re.S).group(1))
    assert "Booth time limit: 15:00 → 20:30" in saved
    assert "Minimum after-care: 15:00 → 1:30" in saved
    assert "Shared tablets lock after: 5:00 → 2:00" in saved
    assert "Opening hours: none → Daily 09:00-21:00" in saved
    assert ("Places on the overdose console: added Back alley; removed Doorway, Waiting room, "
            "Outside the entrance") in saved
    assert "Timezone" not in saved and "Time zone" not in saved  # unchanged, not listed
    form = page_form(html)
    assert (form["min_observation_seconds-min"], form["min_observation_seconds-sec"]) == (
        ["1"], ["30"])
    assert heard == [(site.id, "settings")]


def test_saving_nothing_new_says_so_and_audits_nothing(client, auth, east):
    auth.login("ada")
    response = save(client, auth)
    assert response.status_code == 200
    assert "Nothing changed" in response.get_data(as_text=True)
    assert db.session.execute(db.select(AuditEvent).filter_by(
        action="settings_updated")).first() is None


@pytest.mark.parametrize(("inputs", "name", "message"), [
    ({"lock_after_seconds-min": "0", "lock_after_seconds-sec": "10"}, "lock_after_seconds",
     "Between 0:30 and 1:00:00 (30 s to 60 min)."),
    ({"booth_time_limit_seconds-min": "121", "booth_time_limit_seconds-sec": "0"},
     "booth_time_limit_seconds", "Between 0:10 and 2:00:00 (10 s to 120 min)."),
    ({"booth_time_limit_seconds-min": "", "booth_time_limit_seconds-sec": ""},
     "booth_time_limit_seconds",
     "Whole minutes and seconds. Between 0:10 and 2:00:00 (10 s to 120 min)."),
    ({"escalation_grace_seconds-min": "1.5", "escalation_grace_seconds-sec": "0"},
     "escalation_grace_seconds",
     "Whole minutes and seconds. Between 0:02 and 15:00 (2 s to 15 min)."),
    ({"naloxone_low_stock": "1001"}, "naloxone_low_stock",
     "A whole number of doses between 0 and 1000."),
    ({"refresher_months": "0"}, "refresher_months",
     "A whole number of months between 1 and 60."),
    ({"kit_expiry_warning_days": "two"}, "kit_expiry_warning_days",
     "A whole number of days between 0 and 365."),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone",
     "'Mars/Olympus_Mons' is not a known time zone."),
    ({"client_code_pattern": "([A-Z]{4}"}, "client_code_pattern", "Not a valid pattern"),
    ({"overdose_locations": ["", " "]}, "overdose_locations", "Give 1 to 20 places."),
    ({"overdose_locations": ["Washroom", "Washroom "]}, "overdose_locations",
     "Each place once, with a name."),
], ids=["below", "above", "blank", "not whole", "stock", "refresher", "kit expiry", "zone",
        "pattern", "no place", "same place twice"])
def test_a_bad_value_is_refused_under_its_field_and_what_was_typed_stays(
        client, auth, east, inputs, name, message):
    auth.login("ada")
    typed = {"opening_hours": "Daily 10:00-18:00", "drowsy_check_interval_seconds-min": "3",
             "drowsy_check_interval_seconds-sec": "15", **inputs}
    response = save(client, auth, **typed)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert error_under(html, name).startswith(message)
    assert "Nothing was saved" in html
    form = page_form(html)
    for input_name, value in typed.items():
        if input_name in ("timezone", "overdose_locations"):
            continue  # a select keeps a known choice; blank lines are shown as typed
        assert form[input_name] == [value], input_name
    site = stored(east["site"])
    assert (site.opening_hours, site.drowsy_check_interval_seconds) == (None, 60)


def test_places_typed_are_kept_on_a_refusal(client, auth, east):
    auth.login("ada")
    response = save(client, auth, overdose_locations=["Washroom", "Stairwell"],
                    **{"lock_after_seconds-sec": "x"})
    assert response.status_code == 422
    assert page_form(response.get_data(as_text=True))["overdose_locations"] == [
        "Washroom", "Stairwell"]


def test_the_on_call_person_must_be_a_supervisor_of_the_site(client, auth, east):
    auth.login("ada")
    html = client.get(URL).get_data(as_text=True)
    choices = re.search(r'<select id="setting-on-call-staff-id".*?</select>', html,
                        re.S).group(0)
    assert "sam" in choices and "nina" not in choices and "ada" not in choices
    refused = save(client, auth, on_call_staff_id=str(east["nurse"].id))
    assert refused.status_code == 422
    assert error_under(refused.get_data(as_text=True), "on_call_staff_id") == \
        "Choose an active supervisor of this site."
    assert stored(east["site"]).on_call_staff_id is None

    saved = save(client, auth, on_call_staff_id=str(east["supervisor"].id))
    assert saved.status_code == 200
    assert "On-call supervisor: nobody → sam" in text_of(saved.get_data(as_text=True))
    assert stored(east["site"]).on_call_staff_id == east["supervisor"].id
    cleared = save(client, auth, on_call_staff_id="")
    assert "On-call supervisor: sam → nobody" in text_of(cleared.get_data(as_text=True))
    assert stored(east["site"]).on_call_staff_id is None


def test_each_change_is_audited_from_and_to(client, auth, east):
    auth.login("ada")
    save(client, auth, **{"booth_check_interval_seconds-min": "4",
                          "booth_check_interval_seconds-sec": "00",
                          "timezone": "America/Vancouver", "naloxone_low_stock": "12",
                          "refresher_months": "6", "kit_expiry_warning_days": "30"})
    event = db.session.execute(db.select(AuditEvent).filter_by(
        action="settings_updated")).scalar_one()
    assert (event.staff_id, event.entity, event.entity_id, event.site_id) == (
        east["admin"].id, "site", str(east["site"].id), east["site"].id)
    assert event.detail == {
        "booth_check_interval_seconds": {"from": 180, "to": 240},
        "timezone": {"from": "America/Toronto", "to": "America/Vancouver"},
        "naloxone_low_stock": {"from": 10, "to": 12},
        "refresher_months": {"from": 12, "to": 6},
        "kit_expiry_warning_days": {"from": 60, "to": 30},
    }


@pytest.mark.parametrize("role", [Role.NURSE, Role.SUPERVISOR])
def test_only_the_sites_admin_opens_or_saves_its_settings(client, auth, east, role):
    make_staff(east["site"], role=role, username="someone")
    auth.login("someone")
    assert client.get(URL).status_code == 403
    refused = auth.post(URL, {"lock_after_seconds-min": "1", "lock_after_seconds-sec": "0"})
    assert refused.status_code == 403
    assert stored(east["site"]).lock_after_seconds == 300


# --- The settings table: drug early warning and heroin-assisted treatment on the page -------

def test_every_setting_of_the_table_is_on_the_page_with_its_current_value(client, auth, east):
    site = east["site"]
    site.cluster_window_seconds, site.cluster_trend_factor = 7290, 2.5
    site.hat_max_single_dose_mg, site.hat_take_home_allowed = 40, True
    site.hat_poss_withhold, site.alert_valid_for_days = 2, 21
    db.session.commit()
    auth.login("ada")
    html = client.get(URL).get_data(as_text=True)
    text, form = text_of(html), page_form(html)
    headings = re.findall(r'<legend class="settings__heading">(.*?)</legend>', html)
    assert headings == ["Floor timers", "After-care", "Alarms", "Naloxone",
                        "Drug early warning", "Heroin-assisted treatment", "Compassion club",
                        "Site"]
    for setting in PAGE_SETTINGS:
        assert f'data-setting="{setting.name}"' in html, setting.name
        assert setting.title in text and setting.help in text, setting.name
        if setting.kind in (WHOLE, DECIMAL, BOOLEAN):
            assert setting.range_text() in text, setting.name
    for setting in API_NUMBERS:  # the numbers beside the timers
        value = getattr(stored(site), setting.name)
        if setting.kind == DURATION:
            minutes, seconds = divmod(value, 60)
            shown = [form[f"{setting.name}-min"], form[f"{setting.name}-sec"]]
            assert shown == [[str(minutes)], [f"{seconds:02d}"]], setting.name
        elif setting.kind == BOOLEAN:
            assert form[setting.name] == ["true" if value else "false"], setting.name
        else:
            shown = "" if value is None else f"{setting.on_page(value):g}"
            assert form[setting.name] == [shown], setting.name
    assert (form["cluster_window_seconds-min"], form["cluster_window_seconds-sec"]) == (
        ["121"], ["30"])
    assert form["cluster_trend_factor"] == ["2.5"] and form["hat_max_single_dose_mg"] == ["40"]
    assert form["hat_take_home_allowed"] == ["true"] and form["hat_poss_withhold"] == ["2"]
    assert "Between 1 and 6 sessions; default 3" in text
    assert ("Between 1 and 1000 mg; blank: the daily cap divided by the prescription's "
            "sessions; default blank") in text
    assert "Between 1 and 10 times the median; default 2" in text


def test_a_hat_and_a_drug_alert_setting_are_saved_from_the_page_and_audited(client, auth, east):
    auth.login("ada")
    response = save(client, auth, hat_max_sessions_per_day="2", hat_max_single_dose_mg=" 40 ",
                    hat_take_home_allowed="true", cluster_trend_factor="2.5",
                    alert_valid_for_days="7", **{"cluster_window_seconds-min": "720",
                                                 "cluster_window_seconds-sec": "0"})
    assert response.status_code == 200, response.get_data(as_text=True)
    site = stored(east["site"])
    assert (site.hat_max_sessions_per_day, site.hat_max_single_dose_mg,
            site.hat_take_home_allowed, site.cluster_trend_factor, site.alert_valid_for_days,
            site.cluster_window_seconds) == (2, 40, True, 2.5, 7, 43200)
    html = response.get_data(as_text=True)
    saved = text_of(re.search(r'data-testid="settings-saved">(.*?)</div>', html, re.S).group(1))
    assert "Sessions a day: 3 sessions → 2 sessions" in saved
    assert ("Largest single dose: blank (the daily cap divided by the prescription's "
            "sessions) → 40 mg") in saved
    assert "Take-home doses allowed: no → yes" in saved
    assert "Trend factor: 2 times the median → 2.5 times the median" in saved
    assert "Cluster window: 24:00:00 → 12:00:00" in saved
    event = db.session.execute(db.select(AuditEvent).filter_by(
        action="settings_updated")).scalar_one()
    assert event.staff_id == east["admin"].id
    assert event.detail == {
        "hat_max_sessions_per_day": {"from": 3, "to": 2},
        "hat_max_single_dose_mg": {"from": None, "to": 40},
        "hat_take_home_allowed": {"from": False, "to": True},
        "cluster_trend_factor": {"from": 2.0, "to": 2.5},
        "alert_valid_for_days": {"from": 14, "to": 7},
        "cluster_window_seconds": {"from": 86400, "to": 43200},
    }
    cleared = save(client, auth, hat_max_single_dose_mg="")
    assert cleared.status_code == 200
    assert stored(east["site"]).hat_max_single_dose_mg is None


@pytest.mark.parametrize(("inputs", "name", "message"), [
    ({"hat_max_sessions_per_day": "7"}, "hat_max_sessions_per_day",
     "A whole number of sessions between 1 and 6."),
    ({"hat_cap_hydromorphone_mg_day": "0"}, "hat_cap_hydromorphone_mg_day",
     "A whole number of mg a day between 1 and 1000."),
    ({"hat_max_single_dose_mg": "12.5"}, "hat_max_single_dose_mg",
     "A whole number of mg between 1 and 1000. Leave it blank for the daily cap divided by "
     "the prescription's sessions."),
    ({"hat_take_home_max_days": ""}, "hat_take_home_max_days",
     "A whole number of days between 1 and 7."),
    ({"hat_poss_withhold": "5"}, "hat_poss_withhold", "A whole number between 1 and 4."),
    ({"cluster_trend_factor": "0.5"}, "cluster_trend_factor",
     "A number between 1 and 10 times the median, decimals allowed (e.g. 2)."),
    ({"cluster_trend_factor": "twice"}, "cluster_trend_factor",
     "A number between 1 and 10 times the median"),
    ({"cluster_overdoses": "1"}, "cluster_overdoses",
     "A whole number of overdoses between 2 and 100."),
    ({"cluster_window_seconds-min": "5", "cluster_window_seconds-sec": "0"},
     "cluster_window_seconds", "Between 10:00 and 168:00:00"),
    ({"hat_poss_withhold": "3", "hat_poss_console": "2"}, "hat_poss_console",
     "Must be at least the POSS score that withholds a dose (3)"),
    ({"hat_missed_hold_days": "4", "hat_missed_retitrate_days": "3"},
     "hat_missed_retitrate_days", "Must be at least the missed days that hold dosing (4)"),
], ids=["sessions", "cap", "single dose", "blank", "poss", "factor below", "factor in words",
        "overdoses", "window", "console below withhold", "re-titrate before hold"])
def test_a_bad_hat_or_alert_setting_is_refused_and_what_was_typed_stays(
        client, auth, east, inputs, name, message):
    auth.login("ada")
    typed = {"hat_min_interval_minutes": "240", "alert_valid_for_days": "30",
             "hat_take_home_allowed": "true", **inputs}
    sent = page_form(client.get(URL).get_data(as_text=True))
    sent.update({input_name: [value] for input_name, value in typed.items()})
    response = auth.post(URL, sent)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert error_under(html, name).startswith(message)
    assert "Nothing was saved" in html
    sent.pop("next", None)  # the page header's sign-out form, not the settings panel
    assert page_form(html) == sent  # every input as it was sent, not only the bad one
    site = stored(east["site"])
    assert (site.hat_min_interval_minutes, site.alert_valid_for_days,
            site.hat_take_home_allowed) == (180, 14, False)
    assert db.session.execute(db.select(AuditEvent).filter_by(
        action="settings_updated")).first() is None


# --- The compassion club's settings -----------------------------------------------------------


def test_the_club_settings_are_saved_from_the_page_in_grams_and_lines_and_audited(
        client, auth, east):
    auth.login("ada")
    form = page_form(client.get(URL).get_data(as_text=True))
    assert form["compassion_weekly_limit_mg"] == ["14"]  # 14 g, kept as 14000 mg
    assert "Between 0.1 and 100 g in 7 days; default 14" in text_of(
        client.get(URL).get_data(as_text=True))
    response = save(client, auth, compassion_weekly_limit_mg="10.5",
                    compassion_daily_limit_mg="2", compassion_pickups_per_day="3",
                    compassion_linkage_review_days="60", compassion_survey_days="30",
                    compassion_take_home_allowed="true", compassion_rollover_allowed="true",
                    compassion_pickup_windows=" 14:00-16:00,09:00-11:00 ",
                    compassion_waived_steps=["naloxone_training"],
                    compassion_eligibility="current_use: Uses heroin now\n\nLives in the city",
                    compassion_substance_limits_mg="heroin: 7\nCocaine: 2.5 g")
    assert response.status_code == 200, response.get_data(as_text=True)
    site = stored(east["site"])
    assert (site.compassion_weekly_limit_mg, site.compassion_daily_limit_mg,
            site.compassion_pickups_per_day, site.compassion_linkage_review_days,
            site.compassion_survey_days, site.compassion_take_home_allowed,
            site.compassion_rollover_allowed) == (10500, 2000, 3, 60, 30, True, True)
    assert site.compassion_pickup_windows == ["14:00-16:00", "09:00-11:00"]
    assert site.compassion_waived_steps == ["naloxone_training"]
    assert site.compassion_eligibility == [["current_use", "Uses heroin now"],
                                           ["lives_in_the_city", "Lives in the city"]]
    assert site.compassion_substance_limits_mg == {"heroin": 7000, "cocaine": 2500}
    html = response.get_data(as_text=True)
    saved = text_of(re.search(r'data-testid="settings-saved">(.*?)</div>', html, re.S).group(1))
    assert "Limit a week: 14 g in 7 days → 10.5 g in 7 days" in saved
    assert "Limit a day: 0 g a day → 2 g a day" in saved
    assert "Pickup windows: any time → 14:00-16:00, 09:00-11:00" in saved
    assert "Steps the site waives: none → Naloxone and overdose training" in saved
    assert "Eligibility checklist: the default list → Uses heroin now; Lives in the city" in saved
    assert "Limit a week, by substance: none → heroin 7 g; cocaine 2.5 g" in saved
    event = db.session.execute(db.select(AuditEvent).filter_by(
        action="settings_updated")).scalar_one()
    assert event.detail["compassion_weekly_limit_mg"] == {"from": 14000, "to": 10500}
    assert event.detail["compassion_waived_steps"] == {"from": None,
                                                       "to": ["naloxone_training"]}
    assert event.detail["compassion_substance_limits_mg"] == {
        "from": None, "to": {"heroin": 7000, "cocaine": 2500}}
    assert len(event.detail) == 11
    shown = page_form(html)
    assert shown["compassion_weekly_limit_mg"] == ["10.5"]
    assert shown["compassion_waived_steps"] == ["naloxone_training"]
    assert shown["compassion_eligibility"] == [
        "current_use: Uses heroin now\nlives_in_the_city: Lives in the city"]
    assert shown["compassion_substance_limits_mg"] == ["heroin: 7\ncocaine: 2.5"]
    # Saving the page as it stands changes nothing; unticking every step waives none.
    assert "Nothing changed" in save(client, auth).get_data(as_text=True)
    save(client, auth, compassion_waived_steps=[], compassion_eligibility="",
         compassion_substance_limits_mg="", compassion_pickup_windows="")
    site = stored(east["site"])
    assert (site.compassion_waived_steps, site.compassion_eligibility,
            site.compassion_substance_limits_mg, site.compassion_pickup_windows) == (
        None, None, None, None)


CAPS_MESSAGE = ("One line a substance, \"substance: grams\", e.g. \"heroin: 7\": grams from "
                "0.001 to 100, at most 3 decimals.")


@pytest.mark.parametrize(("inputs", "name", "message"), [
    ({"compassion_weekly_limit_mg": "0.05"}, "compassion_weekly_limit_mg",
     "A number between 0.1 and 100 g in 7 days, decimals allowed, at most 3 decimals (e.g. "
     "14)."),
    ({"compassion_weekly_limit_mg": "1.0005"}, "compassion_weekly_limit_mg",
     "A number between 0.1 and 100 g in 7 days"),
    ({"compassion_daily_limit_mg": "a lot"}, "compassion_daily_limit_mg",
     "A number between 0 and 100 g a day"),
    ({"compassion_pickups_per_day": "30"}, "compassion_pickups_per_day",
     "A whole number of pickups between 1 and 24."),
    ({"compassion_linkage_review_days": "400"}, "compassion_linkage_review_days",
     "A whole number of days between 7 and 365."),
    ({"compassion_survey_days": "5"}, "compassion_survey_days",
     "A whole number of days between 7 and 365."),
    ({"compassion_rollover_allowed": "maybe"}, "compassion_rollover_allowed",
     "Choose yes or no."),
    ({"compassion_pickup_windows": "09:00-11:00, 10:30-12:00"}, "compassion_pickup_windows",
     "09:00-11:00 and 10:30-12:00 overlap: windows may not overlap."),
    ({"compassion_pickup_windows": "11:00-09:00"}, "compassion_pickup_windows",
     "11:00-09:00: the start must come before the end."),
    ({"compassion_pickup_windows": "9-11"}, "compassion_pickup_windows",
     "\"9-11\" is not a window: write each as HH:MM-HH:MM, e.g. 09:00-11:00."),
    ({"compassion_waived_steps": ["screening", "bribery"]}, "compassion_waived_steps",
     "Choose among the steps listed."),
    ({"compassion_eligibility": "age: Over 19\nage: Over 21"}, "compassion_eligibility",
     "Each item once: two items have the same key."),
    ({"compassion_eligibility": "x" * 201}, "compassion_eligibility",
     "An item's label is at most 200 characters."),
    ({"compassion_substance_limits_mg": "heroin: lots"}, "compassion_substance_limits_mg",
     CAPS_MESSAGE),
    ({"compassion_substance_limits_mg": "heroin: 0"}, "compassion_substance_limits_mg",
     CAPS_MESSAGE),
    ({"compassion_substance_limits_mg": "heroin: 7\nHeroin: 3"},
     "compassion_substance_limits_mg", "Heroin is there twice: one line a substance."),
], ids=["weekly below", "weekly finer than a mg", "daily in words", "pickups", "linkage",
        "survey", "rollover", "windows overlap", "window backwards", "window unreadable",
        "unknown step", "same key twice", "label too long", "cap in words", "cap zero",
        "substance twice"])
def test_a_bad_club_setting_is_refused_under_its_field_and_what_was_typed_stays(
        client, auth, east, inputs, name, message):
    auth.login("ada")
    sent = page_form(client.get(URL).get_data(as_text=True))
    typed = {"compassion_survey_days": "60", "compassion_pickup_windows": "09:00-11:00",
             "compassion_substance_limits_mg": "heroin: 7", **inputs}
    sent.update({key: value if isinstance(value, list) else [value]
                 for key, value in typed.items()})
    response = auth.post(URL, sent)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert error_under(html, name).startswith(message)
    assert "Nothing was saved" in html
    sent.pop("next", None)
    back = page_form(html)
    for key, value in typed.items():
        # The boxes and the yes-or-no show what they know, not what a browser cannot send.
        if key not in ("compassion_waived_steps", "compassion_rollover_allowed"):
            assert back[key] == (value if isinstance(value, list) else [value]), key
    site = stored(east["site"])
    assert (site.compassion_survey_days, site.compassion_pickup_windows) == (91, None)
    assert db.session.execute(db.select(AuditEvent).filter_by(
        action="settings_updated")).first() is None
