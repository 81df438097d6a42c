"""Small keyword factories for test data. Each commits and returns the model."""

import itertools
from datetime import UTC, date, datetime

from srs.auth import service as auth
from srs.booths.models import Booth
from srs.clients.models import Client
from srs.controlled import service as controlled
from srs.extensions import db
from srs.naloxone import service as naloxone
from srs.naloxone.models import NaloxoneLot, StockMovement
from srs.sites.models import Site

PASSWORD = "correct horse battery"
PIN = "246813"
_seq = itertools.count(1)
ACTOR = auth.Actor.system("test")


def make_site(*, name: str | None = None, slug: str | None = None, booths: int = 0,
              **settings) -> Site:
    n = next(_seq)
    site = Site(name=name or f"Site {n}", slug=slug or f"site-{n}", timezone="America/Toronto",
                **settings)
    db.session.add(site)
    db.session.flush()
    for position in range(booths):
        kind = "inhalation" if position >= booths - 1 and booths > 1 else "injection"
        db.session.add(Booth(site_id=site.id, label=f"B{position + 1}", kind=kind,
                             position=position))
    db.session.commit()
    return site


def make_booth(site: Site, *, label: str | None = None, kind: str = "injection",
               position: int = 0, out_of_service_reason: str | None = None) -> Booth:
    booth = Booth(site_id=site.id, label=label or f"X{next(_seq)}", kind=kind, position=position,
                  out_of_service_reason=out_of_service_reason)
    db.session.add(booth)
    db.session.commit()
    return booth


def make_staff(site: Site | None = None, *, role: str = "nurse", username: str | None = None,
               password: str = PASSWORD, pin: str | None = PIN, roles=None):
    """A staff member with ``role`` at ``site`` (or the (site, role) pairs in ``roles``)."""
    pairs = roles if roles is not None else ([(site, role)] if site is not None else [])
    return auth.create_staff(username or f"{role}{next(_seq)}", display_name=None,
                             password=password, pin=pin, roles=pairs, actor=ACTOR)


def make_client(site: Site, *, code: str | None = None, handle: str | None = None) -> Client:
    """A client of ``site`` (another site's client of the same code is another record)."""
    n = next(_seq)
    letters = "".join(chr(65 + (n // 26 ** i) % 26) for i in range(4))
    client = Client(site_id=site.id, code=code or f"F-{letters}-1984", handle=handle)
    db.session.add(client)
    db.session.commit()
    return client


def make_lot(site: Site, actor=ACTOR, *, now: datetime, form: str = "ampoule",
             lot: str = "A1", expires: date = date(2027, 6, 1), quantity: int = 5):
    """Naloxone received into a lot through the stock service, its ledger row with it."""
    return naloxone.receive_stock(site, {
        "product": "Naloxone HCl", "form": form, "strength": "0.4 mg/mL", "lot_number": lot,
        "expires_on": expires, "quantity": quantity}, actor=actor, now=now)


def ledger_balances(site: Site) -> bool:
    """Whether every naloxone lot of the site holds what the sum of its ledger says."""
    for lot in db.session.execute(db.select(NaloxoneLot).filter_by(site_id=site.id)).scalars():
        total = db.session.scalar(db.select(db.func.sum(StockMovement.delta)).filter_by(
            lot_id=lot.id)) or 0
        if total != lot.quantity:
            return False
    return True


def make_service(site: Site, *, service_type: str = "oat", name: str | None = None,
                 on_site: bool = False, active: bool = True):
    """A directory entry for referrals."""
    from srs.referrals.models import Service

    service = Service(site_id=site.id, name=name or f"Service {next(_seq)}",
                      service_type=service_type, on_site=on_site, active=active)
    db.session.add(service)
    db.session.commit()
    return service


def make_rule(site: Site, *, key: str = "often-here", service_type: str = "peer_support",
              condition: dict | None = None, reason_template: str = "{visits} visits",
              priority: int = 30, reoffer_days: int = 30):
    """A referral rule (version 1), written directly: no audit event, no announcement."""
    from srs.common import utcnow
    from srs.referrals.models import ReferralRule

    rule = ReferralRule(site_id=site.id, key=key, version=1, name=key.replace("-", " "),
                        condition=condition or {"fact": "visits", "days": 30, "op": ">=",
                                                "value": 8},
                        service_type=service_type, reason_template=reason_template,
                        priority=priority, reoffer_days=reoffer_days, active=True,
                        created_at=utcnow())
    db.session.add(rule)
    db.session.commit()
    return rule


def make_referral(visit, *, service=None, service_type: str = "oat", at=None,
                  follow_up_days: int = 7, outcome: str | None = None):
    """An accepted offer in ``visit`` and its referral, written directly (no audit event)."""
    from datetime import timedelta

    from srs.common import utcnow
    from srs.referrals.models import Referral, ReferralOffer

    at = at or utcnow()
    site = db.session.get(Site, visit.site_id)
    service = service or make_service(site, service_type=service_type)
    offer = ReferralOffer(site_id=site.id, visit_id=visit.id, client_id=visit.client_id,
                          service_type=service.service_type, status="accepted", offered_at=at,
                          decided_at=at)
    referral = Referral(site_id=site.id, offer=offer, client_id=visit.client_id,
                        service_id=service.id, consent_given=True, referred_at=at,
                        follow_up_due=at.date() + timedelta(days=follow_up_days),
                        outcome=outcome, outcome_at=at if outcome else None)
    db.session.add_all([offer, referral])
    db.session.commit()
    return referral


def make_submitted_incident(site: Site, reporter, *, now: datetime):
    """A complete complaint report ``reporter`` wrote and submitted for review."""
    from srs.incidents import service as incidents

    actor = auth.Actor.of(reporter)
    incident = incidents.create_incident(site, {
        "type": "complaint", "area": "Front desk", "narrative": "Client complained of wait.",
        "immediate_actions": "Listened."}, actor=actor, now=now)
    incidents.submit_incident(incident, actor=actor, now=now)
    return incident


def make_controlled_drug(site: Site, *, name: str = "Diacetylmorphine",
                         strength: str = "200 mg vial", unit: str = "vial", balance: int = 0,
                         now: datetime | None = None):
    """A controlled-drug register line, with ``balance`` received into it when given."""
    now = now or datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    drug = controlled.create_drug(site, {"name": name, "strength": strength, "unit": unit},
                                  actor=ACTOR, now=now)
    if balance:
        controlled.receive(site, {"drug_id": drug.id, "supplier": "Pharma Ltd",
                                  "invoice": "INV-1", "lot_number": "L1",
                                  "expires_on": date(2099, 1, 1), "quantity": balance},
                           actor=ACTOR, now=now)
    return drug


def make_controlled_loss(site: Site, *, now: datetime | None = None):
    """A count of a new register line that found one unit missing (a loss to report)."""
    now = now or datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    drug = make_controlled_drug(site, name=f"Hydromorphone {next(_seq)}", balance=5, now=now)
    first, second = make_staff(site, role="nurse"), make_staff(site, role="supervisor")
    return controlled.record_count(site, {"drug_id": drug.id, "counted": 4,
                                          "first_id": first.id, "first_pin": PIN,
                                          "second_id": second.id, "second_pin": PIN},
                                   actor=auth.Actor.of(first), now=now)
