"""``flask --app app srs alerts ...``: the SMS gateway's token, and pushing the outbox to a
gateway that does not pull.

``send --url URL`` POSTs the queued texts, up to 100 at a time, as JSON::

    {"messages": [{"id": 12, "to": "+15551234567", "body": "Drug Alert - ..."}]}

with ``Authorization: Bearer TOKEN`` when ``--token`` (or ``SRS_SMS_GATEWAY_TOKEN``) is
given. A 2xx answer marks them sent; an answer ``{"sent": [ids]}`` marks only those. Any
other answer leaves them queued for the next run. Nothing printed or logged holds a number.
"""

import json
import urllib.error
import urllib.request

import click
from flask.cli import AppGroup

from srs.auth.service import Actor
from srs.common import utcnow
from srs.drugchecks import outbox
from srs.extensions import db

alerts_cli = AppGroup("alerts", help="Drug alerts' SMS outbox.")
TIMEOUT_SECONDS = 30


@alerts_cli.command("gateway-token")
def gateway_token():
    """Create the SMS gateway's token and print it once; the one before stops working."""
    click.echo(outbox.new_gateway_token(actor=Actor.system("cli"), now=utcnow()))


def post_batch(url: str, messages: list[dict], token: str | None) -> list[int]:
    """POST one batch; the ids the gateway took. Raises click.ClickException when it
    refuses or cannot be reached (its answer's text is not echoed: it may quote numbers)."""
    body = json.dumps({"messages": [{"id": m["id"], "to": m["to"], "body": m["body"]}
                                    for m in messages]}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
            text = answer.read()
    except urllib.error.HTTPError as err:
        raise click.ClickException(f"The gateway answered {err.code}: nothing marked sent.") \
            from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise click.ClickException(f"The gateway could not be reached ({type(reason).__name__})"
                                   f": nothing marked sent.") from None
    sent = [m["id"] for m in messages]
    try:
        taken = json.loads(text or b"null")
    except ValueError:
        taken = None
    if isinstance(taken, dict) and isinstance(taken.get("sent"), list):
        sent = [i for i in sent if i in set(taken["sent"])]
    return sent


@alerts_cli.command("send")
@click.option("--url", required=True, help="The gateway's URL that takes a batch of texts.")
@click.option("--token", envvar="SRS_SMS_GATEWAY_TOKEN", default=None,
              help="A bearer token the gateway expects (or SRS_SMS_GATEWAY_TOKEN).")
def send(url, token):
    """POST every queued text to the gateway at URL and mark those it took as sent."""
    total = 0
    while True:
        messages = outbox.queued_messages()
        db.session.rollback()  # nothing held open while the gateway answers
        if not messages:
            break
        sent = post_batch(url, messages, token)
        total += outbox.mark_sent(sent, now=utcnow())
        if len(sent) < len(messages):
            break  # the gateway kept some back: try those on the next run
    click.echo(f"Sent {total} message{'s' if total != 1 else ''}.")
