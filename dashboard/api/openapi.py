"""The OpenAPI 3.1 document of ``/api/mp/``, served at ``/api/mp/openapi.json``.

Written by hand next to the views; ``tests/api/test_openapi.py`` checks every path, method and status
here against the URL map and against real responses, and every ``/api/mp/`` route against this file.
``tests/api/test_schemathesis.py`` checks that what the schemas allow is exactly what the server takes:
the patterns come from the regular expressions ``validation.py`` checks with, so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

from ..deliveries.opens import OPEN_PARAM, TOKEN_RE
from ..models.grants import PROMPT_STATUSES
from .errors import ERROR_SCHEMA
from .validation import (
    IDEMPOTENCY_KEY_RE,
    LOGIN_CODE_RE,
    MAX_SETTING_ITEMS,
    PLAIN_TEXT_RE,
    REPORT_FIELDS,
    SETTING_KEY_RE,
    TEMPLATE_ID_RE,
)

DEFAULT_MAX_TEMPLATES = 5
SETTINGS_FIELDS = ("mainSwitch", "itemSettings", "subscriptionsSetting")
# Half of the settings may sit at the top level, half in itemSettings: together never more than the limit.
SETTINGS_PER_PLACE = MAX_SETTING_ITEMS // 2

ERROR_CODES = {
    400: "The body is not JSON, is nested deeper than 32 levels or holds a NUL character or a lone surrogate "
    "(`invalid_json`), or the Idempotency-Key header is malformed (`invalid_idempotency_key`).",
    401: "No token (`token_missing`), a forged or malformed one (`token_invalid`), an expired one "
    "(`token_expired`); on login, a wrong, used or expired wx.login code (`login_code_invalid`).",
    403: "A genuine token issued for another mini-program (`token_wrong_app`); on login, a user WeChat "
    "blocks (`login_blocked`, errcode 40226).",
    404: "The template is known neither to this user nor to the catalog (`unknown_template`); no message "
    "of this user carries the open token, whether it exists for someone else or not at all "
    "(`unknown_open_token`).",
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


def _key_pattern(regex, reserved: tuple[str, ...]) -> str:
    """``regex``'s pattern for an object's keys, except the names the object uses for other things."""
    return "^(?!(?:" + "|".join(reserved) + ")$)" + regex.pattern.removeprefix("^")


def _between(low: int, high: int, present: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, Any]:
    """Between ``low`` and ``high`` keys besides the named ones, when exactly ``present`` of ``optional``
    are there (JSON Schema counts every key; the server counts template ids)."""
    absent = [name for name in optional if name not in present]
    named = 1 + len(present)  # errMsg and the optional fields that are there
    branch: dict[str, Any] = {"minProperties": named + low, "maxProperties": named + high}
    if present:
        branch["required"] = list(present)
    if absent:
        branch["not"] = {"anyOf": [{"required": [name]} for name in absent]}
    return branch


def _subscribe_result(statuses: list[str], max_templates: int) -> dict[str, Any]:
    optional = ("scene", "page")
    counts = [(), ("scene",), ("page",), ("scene", "page")]
    return {
        "type": "object",
        "description": (
            "The success object of wx.requestSubscribeMessage as it is, plus optional scene and page: "
            f"every other key is a template id with its status, 1 to {max_templates} of them "
            "(MP_REPORT_MAX_TEMPLATES)."
        ),
        "required": ["errMsg"],
        "properties": {
            "errMsg": {"type": "string", "const": "requestSubscribeMessage:ok"},
            "scene": {
                "oneOf": [
                    {"type": "string", "maxLength": 64, "pattern": PLAIN_TEXT_RE.pattern},
                    # Kept as its decimal text, which must fit in 64 characters too.
                    {"type": "integer", "minimum": -(10**63 - 1), "maximum": 10**64 - 1},
                ]
            },
            "page": {"type": "string", "maxLength": 512, "pattern": PLAIN_TEXT_RE.pattern},
        },
        "patternProperties": {
            _key_pattern(TEMPLATE_ID_RE, REPORT_FIELDS): {"type": "string", "enum": statuses}
        },
        "additionalProperties": False,
        "anyOf": [_between(1, max_templates, present, optional) for present in counts],
    }


def _subscriptions_setting(statuses: list[str]) -> dict[str, Any]:
    choice = {"type": "string", "enum": statuses}
    key = _key_pattern(SETTING_KEY_RE, SETTINGS_FIELDS)
    bare = {
        "type": "object",
        "required": ["mainSwitch"],
        "properties": {
            "mainSwitch": {"type": "boolean"},
            "itemSettings": {
                "type": "object",
                "patternProperties": {SETTING_KEY_RE.pattern: choice},
                "additionalProperties": False,
                "maxProperties": SETTINGS_PER_PLACE,
            },
        },
        # Older clients put the template choices at the top level, next to mainSwitch.
        "patternProperties": {key: choice},
        "additionalProperties": False,
        "maxProperties": SETTINGS_PER_PLACE + 2,
    }
    return {
        "description": (
            "subscriptionsSetting from wx.getSetting({withSubscriptions: true}), bare or in the result "
            '{"subscriptionsSetting": {...}, "authSetting": ..., "errMsg": ...} (whose other keys are '
            f"ignored). Template ids and SYS_MSG_TYPE_* names, at most {MAX_SETTING_ITEMS} in all."
        ),
        "anyOf": [
            {"$ref": "#/components/schemas/SubscriptionsSettingBare"},
            {
                "type": "object",
                "required": ["subscriptionsSetting"],
                "properties": {
                    "subscriptionsSetting": {"$ref": "#/components/schemas/SubscriptionsSettingBare"},
                    "errMsg": {"type": "string", "pattern": PLAIN_TEXT_RE.pattern},
                    "authSetting": {
                        "type": "object",
                        "propertyNames": {"pattern": PLAIN_TEXT_RE.pattern},
                        "additionalProperties": {"type": "boolean"},
                    },
                },
                "additionalProperties": False,
            },
        ],
    }, bare


def openapi_document(max_templates: int = DEFAULT_MAX_TEMPLATES) -> dict[str, Any]:
    statuses = list(PROMPT_STATUSES)
    settings, settings_bare = _subscriptions_setting(statuses)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tongzhi mini-program API",
            "version": "1",
            "description": (
                "What the mini-program calls: log a user in, report what they answered to a "
                "subscribe prompt, report their subscription settings, read their balances, report "
                "that they opened a campaign message. "
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
                    "additionalProperties": False,
                    "properties": {
                        "code": {
                            "type": "string",
                            "pattern": LOGIN_CODE_RE.pattern,
                            "description": "from wx.login, as it is",
                        }
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
                "Open": {
                    "type": "object",
                    "required": [OPEN_PARAM],
                    "additionalProperties": False,
                    "properties": {
                        OPEN_PARAM: {
                            "type": "string",
                            "pattern": "^" + TOKEN_RE.pattern + "$",
                            "description": "the tz value of the opened page's query, as it is",
                        }
                    },
                },
                "Opened": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}},
                "SubscribeResult": _subscribe_result(statuses, max_templates),
                "SubscriptionsSetting": settings,
                "SubscriptionsSettingBare": settings_bare,
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
                            "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_RE.pattern},
                            "description": (
                                "One key per prompt (1 to 128 visible ASCII characters); reuse it when "
                                "retrying the same report."
                            ),
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
                        {
                            "name": "template_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": TEMPLATE_ID_RE.pattern},
                        }
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
            "/api/mp/opens": {
                "post": {
                    "summary": "Report that the user opened a campaign message (its page's tz query value).",
                    "description": (
                        "Counted once: a repeated report answers the same and keeps the first open time. "
                        "Only the message's own user counts an open; another user's token answers 404 "
                        "like one that does not exist."
                    ),
                    "operationId": "reportOpen",
                    "security": BEARER,
                    "requestBody": _json_body("Open"),
                    "responses": _responses(
                        _ok("Recorded (or already recorded).", "Opened"),
                        400,
                        401,
                        403,
                        404,
                        413,
                        422,
                        429,
                        503,
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
