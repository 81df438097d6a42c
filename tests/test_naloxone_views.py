"""The naloxone stock page through the test client."""

import pytest
from factories import make_site, make_staff

from srs.extensions import db
from srs.naloxone.models import NaloxoneLot

HTMX = {"HX-Request": "true"}


@pytest.fixture
def site(app):
    return make_site(slug="east", name="East")


def test_the_stock_page_receives_and_refuses(client, auth, site):
    make_staff(site, role="supervisor", username="sam")
    auth.login("sam")
    page = client.get(f"/sites/{site.slug}/naloxone")
    assert page.status_code == 200 and "Receive stock" in page.get_data(as_text=True)
    form = {"product": "Naloxone", "form": "ampoule", "strength": "0.4 mg/mL",
            "lot_number": "A1", "quantity": "5"}
    past = auth.post(f"/sites/{site.slug}/naloxone/receive",
                     {**form, "expires_on": "2020-01-01"}, headers=HTMX)
    assert past.status_code == 422 and "expired" in past.get_data(as_text=True)
    ok = auth.post(f"/sites/{site.slug}/naloxone/receive", {**form, "expires_on": "2099-01-01"},
                   headers=HTMX)
    assert ok.status_code == 200 and 'data-testid="lot"' in ok.get_data(as_text=True)
    lot = db.session.execute(db.select(NaloxoneLot)).scalar_one()
    wasted = auth.post(f"/sites/{site.slug}/naloxone/lots/{lot.id}/movements",
                       {"kind": "wasted", "quantity": "2", "reason": "Dropped"}, headers=HTMX)
    assert wasted.status_code == 200 and "balances" in wasted.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(NaloxoneLot, lot.id).quantity == 3
