"""Small keyword factories for test data. Each commits and returns the model."""

import itertools

from srs.auth import service as auth
from srs.booths.models import Booth, Client
from srs.extensions import db
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


def make_client(*, code: str | None = None, handle: str | None = None) -> Client:
    n = next(_seq)
    letters = "".join(chr(65 + (n // 26 ** i) % 26) for i in range(4))
    client = Client(code=code or f"F-{letters}-1984", handle=handle)
    db.session.add(client)
    db.session.commit()
    return client
