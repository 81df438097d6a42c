"""Naloxone stock and take-home kits through the JSON API: each operation, each refusal."""

import pytest
from factories import make_site, make_staff
from routes import assert_api_error, bearer

from srs.extensions import db
from srs.naloxone.models import NaloxoneLot, StockMovement

LOT = {"product": "Naloxone HCl", "form": "ampoule", "strength": "0.4 mg/mL",
       "lot_number": "A1", "expires_on": "2099-01-01", "quantity": 10}


@pytest.fixture
def api(client):
    site = make_site(slug="east")
    nurse = make_staff(site, role="nurse", username="nina")
    boss = make_staff(site, role="supervisor", username="sam")
    headers = {"nurse": bearer(nurse), "supervisor": bearer(boss)}

    class Api:
        def post(self, path, json=None, who="nurse"):
            return client.post(f"/api/v1/sites/{site.id}{path}", json=json, headers=headers[who])

        def get(self, path, who="nurse"):
            return client.get(f"/api/v1/sites/{site.id}{path}", headers=headers[who])

    return Api()


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(db.select(db.func.count(model.id)))


def test_stock_receive_list_and_refusals(api):
    received = api.post("/naloxone/lots", LOT, who="supervisor")
    assert received.status_code == 201
    stock = received.get_json()
    assert stock["on_hand"]["ampoule"] == 10 and stock["lots"][0]["lot_number"] == "A1"
    past = api.post("/naloxone/lots", {**LOT, "lot_number": "OLD", "expires_on": "2020-01-01"},
                    who="supervisor")
    assert_api_error(past, 422, "expires_on")
    assert_api_error(api.post("/naloxone/lots", {**LOT, "quantity": 0}, who="supervisor"),
                     422, "quantity")
    assert_api_error(api.post("/naloxone/lots", {**LOT, "form": "pill"}, who="supervisor"),
                     422, "form")
    assert count(NaloxoneLot) == 1 and count(StockMovement) == 1
    listed = api.get("/naloxone", who="supervisor").get_json()
    assert listed["lots"][0]["quantity"] == 10 and listed["threshold"] == 10
    assert_api_error(api.get("/naloxone"), 403)  # nurses do not manage stock


def test_take_home_kits(api):
    kit = api.post("/naloxone/take-home-kits", {"client_code": "m-kits-1990", "form": "nasal",
                                                 "number": 2, "replaces_used": True,
                                                 "training_given": True})
    assert kit.status_code == 201, kit.get_json()
    assert kit.get_json()["client_code"] == "M-KITS-1990" and kit.get_json()["number"] == 2
    assert_api_error(api.post("/naloxone/take-home-kits", {"client_code": "Bob",
                                                           "form": "nasal"}),
                     422, "client_code")
    assert_api_error(api.post("/naloxone/take-home-kits", {"client_code": "M-KITS-1990",
                                                           "form": "pill"}), 422, "form")
    assert_api_error(api.post("/naloxone/take-home-kits", {"client_code": "M-KITS-1990",
                                                           "form": "nasal", "number": 0}),
                     422, "number")
