"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis).

A real server on 127.0.0.1 (the module's ``server`` fixture), signed in with a bearer token of
an operator link; every operation in the schema gets a bounded, derandomised set of generated
requests, valid and invalid, and none may answer with a 5xx.
"""

from __future__ import annotations

import httpx
import pytest

# The `test` extra installs it; without it this module is skipped, saying so.
schemathesis = pytest.importorskip("schemathesis", reason="needs schemathesis (the test extra)")

from hypothesis import HealthCheck, settings  # noqa: E402 - schemathesis brings hypothesis
from schemathesis import Case  # noqa: E402
from schemathesis.schemas import BaseSchema  # noqa: E402

from .conftest import Running  # noqa: E402

MAX_EXAMPLES = 30  # per operation


@pytest.fixture(scope="module")
def api_schema(server: Running) -> BaseSchema:
    _, token = server.auth.links.create("operator", label="fuzz", expires_s=3600)
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{server.base}/openapi.json", headers=headers)
    schema.config.update(base_url=server.base, headers=headers, request_timeout=10)
    schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.timeout(240)
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Case) -> None:
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"


def test_server_still_serves_after_fuzzing(server: Running) -> None:
    assert httpx.get(f"{server.base}/api/health").json()["ok"] is True
    with server.client("viewer") as client:
        status = client.get("/api/status").json()
    assert status["frames_out"] > 0
