"""Hundreds of generated bad requests against every /api/mp/ operation: never a 500, always the
documented JSON error shape with a status the OpenAPI document lists, and never a partial write."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models.grants import GrantEvent, GrantReport
from tests.api.test_mp_api import OK, login
from tests.api.test_openapi import documented

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=20,
)
statuses = st.sampled_from(["accept", "reject", "ban", "filter", "acceptWithAudio", "acceptWithAlert"])
template_ids = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=70
)
# Bodies that are almost reports: right shape, one thing wrong (or nothing wrong at all).
near_reports = st.fixed_dictionaries(
    {"errMsg": st.sampled_from(["requestSubscribeMessage:ok", "requestSubscribeMessage:fail", "", 1])},
    optional={"scene": json_values, "page": json_values},
).flatmap(
    lambda base: st.dictionaries(template_ids | st.text(max_size=10), statuses | json_values, max_size=7).map(
        lambda extra: {**base, **extra}
    )
)
raw_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_reports.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
)
auth_headers = st.one_of(
    st.none(),
    st.just("valid"),
    st.text(max_size=60).filter(lambda s: "\n" not in s and "\r" not in s),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", max_size=120).map(lambda s: f"Bearer {s}"),
)
idempotency_keys = st.one_of(
    st.none(), st.text(max_size=140).filter(lambda s: "\n" not in s and "\r" not in s)
)
OPERATIONS = [
    ("POST", "/api/mp/session"),
    ("POST", "/api/mp/grants"),
    ("GET", "/api/mp/grants"),
    ("GET", "/api/mp/grants/{template_id}"),
    ("POST", "/api/mp/settings"),
    ("GET", "/api/mp/ping"),
]


def test_generated_bad_requests_never_get_a_500(app, client, sandbox):
    app.config.update(MP_RATE_LIMIT_PER_IP=0, MP_RATE_LIMIT_PER_TOKEN=0)
    token, _ = login(client, sandbox)
    allowed = documented(client)
    seen: dict[int, int] = {}

    @settings(
        max_examples=400,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
        database=None,
    )
    @given(
        operation=st.sampled_from(OPERATIONS),
        body=raw_bodies,
        auth=auth_headers,
        key=idempotency_keys,
        template_id=template_ids,
        content_type=st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded", None]
        ),
    )
    def check(operation, body, auth, key, template_id, content_type):
        method, path = operation
        headers = {}
        if auth == "valid":
            headers["Authorization"] = f"Bearer {token}"
        elif auth is not None:
            headers["Authorization"] = auth
        if key is not None:
            headers["Idempotency-Key"] = key
        with app.app_context():
            before = db.session.scalar(select(func.count()).select_from(GrantEvent))
        try:
            response = client.open(
                path.replace("{template_id}", template_id),
                method=method,
                headers=headers,
                data=body,
                content_type=content_type,
            )
        except UnicodeEncodeError:
            return  # the test client itself cannot send this header; no server would see it
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, response.get_data(as_text=True)
        assert response.is_json
        if response.status_code >= 400:
            error = response.get_json()["error"]
            assert isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str)
            assert response.status_code in allowed[(path, method)] or response.status_code == 404
            with app.app_context():
                assert db.session.scalar(select(func.count()).select_from(GrantEvent)) == before

    check()
    # The generator reached well beyond the front door.
    assert {400, 401, 422} <= set(seen), seen
    assert sum(seen.values()) >= 300


def test_a_valid_report_among_the_noise_still_works(client, sandbox):
    token, _ = login(client, sandbox)
    response = client.post(
        "/api/mp/grants", json={**OK, "T": "accept"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    with client.application.app_context():
        assert db.session.scalar(select(func.count()).select_from(GrantReport)) == 1
