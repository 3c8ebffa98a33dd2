"""Schemathesis against both OpenAPI documents: the document is the contract, the server keeps it.

For every operation, Schemathesis generates requests from the document, with real credentials (a
mini-program session token, an API key). Requests the document allows (positive) must be accepted: no
400/413/415/422, only answers that depend on what exists (401 for a wx.login code WeChat never issued,
404 for an unknown user or template, 409 for a missing grant or a reused Idempotency-Key). Requests the
document forbids (negative) and allowed ones alike must get a status the document lists, with the
Content-Type, headers and body its schemas describe, and never a 5xx. (Negative requests are not all
required to be refused: Schemathesis also negates the Authorization header, which the test replaces.)

Examples are bounded and derandomized, so a run is reproducible and takes seconds.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.test_mp_api import bearer, login

EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# What a well-formed request may still get: it depends on what exists, not on the request's shape.
ACCEPTED = {
    "/api/mp/session": {200, 401, 403},  # a code WeChat never issued
    "/api/mp/grants": {200, 409},  # an Idempotency-Key an earlier example used with another body
    "/messages": {200, 202, 404, 409},
    "/messages/{id}": {200, 404},
    "/campaigns": {201, 404},  # no template or segment with the generated ids
    "/segments": {201, 409},  # 409: an earlier example took the name
    "/users/{openid}": {200, 201},
    "/users/batch": {200},
    "/attributes/{key}": {200, 201},
}
DEFAULT_ACCEPTED = {200, 404}


def run_operation(app, operation, mode: GenerationMode, headers: dict[str, str], seen: dict) -> str | None:
    """Run one operation's examples; the first failure's report, or None."""
    accepted = ACCEPTED.get(operation.path, DEFAULT_ACCEPTED)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        # No shrinking: a failure is reported as found, and a failing run stays as short as a passing one.
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        response = case.call(app=app, headers=headers)
        key = (operation.method.upper(), operation.path, mode.value, response.status_code)
        seen[key] = seen.get(key, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=headers)
        if mode is GenerationMode.POSITIVE:
            assert response.status_code in accepted, (
                f"{operation.method.upper()} {operation.path} refused a request its document allows: "
                f"{response.status_code} {response.text[:300]}\nbody={case.body!r} query={case.query!r} "
                f"path={case.path_parameters!r} headers={case.headers!r}"
            )

    try:
        check()
    except Unsatisfiable:
        return None  # nothing about this operation can be made invalid (no parameters, no body)
    except Exception as failure:  # every operation runs; the test reports them all at the end
        return f"{operation.method.upper()} {operation.path}: {failure}"
    return None


def run_document(app, document, mode, headers, skip=()) -> dict:
    schema = schemathesis.openapi.from_dict(document)
    seen: dict = {}
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in skip:
            failures.append(run_operation(app, operation, mode, headers, seen))
    failures = [failure for failure in failures if failure]
    assert not failures, "\n\n".join(failures)
    return seen


@pytest.fixture
def api_key(app, runner):
    result = runner.invoke(
        args=[
            "create-api-key",
            "contract",
            *("--scope", "send", "--scope", "read", "--scope", "campaigns", "--scope", "users"),
        ]
    )
    return result.output.strip().splitlines()[-1]


# One declared attribute of each type, so the users' schemas hold every kind of value.
DECLARED = {
    "tongzhi_contract_text": "string",
    "tongzhi_contract_number": "number",
    "tongzhi_contract_flag": "bool",
    "tongzhi_contract_day": "date",
    "tongzhi_contract_instant": "datetime",
}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_the_mini_program_api_keeps_its_document(app, client, sandbox, mode):
    token, _ = login(client, sandbox)
    document = client.get("/api/mp/openapi.json").get_json()
    seen = run_document(app, document, mode, bearer(token), skip={"/api/mp/openapi.json"})
    if mode is GenerationMode.POSITIVE:
        # Well-formed reports and settings were recorded, not just answered.
        for operation in (
            ("POST", "/api/mp/grants"),
            ("POST", "/api/mp/settings"),
            ("GET", "/api/mp/grants"),
        ):
            assert seen.get((*operation, "positive", 200), 0) >= EXAMPLES // 4, seen
    assert len(seen) >= 6, seen


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_the_server_api_keeps_its_document(app, client, api_key, mode):
    headers = {"Authorization": f"Bearer {api_key}"}
    for key, kind in DECLARED.items():
        assert (
            client.put(f"/api/v1/attributes/{key}", json={"type": kind}, headers=headers).status_code == 201
        )
    document = client.get("/api/v1/openapi.json").get_json()
    seen = run_document(app, document, mode, headers)
    if mode is GenerationMode.POSITIVE:
        # Well-formed users were stored, not just answered (any declared attribute, any type).
        stored = sum(seen.get(("PUT", "/users/{openid}", "positive", status), 0) for status in (200, 201))
        assert stored >= EXAMPLES // 4, seen
        assert seen.get(("POST", "/users/batch", "positive", 200), 0) >= EXAMPLES // 4, seen
    assert len(seen) >= 2, seen
