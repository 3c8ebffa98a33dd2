"""The OpenAPI 3 document of ``/api/v1`` (a test checks it against the URL map and real answers)."""

from __future__ import annotations

from typing import Any

from .errors import ERROR_SCHEMA

ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def openapi_document() -> dict[str, Any]:
    message = {"$ref": "#/components/schemas/Message"}
    return {
        "openapi": "3.0.3",
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
                            "schema": {"type": "string", "maxLength": 128},
                            "description": "The same key from the same API key never sends twice.",
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
                        "400": _error("Malformed body, wait or Idempotency-Key"),
                        "401": _error("Missing, unknown or revoked API key"),
                        "403": _error("The key lacks the send scope"),
                        "404": _error("unknown_user or unknown_template"),
                        "409": _error("no_grant, template_removed/disabled/changed, idempotency_conflict"),
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
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                    ],
                    "responses": {
                        "200": {
                            "description": "The message",
                            "content": {"application/json": {"schema": message}},
                        },
                        "401": _error("Missing, unknown or revoked API key"),
                        "403": _error("The key lacks the read scope"),
                        "404": _error("No such message"),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "SendRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["template"],
                    "properties": {
                        "openid": {"type": "string", "maxLength": 64},
                        "unionid": {"type": "string", "maxLength": 64},
                        "template": {"type": "string", "description": "Template ID or scene label"},
                        "data": {"type": "object", "additionalProperties": {"type": "string"}},
                        "page": {"type": "string", "maxLength": 512},
                        "miniprogram_state": {"type": "string", "enum": ["developer", "trial", "formal"]},
                        "lang": {"type": "string", "enum": ["zh_CN", "en_US", "zh_HK", "zh_TW"]},
                    },
                },
                "Message": {
                    "type": "object",
                    "required": ["id", "state", "errcode", "errmsg", "msgid"],
                    "properties": {
                        "id": {"type": "integer"},
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
                        "errcode": {"type": "integer", "nullable": True},
                        "errmsg": {"type": "string", "nullable": True},
                        "msgid": {"type": "string", "nullable": True},
                    },
                },
                "Error": ERROR_SCHEMA,
            },
        },
    }
