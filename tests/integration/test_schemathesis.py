"""schemathesis against the live server: requests generated from the OpenAPI document, for every operation and
with a token of every role, schema-valid and schema-invalid, must never answer 5xx and must answer only what
the document says.

Run alone with ``pytest -m schemathesis``; bounded to a few minutes (``MAX_EXAMPLES`` per operation, role
and mode). The document is read from the server (it is built when the app starts), so the operations are
listed here and a test checks the list against the document.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from tests.conftest import TokenFactory

pytestmark = pytest.mark.schemathesis

MAX_EXAMPLES = 30
TENANT = "schemathesis"
ROLES: dict[str, dict[str, Any]] = {
    "ingest": {"roles": ("ingest",)},
    "auditor-mfa": {"roles": ("auditor",), "mfa": True},  # reports and bundles are exports: MFA
    "security": {"roles": ("security",)},
    "regulatory": {"roles": ("regulatory",)},
    "admin-mfa": {"roles": ("admin",), "mfa": True},
    "witness": {"roles": ("witness",)},
}
OPERATIONS = [
    "GET /health",
    "GET /v1/event-types",
    "POST /v1/events",
    "GET /v1/events",
    "GET /v1/events/{event_id}",
    "GET /v1/items/{dataset}/{item}/provenance",
    "GET /v1/items/{dataset}/{item}/labels",
    "GET /v1/annotators/{actor}/credentials",
    "GET /v1/guidelines",
    "GET /v1/compliance/flags",
    "GET /v1/reports/retention",
    "GET /v1/logs/{log}/proofs/inclusion",
    "GET /v1/logs/{log}/proofs/consistency",
    "GET /v1/logs/{log}/checkpoint",
    "GET /v1/logs/{log}/checkpoints",
    "POST /v1/logs/{log}/cosignatures",
    "GET /v1/keys",
    "GET /v1/bundles",
    "GET /v1/export/fhir",
    "POST /v1/erasures",
    "GET /v1/anomalies",
    "GET /v1/anomalies/{anomaly_id}",
    "POST /v1/anomalies/{anomaly_id}/reviews",
    "GET /v1/reports/access-review",
    "GET /v1/quality/annotators/{actor}",
    "GET /v1/quality/items",
    "GET /v1/releases/{dataset}/{release}/lineage",
    "POST /v1/webhooks/label-studio",
    "POST /v1/webhooks/cvat",
]
# What the document promises: no 5xx, only documented statuses, media types and headers, bodies matching
# their schemas, schema-invalid requests refused, and a token needed where one is documented.
# (positive_data_acceptance is left out: a schema cannot state every rule an event must meet, e.g. that free
# text holds no direct identifier, so a schema-valid event may rightly be refused with 422.)
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.negative_data_rejection,
    openapi_checks.ignored_auth,
]


@pytest.fixture(scope="module")
def api_schema(server_url: str) -> Any:
    """The document the live server serves, loaded as a producer's tool would."""
    schema = schemathesis.openapi.from_url(f"{server_url}/schema/openapi.json")
    # Each test sends its role's token itself; generated (or negated) Authorization headers would replace
    # it. ignored_auth checks that a missing or broken token is refused.
    schema.config.generation.update(with_security_parameters=False)
    return schema


def _operation(api_schema: Any, label: str) -> Any:
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if operation.label == label:
            return operation
    pytest.fail(f"{label} is not in the OpenAPI document")


def _own_tenant(case: Any) -> None:
    """Address generated events to the token's tenant, so that they reach validation and storage
    (an event of another tenant is refused with 403 before anything else is looked at)."""
    body = case.body
    for event in body if isinstance(body, list) else [body]:
        if isinstance(event, dict) and isinstance(event.get("tenant"), str):
            event["tenant"] = TENANT
    if case.headers and "ce-tenant" in case.headers:
        case.headers["ce-tenant"] = TENANT


def test_the_list_of_operations_is_the_document(api_schema: Any) -> None:
    labels = sorted(result.ok().label for result in api_schema.get_all_operations())
    assert labels == sorted(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("label", OPERATIONS)
def test_the_api_answers_as_its_document_says(
    api_schema: Any, label: str, role: str, mode: GenerationMode, token: TokenFactory
) -> None:
    grant = ROLES[role]
    bearer = token(*grant["roles"], tenant=TENANT, mfa=grant.get("mfa", False), subject=f"st-{role}")
    operation = _operation(api_schema, label)
    if mode is GenerationMode.NEGATIVE and not (
        operation.query or operation.path_parameters or operation.body
    ):
        pytest.skip("nothing in this request to make invalid but the token, which ignored_auth covers")

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def answers_as_documented(case: Any) -> None:
        _own_tenant(case)
        case.call_and_validate(headers={"Authorization": f"Bearer {bearer}"}, checks=CHECKS)

    answers_as_documented()
