"""The OpenAPI 3 document of ``/api/mp/``, served at ``/api/mp/openapi.json``.

Written by hand next to the views; ``tests/api/test_openapi.py`` checks every path, method and status
here against the URL map and against real responses, and every ``/api/mp/`` route against this file.
"""

from __future__ import annotations

from typing import Any

from ..models.grants import PROMPT_STATUSES
from .errors import ERROR_SCHEMA

ERROR_CODES = {
    400: "The body is not JSON (`invalid_json`), or the Idempotency-Key header is malformed (`invalid_idempotency_key`).",
    401: "No token (`token_missing`), a forged or malformed one (`token_invalid`), an expired one "
    "(`token_expired`); on login, a wrong, used or expired wx.login code (`login_code_invalid`).",
    403: "A genuine token issued for another mini-program (`token_wrong_app`); on login, a user WeChat "
    "blocks (`login_blocked`, errcode 40226).",
    404: "The template is known neither to this user nor to the catalog (`unknown_template`).",
    409: "The Idempotency-Key was already used with a different body (`idempotency_key_reused`).",
    413: "The body is larger than MP_MAX_BODY_BYTES (`body_too_large`).",
    422: "JSON of the wrong shape: not an object (`invalid_body`), a field of the wrong type "
    "(`invalid_field`), a failed prompt (`prompt_failed`), an unknown status (`invalid_status`), "
    "a malformed template id (`invalid_template_id`), no template (`no_templates`), more than "
    "MP_REPORT_MAX_TEMPLATES (`too_many_templates`), too many settings (`too_many_items`).",
    429: "Too many requests from this address or for this token (`rate_limited`); see Retry-After.",
    503: "WeChat or the database is unavailable for a moment (`wechat_unavailable`, `unavailable`); "
    "retry after Retry-After seconds.",
}


def _error(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_CODES[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if status in (429, 503):
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}}
    return response


def _ok(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    return {"200": ok, **{str(status): _error(status) for status in errors}}


def _json_body(schema: str, description: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }
    if description:
        body["description"] = description
    return body


BEARER = [{"token": []}]


def openapi_document() -> dict[str, Any]:
    statuses = list(PROMPT_STATUSES)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Tongzhi mini-program API",
            "version": "1",
            "description": (
                "What the mini-program calls: log a user in, report what they answered to a "
                "subscribe prompt, report their subscription settings, read their balances. "
                'Every error is JSON `{"error": {"code", "message"}}` (a `field` names the culprit '
                "when there is one). An unknown path under /api/mp/ answers 404 `not_found` and a wrong "
                "method 405 `method_not_allowed`, in the same shape."
            ),
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token from POST /api/mp/session. Opaque; log in again on 401.",
                }
            },
            "schemas": {
                "Error": ERROR_SCHEMA,
                "Ping": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}},
                "Login": {
                    "type": "object",
                    "required": ["code"],
                    "properties": {
                        "code": {"type": "string", "maxLength": 128, "description": "from wx.login"}
                    },
                },
                "Session": {
                    "type": "object",
                    "required": ["token", "expires_in"],
                    "properties": {
                        "token": {"type": "string"},
                        "expires_in": {"type": "integer", "description": "seconds"},
                    },
                },
                "Grant": {
                    "type": "object",
                    "required": ["template_id", "kind", "credits", "active"],
                    "properties": {
                        "template_id": {"type": "string"},
                        "kind": {"type": "string", "enum": ["one_time", "long_term"]},
                        "credits": {"type": "integer", "minimum": 0},
                        "active": {
                            "type": "boolean",
                            "description": "A send may go ahead: credits left (one-time) or active (long-term).",
                        },
                        "known": {"type": "boolean", "description": "The template is in Tongzhi's catalog."},
                    },
                },
                "Grants": {
                    "type": "object",
                    "required": ["grants"],
                    "properties": {
                        "grants": {"type": "array", "items": {"$ref": "#/components/schemas/Grant"}}
                    },
                },
                "SubscribeResult": {
                    "type": "object",
                    "description": (
                        "The success object of wx.requestSubscribeMessage as it is, plus optional "
                        "scene and page: every other key is a template id with its status."
                    ),
                    "required": ["errMsg"],
                    "properties": {
                        "errMsg": {"type": "string", "enum": ["requestSubscribeMessage:ok"]},
                        "scene": {"oneOf": [{"type": "string", "maxLength": 64}, {"type": "integer"}]},
                        "page": {"type": "string", "maxLength": 512},
                    },
                    "additionalProperties": {"type": "string", "enum": statuses},
                },
                "SubscriptionsSetting": {
                    "type": "object",
                    "description": (
                        "subscriptionsSetting from wx.getSetting({withSubscriptions: true}), bare or as "
                        '{"subscriptionsSetting": {...}}.'
                    ),
                    "required": ["mainSwitch"],
                    "properties": {
                        "mainSwitch": {"type": "boolean"},
                        "itemSettings": {
                            "type": "object",
                            "additionalProperties": {"type": "string", "enum": statuses},
                        },
                    },
                    "additionalProperties": True,
                },
                "Settings": {
                    "type": "object",
                    "required": ["main_switch", "item_settings"],
                    "properties": {
                        "main_switch": {"type": "boolean"},
                        "item_settings": {
                            "type": "object",
                            "additionalProperties": {"type": "string", "enum": statuses},
                        },
                    },
                },
            },
        },
        "paths": {
            "/api/mp/ping": {
                "get": {
                    "summary": "Is the API up? (a trivial answer)",
                    "operationId": "ping",
                    "responses": _responses(_ok("Up.", "Ping"), 413, 429),
                }
            },
            "/api/mp/session": {
                "post": {
                    "summary": "Log a user in with a wx.login code (code2Session); returns a session token.",
                    "operationId": "createSession",
                    "requestBody": _json_body("Login"),
                    "responses": _responses(
                        _ok("The token, bound to the user's openid.", "Session"),
                        400,
                        401,
                        403,
                        413,
                        422,
                        429,
                        503,
                    ),
                }
            },
            "/api/mp/grants": {
                "get": {
                    "summary": "The user's balance for every template they answered.",
                    "operationId": "listGrants",
                    "security": BEARER,
                    "responses": _responses(_ok("Balances.", "Grants"), 401, 403, 413, 429, 503),
                },
                "post": {
                    "summary": "Report what the user answered to wx.requestSubscribeMessage.",
                    "description": (
                        "Recorded in the grant ledger once: the same Idempotency-Key with the same body "
                        "changes nothing and answers the balances again (header Idempotent-Replayed: true). "
                        "Unknown template ids are recorded and flagged (`known`: false)."
                    ),
                    "operationId": "reportGrants",
                    "security": BEARER,
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 128},
                            "description": "One key per prompt; reuse it when retrying the same report.",
                        }
                    ],
                    "requestBody": _json_body("SubscribeResult"),
                    "responses": _responses(
                        _ok("The user's balances after the report.", "Grants"),
                        400,
                        401,
                        403,
                        409,
                        413,
                        422,
                        429,
                        503,
                    ),
                },
            },
            "/api/mp/grants/{template_id}": {
                "get": {
                    "summary": "The user's balance for one template.",
                    "operationId": "showGrant",
                    "security": BEARER,
                    "parameters": [
                        {"name": "template_id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": _responses(_ok("The balance.", "Grant"), 401, 403, 404, 413, 429, 503),
                }
            },
            "/api/mp/settings": {
                "post": {
                    "summary": "Report the user's subscription settings (main switch, 'always' choices).",
                    "operationId": "reportSettings",
                    "security": BEARER,
                    "requestBody": _json_body("SubscriptionsSetting"),
                    "responses": _responses(
                        _ok("What was recorded.", "Settings"), 400, 401, 403, 413, 422, 429, 503
                    ),
                }
            },
            "/api/mp/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "operationId": "openapi",
                    "responses": {
                        "200": {"description": "OpenAPI 3 document.", "content": {"application/json": {}}},
                        "413": _error(413),
                        "429": _error(429),
                    },
                }
            },
        },
    }
