"""Schemathesis over /api/v1/openapi.json, once per role: whatever an integrator sends, the
answer is one the document promises (a documented status, a body that fits its schema, its
content type), and never a server error.

Each role calls every operation of the seeded floor (booths, visits, an alert, an overdose
response, an incident, naloxone stock, a referral, a display) with the floor's real ids in
the path, so the calls reach the services rather than stopping at a 404: first with data the
document says is valid, then with data it says is not. Each operation starts again from the
seeded floor. The examples are few and derandomized: the run is the same every time and
costs seconds, not minutes.
"""

from dataclasses import dataclass, field

import pytest
import schemathesis
from conftest import rolled_back
from factories import make_controlled_loss, make_referral, make_rule, make_staff
from hypothesis import HealthCheck, given, settings
from routes import (
    ORG_ADMIN_ONLY,
    OTHER_SITE,
    make_drug_alert,
    make_kit,
    make_take_home,
)
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from srs.api.access import GATEWAY, PUBLIC
from srs.auth.access import ORG_ADMIN
from srs.auth.models import Role
from srs.auth.service import tokens_of

# A token with no role at the seeded site (every role, at another site).
NO_ROLE = "no role at the site"
CALLERS = (Role.NURSE.value, Role.SUPERVISOR.value, Role.REVIEWER.value, Role.ADMIN.value,
           NO_ROLE, ORG_ADMIN_ONLY)
# No 5xx; and the status documented, the body fitting its schema, the content type and the
# headers the document gives.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
# Examples per operation and mode: fewer where the caller's role is refused before any input
# is read (every one of those answers the same).
EXAMPLES = {GenerationMode.POSITIVE: 4, GenerationMode.NEGATIVE: 4}
REFUSED_EXAMPLES = {GenerationMode.POSITIVE: 1, GenerationMode.NEGATIVE: 1}
# The one health check that reads the clock: on a busy machine drawing a JSON body can
# pass its limit. The others depend only on the (derandomized) data, and hold.
SUPPRESSED = [HealthCheck.too_slow]


@dataclass
class Tally:
    operations: int = 0
    cases: int = 0
    server_errors: list = field(default_factory=list)
    violations: list = field(default_factory=list)

    def summary(self, caller: str) -> str:
        return (f"{caller}: {self.operations} operations, {self.cases} cases, "
                f"{len(self.server_errors)} with a server error, "
                f"{len(self.violations)} with a schema violation")


@pytest.fixture(scope="module")
def fuzz_floor(shared_apps, kept_floor):
    """The matrices' floor plus a referral, and every path parameter's real value."""
    with rolled_back(shared_apps.get()):
        floor = kept_floor.load()
        referral = make_referral(floor.visits["observing"])
        ids = {"site_id": floor.site.id, "booth_id": floor.booth.id,
               "visit_id": floor.visits["in_booth"].id, "alert_id": floor.alert.id,
               "incident_id": floor.incident.id, "referral_id": referral.id,
               "rule_id": make_rule(floor.site).id,
               "client_id": floor.visits["waiting"].client_id,
               "response_id": floor.url_values["response_id"],
               "display_id": floor.url_values["display_id"],
               "lot_id": floor.url_values["lot_id"],
               # A kit given out, whose use can be reported.
               "kit_id": make_kit(floor, issued=True).id,
               # One person's token: theirs to revoke, an admin's at the site, no one else's.
               "token_id": tokens_of(floor.everyone)[0].id,
               # A nurse of the site whom any admin change may befall.
               "staff_id": make_staff(floor.site, role=Role.NURSE).id,
               "drug_alert_id": make_drug_alert(floor.site).id,
               "enrolment_id": floor.url_values["enrolment_id"],
               "member_id": floor.url_values["member_id"],
               # A controlled-drug count that found a loss, still to report.
               "count_id": make_controlled_loss(floor.site).id,
               # Take-home doses authorised for the floor's treatment patient, to give out.
               "take_home_id": make_take_home(floor).id}
        yield kept_floor, ids


def _path_parameters(operation, ids: dict) -> dict:
    names = [p.name for p in operation.path_parameters]
    missing = [name for name in names if name not in ids]
    assert not missing, f"{operation.label}: no seeded value for {missing}: add one"
    return {name: ids[name] for name in names}


def _may_call(app, operation, caller: str, path_parameters: dict) -> bool:
    """Whether the operation's declaration (``srs_roles``) lets ``caller`` in at the site."""
    path = operation.path.format(**path_parameters)
    endpoint, _ = app.url_map.bind("localhost").match(path, method=operation.method.upper())
    roles = app.view_functions[endpoint].srs_roles
    if roles in (PUBLIC, GATEWAY):  # anyone; the gateway's own token, which no caller holds
        return roles == PUBLIC
    if roles == ORG_ADMIN:
        return caller == ORG_ADMIN_ONLY
    if caller == ORG_ADMIN_ONLY and isinstance(roles, frozenset):  # no role at any site
        return False
    if isinstance(roles, frozenset):
        return caller in roles
    return caller != NO_ROLE or "site_id" not in path_parameters  # any staff member


def _fuzz(operation, mode, examples: int, *, client, headers, path_parameters,
          tally: Tally) -> None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=SUPPRESSED)
    @given(case=strategy)
    def run(case):
        tally.cases += 1
        where = f"{operation.label} [{mode.value}]"
        try:
            response = case.call(session=client, headers=headers)
        except Exception as error:  # the app raised: under TESTING nothing turns it into a 500
            tally.server_errors.append(f"{where}: {type(error).__name__}: {error}")
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:  # one entry per case and kind, naming each failure
            for found, failures in (
                    (tally.server_errors, [f for f in group.exceptions
                                           if isinstance(f, ServerError)]),
                    (tally.violations, [f for f in group.exceptions
                                        if not isinstance(f, ServerError)])):
                if failures:
                    found.append("; ".join(sorted(
                        f"{where}: {response.status_code} {failure.title}: "
                        f"{(failure.message or '').splitlines()[0]}" for failure in failures)))

    run()


@pytest.mark.parametrize("caller", CALLERS)
def test_every_answer_is_documented_and_none_is_a_server_error(app, fuzz_floor, caller):
    kept_floor, ids = fuzz_floor
    token = kept_floor.tokens[OTHER_SITE if caller == NO_ROLE else caller]
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    client = app.test_client()
    tally = Tally()
    for result in schema.get_all_operations():
        operation = result.ok()
        tally.operations += 1
        path_parameters = _path_parameters(operation, ids)
        may_call = _may_call(app, operation, caller, path_parameters)
        for mode, examples in (EXAMPLES if may_call else REFUSED_EXAMPLES).items():
            # Each operation starts from the seeded floor: what one changed, the next never sees.
            with rolled_back(app):
                _fuzz(operation, mode, examples, client=client, headers=token,
                      path_parameters=path_parameters, tally=tally)
    problems = sorted(set(tally.server_errors)) + sorted(set(tally.violations))
    print(tally.summary(caller), *problems, sep="\n")  # pytest shows it when the test fails
    assert not tally.server_errors and not tally.violations, (
        tally.summary(caller) + "\n" + "\n".join(problems[:20]))
