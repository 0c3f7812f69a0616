"""Schema fuzzing in CI: schemathesis cases, valid and schema-breaking, for every operation of the
shared test server's OpenAPI schema (`python -m benchmarks.fuzz` runs over a thousand; committed
in benchmarks/results/fuzz.md). None may be answered 500 or above, and the engine lives on."""

from __future__ import annotations

import httpx
import pytest

from tests.fuzzing import fuzz

pytestmark = pytest.mark.slow


def test_no_generated_request_gets_a_5xx_and_the_server_stays_healthy(server):
    report = fuzz(server.url, cases_per_operation=8, clamp=True, api_key=None, admin_key=None)
    assert report.cases >= 40
    assert report.server_errors == []
    assert report.no_answer == []
    # the cases reached the engine, not only the validators
    assert sum(c[200] for c in report.statuses.values()) >= 3
    assert httpx.get(f"{server.url}/health").status_code == 200
