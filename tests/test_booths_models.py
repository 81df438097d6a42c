"""Clients are codes: gender and birth year come from the code itself."""

import pytest
from factories import make_booth, make_client, make_site

from srs.booths.models import BoothState
from srs.clients.models import parse_client_code
from srs.common import utcnow


@pytest.mark.parametrize(("code", "gender", "year"), [
    ("F-ABCD-1984", "female", 1984),
    ("M-WXYZ-2001", "male", 2001),
    ("TM-ABCD-1990", "trans male", 1990),
    ("TF-ABCD-1975", "trans female", 1975),
    ("X-ABCD-1968", "other", 1968),
    ("Q-ABCD-1984", None, 1984),
    ("ABCD1984", None, None),
])
def test_code_gives_gender_and_birth_year(code, gender, year):
    assert parse_client_code(code) == (gender, year)


def test_a_new_client_takes_gender_and_birth_year_from_its_code(app):
    client = make_client(make_site(), code="TF-KLMN-1979", handle="Sunny")
    assert (client.gender, client.birth_year, client.handle) == ("trans female", 1979, "Sunny")


def test_booth_state_is_derived_never_stored(app):
    site = make_site()
    booth = make_booth(site)
    assert booth.state_with(None) is BoothState.AVAILABLE
    booth.needs_cleaning_since = utcnow()
    assert booth.state_with(None) is BoothState.NEEDS_CLEANING
    booth.out_of_service_reason = "Sharps bin full"
    assert booth.state_with(None) is BoothState.OUT_OF_SERVICE
    assert booth.state_with(object()) is BoothState.OCCUPIED
