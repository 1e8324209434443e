"""Every operation, fuzzed from the API's own OpenAPI document, on both databases.

schemathesis generates requests from each operation's schema and checks every answer: never a
5xx, and a status code, content type and body that the document promises. The operations are
read from the app, so a route added in a later part is fuzzed with no change here. Examples
are derandomized and bounded: a CI run is reproducible and short.
"""

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from shelfwise.identity.tokens import Principal
from shelfwise.main import create_app
from shelfwise.platform.settings import Settings
from tests.factories import Tenants

# The root suite (CI) spends 20 per operation and database; a notebook's checks, the
# learner's feedback loop, set fewer through the variable.
EXAMPLES_PER_OPERATION = int(os.environ.get("SHELFWISE_FUZZ_EXAMPLES", "20"))
# The operations as the app documents them; building an app opens no connection.
OPERATIONS = sorted(
    f"{method.upper()} {path}"
    for path, operations in create_app().openapi()["paths"].items()
    for method in operations
)


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_operation_answers_generated_input_as_documented(
    app_settings: Settings, tenants: Tenants, label: str
) -> None:
    # schemathesis runs the app's lifespan itself, on a database of this test's own. Its pytest
    # plugin (one test per operation by itself) does not work with pytest 9.2, hence the loop.
    app = create_app(app_settings)
    # Signed in as tenant A: without a token every tenant route would stop at its 401.
    token = app.state.token_signer.issue(Principal(tenants.a.user_id, tenants.a.id))
    operation = schemathesis.openapi.from_asgi("/openapi.json", app).find_operation_by_label(label)
    assert operation is not None

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def answers_as_documented(case: Any) -> None:
        # Every check but one: an ISBN's checksum, a known currency or an existing book are
        # rules the schema cannot state, so a schema-valid request may get a documented 4xx.
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"},
            excluded_checks=[positive_data_acceptance],
        )

    answers_as_documented()
