"""The OpenAPI 3.1 document of ``/api/v1`` (a test checks it against the URL map and real answers, and
``tests/api/test_schemathesis.py`` that what its schemas allow is exactly what the server takes)."""

from __future__ import annotations

from typing import Any

from ..deliveries.send_requests import CHANNELS, SUBSCRIBE_FIELDS
from ..storable import DB_INT_MAX
from .errors import ERROR_SCHEMA
from .validation import IDEMPOTENCY_KEY_RE

ERROR = {"$ref": "#/components/schemas/Error"}
# Text the server takes: no NUL anywhere (no column can hold one), and not blank (it is stripped).
NO_NUL = "^[^\\x00]*$"
NOT_BLANK = "^[^\\x00]*[^\\s\\x00][^\\x00]*$"


def _text(max_length: int, description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length, "pattern": NOT_BLANK}
    if description:
        schema["description"] = description
    return schema


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def openapi_document() -> dict[str, Any]:
    from ..audience.attributes import declared_types
    from .v1_campaigns_openapi import campaign_paths, campaign_schemas
    from .v1_segments_openapi import segment_paths, segment_schemas
    from .v1_users_openapi import users_paths, users_schemas

    message = {"$ref": "#/components/schemas/Message"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tongzhi server API",
            "version": "1",
            "description": "Transactional subscribe messages for the company's other back ends.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"apiKey": []}],
        "paths": {
            "/messages": {
                "post": {
                    "summary": "Send one transactional message",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_RE.pattern},
                            "description": (
                                "1 to 128 visible ASCII characters. The same key from the same API key "
                                "never sends twice: the same body again answers with the first message, "
                                "another body is 409 idempotency_conflict. Keys belong to one API key: "
                                "other back ends' keys never collide with yours."
                            ),
                        },
                        {
                            "name": "wait",
                            "in": "query",
                            "schema": {"type": "number", "minimum": 0, "maximum": 30},
                            "description": "Wait up to this many seconds for a final state.",
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/SendRequest"}}
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Final state reached within wait",
                            "content": {"application/json": {"schema": message}},
                        },
                        "202": {
                            "description": "Accepted; not final yet",
                            "content": {"application/json": {"schema": message}},
                        },
                        "400": _error(
                            "Malformed body (not JSON, nested deeper than 32 levels, a NUL character or "
                            "a lone surrogate in a string), wait or Idempotency-Key"
                        ),
                        "401": _error("Missing, unknown or revoked API key"),
                        "403": _error("The key lacks the send scope"),
                        "404": _error("unknown_user, unknown_template or unknown_oa_template"),
                        "409": _error(
                            "The channel cannot reach the user now: no_grant (mp_subscribe: no live grant "
                            "for the template), not_following (oa_template: the user does not follow the "
                            "Official Account), no_channel (mp_subscribe_or_oa: neither). channel_off (the "
                            "Official Account is not configured), template_removed/disabled/changed, "
                            "oa_template_removed/changed, or idempotency_conflict (this Idempotency-Key "
                            "was used by this API key with a different body)"
                        ),
                        "413": _error("Body too large"),
                        "422": _error(
                            "A field or keyword value is invalid; field names the key and the code the rule"
                        ),
                    },
                }
            },
            "/messages/{id}": {
                "get": {
                    "summary": "A transactional message's state",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1, "maximum": DB_INT_MAX},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The message",
                            "content": {"application/json": {"schema": message}},
                        },
                        "401": _error("Missing, unknown or revoked API key"),
                        "403": _error("The key has none of the send, read or read_all scopes"),
                        "404": _error(
                            "No such message, or another API key sent it and this key lacks the read_all "
                            "scope (a key reads the messages it sent; read_all reads every API message)"
                        ),
                    },
                }
            },
            **campaign_paths(),
            **segment_paths(),
            **users_paths(),
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "SendRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "description": (
                        "Exactly one of openid and unionid names the user. channel mp_subscribe (the "
                        "default) sends the subscribe message (template, data); oa_template the Official "
                        "Account's template message (oa) and no subscribe message; mp_subscribe_or_oa gives "
                        "both and spends a subscribe credit when the user holds one, else sends the Official "
                        "Account's message when they follow it."
                    ),
                    "allOf": [
                        {"oneOf": [{"required": ["openid"]}, {"required": ["unionid"]}]},
                        {
                            "oneOf": [
                                {
                                    "required": ["template"],
                                    "properties": {"channel": {"const": "mp_subscribe"}, "oa": False},
                                },
                                {
                                    "required": ["channel", "oa"],
                                    "properties": {
                                        "channel": {"const": "oa_template"},
                                        **{name: False for name in SUBSCRIBE_FIELDS},
                                    },
                                },
                                {
                                    "required": ["channel", "template", "oa"],
                                    "properties": {"channel": {"const": "mp_subscribe_or_oa"}},
                                },
                            ]
                        },
                    ],
                    "properties": {
                        "openid": _text(64, "The user's mini-program openid"),
                        "unionid": _text(
                            64,
                            "The user's unionid; on the oa_template channel it may name a follower of the "
                            "Official Account who has no mini-program user",
                        ),
                        "channel": {
                            "type": "string",
                            "enum": list(CHANNELS),
                            "default": "mp_subscribe",
                            "description": "Which channel may carry the message",
                        },
                        "template": _text(64, "The subscribe message's template ID or scene label"),
                        "data": {
                            "type": "object",
                            "description": "Keyword values by name (thing1...), checked by the template's rules",
                            "propertyNames": {"pattern": NO_NUL},
                            "additionalProperties": {"type": "string", "pattern": NO_NUL},
                        },
                        "page": _text(512, "The mini-program page a tap opens (either channel)"),
                        "miniprogram_state": {"type": "string", "enum": ["developer", "trial", "formal"]},
                        "lang": {"type": "string", "enum": ["zh_CN", "en_US", "zh_HK", "zh_TW"]},
                        "oa": {"$ref": "#/components/schemas/OaMessage"},
                    },
                },
                "OaMessage": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["template"],
                    "description": "The Official Account's template message",
                    "properties": {
                        "template": _text(64, "The Official Account's template ID"),
                        "data": {
                            "type": "object",
                            "description": (
                                "Values by key (first, keyword1, remark, thing3...), checked by the Official "
                                "Account's rules"
                            ),
                            "propertyNames": {"pattern": NO_NUL},
                            "additionalProperties": {"type": "string", "pattern": NO_NUL},
                        },
                        "pagepath": _text(512, "The mini-program page the card opens, when it is not page"),
                    },
                },
                "Message": {
                    "type": "object",
                    "required": ["id", "state", "channel", "errcode", "errmsg", "msgid"],
                    "properties": {
                        "id": {"type": "integer"},
                        "channel": {
                            "type": "string",
                            "enum": list(CHANNELS),
                            "description": (
                                "The channel the message went out on (mp_subscribe or oa_template) once "
                                "a worker chose it; before that, the channel asked for"
                            ),
                        },
                        "state": {
                            "type": "string",
                            "enum": [
                                "pending",
                                "sending",
                                "sent",
                                "failed",
                                "skipped",
                                "unknown",
                                "retry_wait",
                            ],
                        },
                        "errcode": {"type": ["integer", "null"]},
                        "errmsg": {"type": ["string", "null"]},
                        "msgid": {"type": ["string", "null"]},
                    },
                },
                **campaign_schemas(),
                **segment_schemas(),
                **users_schemas(declared_types()),
                "Error": ERROR_SCHEMA,
            },
        },
    }
