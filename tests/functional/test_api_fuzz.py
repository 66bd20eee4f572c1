"""The OpenAPI surface fuzzed with schemathesis (Hypothesis-generated requests from the
document, any shape of body, query and path) against the real app, PostgreSQL and the Shopify
emulator (the ``live`` fixture's wiring; jobs run inline): with a valid
session token, no request may get a 5xx, and every refusal is a 4xx with a JSON body.

(Driven through ``get_all_operations`` and Hypothesis directly: schemathesis's pytest plugin
does not run on this pytest version.)"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

EXAMPLES = 20  # per operation


def test_no_request_gets_a_server_error(live):
    from entrypoints.wsgi import create_app

    live.install()
    app = create_app(container=live.container)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def no_server_error(case):
            token = live.emulator.mint_session_token(live.shop)
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            where = f"{case.method} {case.formatted_path} {case.body!r:.200}"
            assert response.status_code < 500, (where, response.status_code, response.text[:500])
            if response.status_code >= 400:
                kind = {k.lower(): v for k, v in response.headers.items()}.get("content-type")
                assert kind and str(kind).find("application/json") >= 0, (where, kind)

        no_server_error()
