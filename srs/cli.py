"""``flask --app app srs ...``: seed the demo, manage staff and tokens, run the scheduler."""

import os
import secrets
import signal
import string
from datetime import timedelta
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from srs.auth import service as auth
from srs.auth.models import Role
from srs.booths.admin import add_booth
from srs.common import utcnow
from srs.drugchecks.commands import alerts_cli
from srs.errors import DomainError
from srs.extensions import db
from srs.naloxone.service import list_stock, receive_stock
from srs.org import service as org
from srs.referrals.service import seed_demo_directory
from srs.sites.models import Site
from srs.sites.service import deactivate_staff as deactivate_site_staff

srs_cli = AppGroup("srs", help="SRS administration.")
user_cli = AppGroup("user", help="Staff accounts.")
token_cli = AppGroup("token", help="API tokens.")
site_cli = AppGroup("site", help="Sites.")
srs_cli.add_command(user_cli)
srs_cli.add_command(token_cli)
srs_cli.add_command(site_cli)
srs_cli.add_command(alerts_cli)

CLI_ACTOR = auth.Actor.system("cli")
DEMO_BOOTHS = [("B1", "injection"), ("B2", "injection"), ("B3", "injection"),
               ("B4", "injection"), ("B5", "injection"), ("B6", "injection"),
               ("S1", "inhalation"), ("S2", "inhalation")]
# The demo's second site, so the supervisor's dashboard shows two: the same people work both.
DEMO_SECOND_SITE = {"name": "Demo North", "slug": "demo-north"}
DEMO_SECOND_BOOTHS = [("N1", "injection"), ("N2", "injection"), ("N3", "injection"),
                      ("NS1", "inhalation")]
DEMO_LOGINS_FILE = "demo-logins.txt"
# Naloxone on the demo's shelf (DOMAIN.md: 0.4 mg/mL ampoules for IM, 4 mg nasal spray): two
# lots of each kind, the first to expire in about four months (the console draws from it
# first), the second in about a year and a half. ``days`` is how long until each expires.
_AMPOULE = {"product": "Naloxone HCl", "form": "ampoule", "strength": "0.4 mg/mL"}
_NASAL = {"product": "Naloxone nasal spray", "form": "nasal_spray", "strength": "4 mg/0.1 mL"}
DEMO_NALOXONE = [
    {**_AMPOULE, "lot_number": "DEMO-A1", "quantity": 20, "days": 120},
    {**_AMPOULE, "lot_number": "DEMO-A2", "quantity": 10, "days": 540},
    {**_NASAL, "lot_number": "DEMO-N1", "quantity": 10, "days": 120},
    {**_NASAL, "lot_number": "DEMO-N2", "quantity": 6, "days": 540},
]
DEMO_SECOND_NALOXONE = [
    {**_AMPOULE, "lot_number": "NORTH-A1", "quantity": 10, "days": 300},
    {**_NASAL, "lot_number": "NORTH-N1", "quantity": 6, "days": 300},
]


def _password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(14))


def _pin() -> str:
    while True:
        pin = "".join(secrets.choice(string.digits) for _ in range(6))
        try:
            return auth.check_pin(pin)
        except DomainError:
            continue


def _fail(err: DomainError):
    details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in err.errors.items())
    raise click.ClickException(details or err.message)


@srs_cli.command("seed-demo")
def seed_demo():
    """Create the demo: two sites with their booths, naloxone, referral directory and rules,
    and one user per role holding it at both; print their logins once."""
    if db.session.execute(db.select(Site).filter_by(slug="demo")).scalar_one_or_none():
        raise click.ClickException("The demo site already exists; nothing was changed.")
    now = utcnow()
    site = _demo_site("Demo Site", "demo", DEMO_BOOTHS, DEMO_NALOXONE, now=now)
    second = _demo_site(DEMO_SECOND_SITE["name"], DEMO_SECOND_SITE["slug"],
                        DEMO_SECOND_BOOTHS, DEMO_SECOND_NALOXONE, now=now)
    lines = []
    for role in Role:
        password, pin = _password(), _pin()
        auth.create_staff(f"demo-{role.value}", display_name=f"Demo {role.value.title()}",
                          password=password, pin=pin,
                          roles=[(site, role.value), (second, role.value)], actor=CLI_ACTOR,
                          org_admin=role == Role.ADMIN)
        lines.append(f"  {role.value:<11} username demo-{role.value:<11} password {password}"
                     f"  PIN {pin}")
    text = (_demo_site_text(site, DEMO_BOOTHS) + _demo_site_text(second, DEMO_SECOND_BOOTHS)
            + "Logins (each holds its role at both sites; demo-admin is also the "
              "organisation admin, who creates sites):\n" + "\n".join(lines) + "\n")
    click.echo(text, nl=False)
    # Kept for `make run` to show again; the demo is for trying SRS, not for real clients.
    instance = Path(current_app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / DEMO_LOGINS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _demo_site(name: str, slug: str, booths, naloxone, *, now) -> Site:
    """One demo site: its booths in the demo's order, the default referral rules and a small
    service directory, and its naloxone lots (each received through the stock service)."""
    site = org.create_site(name=name, slug=slug, timezone="America/Toronto", actor=CLI_ACTOR,
                           now=now).site
    for label, kind in booths:  # each at the end of the board: the demo's order
        add_booth(site, label=label, kind=kind, actor=CLI_ACTOR, now=now)
    seed_demo_directory(site, actor=CLI_ACTOR, now=now)
    today = site.local_date(now)
    for lot in naloxone:
        data = {key: value for key, value in lot.items() if key != "days"}
        receive_stock(site, {**data, "expires_on": today + timedelta(days=lot["days"])},
                      actor=CLI_ACTOR, now=now)
    return site


def _demo_site_text(site: Site, booths) -> str:
    kinds = [kind for _label, kind in booths]
    lots = list_stock(site, now=utcnow())["lots"]
    naloxone = "\n".join(
        f"    {lot.quantity} x {lot.product} {lot.strength} ({lot.form.replace('_', ' ')}),"
        f" lot {lot.lot_number}, expires {lot.expires_on:%d %b %Y}" for lot in lots)
    return (f"Demo site '{site.slug}' ({site.name}) with {len(kinds)} booths "
            f"({kinds.count('injection')} injection, {kinds.count('inhalation')} inhalation), "
            f"referral services and rules. Naloxone on hand:\n{naloxone}\n")


@srs_cli.command("is-empty")
def is_empty():
    """Exit 0 when the database has no site yet (``make run`` seeds the demo then)."""
    has_site = db.session.execute(db.select(Site.id).limit(1)).first() is not None
    raise SystemExit(1 if has_site else 0)


@user_cli.command("create")
@click.argument("username")
@click.option("--role", default=None, type=click.Choice([r.value for r in Role]))
@click.option("--site", "site_slug", default=None, help="The site's slug.")
@click.option("--org-admin", is_flag=True,
              help="An organisation admin: creates sites and names their first admins.")
@click.option("--password", default=None, help="Generated and printed once when omitted.")
@click.option("--pin", default=None, help="6-digit PIN for unlocking a shared tablet.")
@click.option("--name", "display_name", default=None, help="Name shown to colleagues.")
def create_user(username, role, site_slug, org_admin, password, pin, display_name):
    """Create a staff member with a role at a site (--role and --site), an organisation
    admin (--org-admin), or both."""
    if (role is None) != (site_slug is None):
        raise click.UsageError("Give --role and --site together.")
    if role is None and not org_admin:
        raise click.UsageError("Give --role and --site, --org-admin, or both.")
    site = None
    if site_slug is not None:
        site = db.session.execute(db.select(Site).filter_by(slug=site_slug)).scalar_one_or_none()
        if site is None:
            raise click.ClickException(f"No site has the slug {site_slug!r}.")
    generated = password is None
    password = password or _password()
    try:
        staff = auth.create_staff(username, display_name=display_name, password=password,
                                  pin=pin, roles=[(site, role)] if site else [],
                                  actor=CLI_ACTOR, org_admin=org_admin)
    except DomainError as err:
        _fail(err)
    held = [f"{role} at {site.slug}"] if site else []
    held += ["organisation admin"] if org_admin else []
    click.echo(f"Created {staff.username} ({', '.join(held)}).")
    if generated:
        click.echo(f"Password (shown once): {password}")


@site_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="The site's name, as staff see it.")
@click.option("--timezone", required=True, help="IANA time zone, e.g. America/Toronto.")
def create_site_command(slug, name, timezone):
    """Create a site with the default settings and no booths; its admin adds them."""
    try:
        site = org.create_site(name=name, slug=slug, timezone=timezone, actor=CLI_ACTOR,
                               now=utcnow()).site
    except DomainError as err:
        _fail(err)
    click.echo(f"Created site {site.slug!r}: {site.name}, time zone {site.timezone}, default "
               f"settings, no booths.\nName its first admin: flask --app app srs user create "
               f"USERNAME --role admin --site {site.slug}")


@token_cli.command("create")
@click.argument("username")
def create_token(username):
    """Create an API token for USERNAME and print only the token."""
    try:
        staff = auth.staff_by_username(username)
    except DomainError as err:
        _fail(err)
    click.echo(auth.issue_token(staff, actor=CLI_ACTOR))


@token_cli.command("list")
@click.argument("username")
def list_tokens(username):
    """List USERNAME's API tokens: id, prefix, created, last used, revoked (never a value)."""
    try:
        staff = auth.staff_by_username(username)
    except DomainError as err:
        _fail(err)
    for token in auth.tokens_of(staff):
        click.echo(f"{token.id}\t{token.prefix}\tcreated {_when(token.created_at)}"
                   f"\tlast used {_when(token.last_used_at)}\trevoked {_when(token.revoked_at)}")


def _when(at) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:%M UTC")


@token_cli.command("revoke")
@click.option("--id", "token_id", type=int, default=None, help="Revoke this one token.")
@click.option("--user", "username", default=None, help="Revoke every token of USERNAME.")
def revoke_token(token_id, username):
    """Revoke one token (--id, as `srs token list` shows it) or every token of a person
    (--user); their sockets are cut at once."""
    if (token_id is None) == (username is None):
        raise click.UsageError("Say which: --id TOKEN_ID for one token, or --user USERNAME "
                               "for all of a person's tokens.")
    now = utcnow()
    try:
        if token_id is not None:
            token = auth.get_token(token_id)
            was_revoked = token.revoked_at is not None
            auth.revoke_token(token, actor=CLI_ACTOR, now=now)
            click.echo(f"Token {token.id} ({token.prefix}) of {token.staff.username} "
                       f"{'was already revoked' if was_revoked else 'revoked'}.")
        else:
            staff = auth.staff_by_username(username)
            revoked = auth.revoke_tokens(staff, actor=CLI_ACTOR, now=now)
            click.echo(f"Revoked {len(revoked)} token{'s' if len(revoked) != 1 else ''} of "
                       f"{staff.username}.")
    except DomainError as err:
        _fail(err)


@user_cli.command("deactivate")
@click.argument("username")
def deactivate_user(username):
    """Deactivate USERNAME: their logins end, their tokens are revoked, their sockets cut."""
    try:
        staff = auth.staff_by_username(username)
        was_active = staff.active
        off_call = deactivate_site_staff(staff, actor=CLI_ACTOR, now=utcnow())
    except DomainError as err:
        _fail(err)
    click.echo(f"Deactivated {staff.username}." if was_active
               else f"{staff.username} was already inactive.")
    for item in off_call:
        click.echo(f"{staff.username} was on call at {item.site.slug}: nobody is now.")


@user_cli.command("delete")
@click.argument("username")
def delete_user(username):
    """Delete USERNAME: their logins end, their tokens and roles go, their sockets are cut.
    Someone whose name is on records stays as an inactive account with no way to sign in."""
    try:
        staff = auth.staff_by_username(username)
        name = staff.username
        removed = auth.delete_staff(staff, actor=CLI_ACTOR, now=utcnow())
    except DomainError as err:
        _fail(err)
    click.echo(f"Deleted {name}." if removed else
               f"Deleted {name}'s access: roles, password, PIN, logins and tokens. Their name "
               f"stays on the records they made.")


@user_cli.command("remove-role")
@click.argument("username")
@click.argument("site_slug")
@click.argument("role", type=click.Choice([r.value for r in Role]))
def remove_user_role(username, site_slug, role):
    """Take ROLE at the site SITE_SLUG from USERNAME; their sockets are cut. Their last role
    at a site also ends their logins and revokes their tokens."""
    site = db.session.execute(db.select(Site).filter_by(slug=site_slug)).scalar_one_or_none()
    if site is None:
        raise click.ClickException(f"No site has the slug {site_slug!r}.")
    try:
        staff = auth.staff_by_username(username)
        auth.remove_role(staff, site, role, actor=CLI_ACTOR, now=utcnow())
    except DomainError as err:
        _fail(err)
    left = sorted(staff.roles_at(site.id))
    click.echo(f"{staff.username} is no longer {role} at {site.slug}"
               + (f" (still {', '.join(left)})." if left else
                  "; their logins ended and their tokens were revoked."))


@srs_cli.command("scheduler")
def run_scheduler():
    """Run the scheduler alone; wait as a standby while another copy holds the lock."""
    from srs.jobs import SchedulerService

    service = SchedulerService(current_app._get_current_object())

    def stop(_signum, _frame):
        service.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"scheduler pid {os.getpid()}: waiting for the lock", err=True)
    service.run_forever()
