"""The users part of the ``/api/v1`` OpenAPI document (``v1_openapi.openapi_document`` merges it in).

What the schemas allow the server takes (tests/api/test_schemathesis.py). The attributes a user may
carry are the keys declared when the document is read, each with the schema of its type, so the
document is exact: an undeclared key may only be ``null`` (which deletes it).
"""

from __future__ import annotations

from typing import Any

from ..audience.attributes import MAX_LABEL_LENGTH, MAX_STRING_LENGTH
from ..audience.segments import ATTRIBUTE_KEY_RE, OPENID_RE
from ..audience.upserts import MAX_ATTRIBUTES, MAX_BATCH, MAX_NICKNAME_LENGTH, MAX_TAG_LENGTH, MAX_TAGS
from ..models.user_attribute import ATTRIBUTE_TYPES
from .v1_openapi import _error

NO_CONTROL = "^[^\\x00-\\x1f\\x7f]*$"
NOT_BLANK_NO_CONTROL = "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"

VALUE_SCHEMAS: dict[str, dict[str, Any]] = {
    "string": {"type": "string", "maxLength": MAX_STRING_LENGTH, "pattern": NO_CONTROL},
    "number": {"type": "number"},
    "bool": {"type": "boolean"},
    "date": {"type": "string", "format": "date", "description": "YYYY-MM-DD"},
    "datetime": {
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 with its offset; stored in the console's TIMEZONE (2026-12-31T23:59:59+08:00)",
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _user_fields(declared: dict[str, str]) -> dict[str, Any]:
    return {
        "attributes": {
            "type": "object",
            "description": (
                "Merged into the user's attributes: a key given replaces its value, null deletes the key, "
                "keys not named are kept. Only declared keys (GET /attributes) take values, of their type; "
                "an undeclared key is 422 unknown_attribute, a value of another type 422 "
                "invalid_attribute_value, both naming the key."
            ),
            "maxProperties": MAX_ATTRIBUTES,
            "propertyNames": {"pattern": ATTRIBUTE_KEY_RE.pattern},
            "properties": {
                key: {"anyOf": [VALUE_SCHEMAS[kind], {"type": "null"}]}
                for key, kind in sorted(declared.items())
            },
            "additionalProperties": {"type": "null"},
        },
        "tags": {
            "type": "array",
            "description": "Replace the user's tags ([] clears them); spaces around a tag and repeats are dropped.",
            "maxItems": MAX_TAGS,
            "items": {"type": "string", "maxLength": MAX_TAG_LENGTH, "pattern": NOT_BLANK_NO_CONTROL},
        },
        "unionid": {"type": "string", "pattern": OPENID_RE.pattern},
        "nickname": {"type": "string", "maxLength": MAX_NICKNAME_LENGTH, "pattern": NO_CONTROL},
    }


def users_schemas(declared: dict[str, str]) -> dict[str, Any]:
    fields = _user_fields(declared)
    error = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "field": {"type": "string"},
        },
    }
    return {
        "UserUpsert": {
            "type": "object",
            "additionalProperties": False,
            "description": "Fields left out keep what the user has.",
            "properties": fields,
        },
        "UserBatchRow": {
            "type": "object",
            "additionalProperties": False,
            "required": ["openid"],
            "properties": {"openid": {"type": "string", "pattern": OPENID_RE.pattern}, **fields},
        },
        "UserBatch": {
            "type": "object",
            "additionalProperties": False,
            "required": ["users"],
            "properties": {"users": {"type": "array", "maxItems": MAX_BATCH, "items": _ref("UserBatchRow")}},
        },
        "User": {
            "type": "object",
            "required": ["openid", "unionid", "nickname", "tags", "attributes", "created_at"],
            "properties": {
                "openid": {"type": "string"},
                "unionid": {"type": ["string", "null"]},
                "nickname": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "attributes": {"type": "object"},
                "created_at": {"type": "string", "format": "date-time"},
            },
        },
        "UserBatchResults": {
            "type": "object",
            "required": ["results"],
            "properties": {
                "results": {
                    "type": "array",
                    "description": "One per row, in the order given",
                    "items": {
                        "type": "object",
                        "required": ["openid", "status"],
                        "properties": {
                            "openid": {"type": ["string", "null"]},
                            "status": {"type": "string", "enum": ["created", "updated", "error"]},
                            "error": error,
                        },
                    },
                }
            },
        },
        "AttributeDeclaration": {
            "type": "object",
            "additionalProperties": False,
            "required": ["type"],
            "properties": {
                "type": {"type": "string", "enum": list(ATTRIBUTE_TYPES)},
                "label": {
                    "type": "string",
                    "maxLength": MAX_LABEL_LENGTH,
                    "pattern": NOT_BLANK_NO_CONTROL,
                    "description": "What operators read; the key when left out",
                },
            },
        },
        "Attribute": {
            "type": "object",
            "required": ["key", "type", "label"],
            "properties": {
                "key": {"type": "string"},
                "type": {"type": "string", "enum": list(ATTRIBUTE_TYPES)},
                "label": {"type": "string"},
            },
        },
    }


def users_paths() -> dict[str, Any]:
    auth_errors = {
        "401": _error("Missing, unknown or revoked API key"),
        "403": _error("The key lacks the users scope"),
    }
    malformed = _error("Malformed body (not JSON, a NUL character or a lone surrogate in a string)")
    no_address = _error("No such address (the path parameter holds a /)")
    openid = {
        "name": "openid",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": OPENID_RE.pattern},
    }
    key = {
        "name": "key",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": ATTRIBUTE_KEY_RE.pattern},
    }
    return {
        "/users/{openid}": {
            "put": {
                "summary": "Create or update one user's attributes, tags, unionid and nickname",
                "parameters": [openid],
                "requestBody": {"required": True, "content": _json(_ref("UserUpsert"))},
                "responses": {
                    "200": {"description": "Updated (or unchanged)", "content": _json(_ref("User"))},
                    "201": {"description": "Created", "content": _json(_ref("User"))},
                    "400": malformed,
                    **auth_errors,
                    "404": no_address,
                    "413": _error("Body too large (64 KB)"),
                    "422": _error(
                        "unknown_attribute or invalid_attribute_value (field: attributes.<key>), invalid_tags, "
                        "invalid_unionid, invalid_nickname, invalid_openid, unknown_field"
                    ),
                },
            }
        },
        "/users/batch": {
            "post": {
                "summary": f"Create or update up to {MAX_BATCH} users; each row answered on its own",
                "description": (
                    "Every row is checked before anything is written; a refused row is reported with its "
                    "error and the others are stored, in one transaction. The same openid twice is applied "
                    "twice, in order."
                ),
                "requestBody": {"required": True, "content": _json(_ref("UserBatch"))},
                "responses": {
                    "200": {"description": "A result per row", "content": _json(_ref("UserBatchResults"))},
                    "400": malformed,
                    **auth_errors,
                    "413": _error("Body too large (8 MB)"),
                    "422": _error(
                        f"The body is not an object of users (invalid_body, unknown_field), or holds more "
                        f"than {MAX_BATCH} users (too_many_users)"
                    ),
                },
            }
        },
        "/attributes": {
            "get": {
                "summary": "The declared attribute keys",
                "responses": {
                    "200": {
                        "description": "Every declared key",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["attributes"],
                                "properties": {"attributes": {"type": "array", "items": _ref("Attribute")}},
                            }
                        ),
                    },
                    "400": _error("The query string holds a NUL character"),
                    **auth_errors,
                },
            }
        },
        "/attributes/{key}": {
            "put": {
                "summary": "Declare an attribute key with its type and label, or change them",
                "description": (
                    "Changing the type does not rewrite values already stored; values written from then on "
                    "must be of the new type."
                ),
                "parameters": [key],
                "requestBody": {"required": True, "content": _json(_ref("AttributeDeclaration"))},
                "responses": {
                    "200": {"description": "Changed (or unchanged)", "content": _json(_ref("Attribute"))},
                    "201": {"description": "Declared", "content": _json(_ref("Attribute"))},
                    "400": malformed,
                    **auth_errors,
                    "404": no_address,
                    "413": _error("Body too large (4 KB)"),
                    "422": _error("invalid_key, invalid_type, invalid_label or unknown_field"),
                },
            }
        },
    }
