"""The segment part of the ``/api/v1`` OpenAPI document (``v1_openapi.openapi_document`` merges it in).

What the schemas allow the server takes (tests/api/test_schemathesis.py). The Filter schema spells out two
levels of ``all`` / ``any`` / ``not`` so generators can enumerate it; the server takes nesting up to
``MAX_DEPTH`` deep and ``MAX_NODES`` parts, and up to ``MAX_OPENIDS`` openids in a list.
"""

from __future__ import annotations

from typing import Any

from ..audience.segments import (
    ATTRIBUTE_KEY_RE,
    MAX_DAYS,
    MAX_DEPTH,
    MAX_MIN_CREDITS,
    MAX_NODES,
    MAX_OPENIDS,
    MAX_TAG_LENGTH,
    MAX_TAGS_PER_LEAF,
    MAX_TEXT,
    OPENID_RE,
    UNREACHABLE_REASONS,
)
from ..segments.services import MAX_NAME_LENGTH
from ..storable import DB_INT_MAX
from .v1_openapi import NO_NUL, _error, _text
from .validation import TEMPLATE_ID_RE

# A name: not blank, no control characters.
NAME_PATTERN = "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"
LIST_MAX = 10  # per all/any list in the schema: two levels of 10 stay under MAX_NODES


def _object(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": [key], "additionalProperties": False, "properties": {key: value}}


def _attribute(ops: list[str], value: dict[str, Any] | None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "key": {"type": "string", "pattern": ATTRIBUTE_KEY_RE.pattern},
        "op": {"type": "string", "enum": ops},
    }
    if value is not None:
        properties["value"] = value
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["key", "op"] + (["value"] if value is not None else []),
        "properties": properties,
    }


def _leaf_schemas() -> list[dict[str, Any]]:
    days = {"type": "integer", "minimum": 0, "maximum": MAX_DAYS}
    tag = _text(MAX_TAG_LENGTH)
    tag_list = {"type": "array", "minItems": 1, "maxItems": MAX_TAGS_PER_LEAF, "items": tag}
    return [
        _object(
            "grant",
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["template_id"],
                "description": "A live grant: at least min_credits one-time credits, or an active long-term grant.",
                "properties": {
                    "template_id": _text(64),
                    "min_credits": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_MIN_CREDITS,
                        "default": 1,
                    },
                },
            },
        ),
        _object("tag", tag),
        _object("tags", {"oneOf": [_object(mode, tag_list) for mode in ("any", "all", "none")]}),
        _object(
            "attribute",
            {
                "description": "Dates are compared on the value's first ten characters (YYYY-MM-DD); "
                "within_* count days from today in the console's TIMEZONE.",
                "oneOf": [
                    _attribute(["set", "unset"], None),
                    _attribute(["eq"], {"type": "string", "maxLength": MAX_TEXT, "pattern": NO_NUL}),
                    _attribute(["contains"], _text(MAX_TEXT)),
                    _attribute(["before", "after"], {"type": "string", "format": "date"}),
                    _attribute(["within_next_days", "within_last_days"], days),
                ],
            },
        ),
        _object("seen_within_days", days),
        _object("has_unionid", {"type": "boolean"}),
        _object("granted_in_scene", _text(64)),
        _object("main_switch", {"type": "boolean", "description": "What the mini-program last reported."}),
        _object(
            "openids",
            {
                "type": "array",
                "maxItems": 1000,
                "description": f"The server takes up to {MAX_OPENIDS} openids.",
                "items": {"type": "string", "pattern": OPENID_RE.pattern},
            },
        ),
    ]


def _combinators(inner: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _object("all", {"type": "array", "maxItems": LIST_MAX, "items": inner}),
        _object("any", {"type": "array", "maxItems": LIST_MAX, "items": inner}),
        _object("not", inner),
    ]


def segment_schemas() -> dict[str, Any]:
    leaf = {"$ref": "#/components/schemas/FilterLeaf"}
    return {
        "FilterLeaf": {"oneOf": _leaf_schemas()},
        "FilterInner": {"oneOf": [leaf, *_combinators(leaf)]},
        "Filter": {
            "description": (
                "Which users a segment holds. all / any / not combine leaves; the server takes nesting up "
                f"to {MAX_DEPTH} deep and {MAX_NODES} parts. An unknown leaf or operator is 422 "
                "invalid_filter, with field the path to it (filter.all[2].attribute.op)."
            ),
            "oneOf": [leaf, *_combinators({"$ref": "#/components/schemas/FilterInner"})],
        },
        "SegmentRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "filter"],
            "properties": {
                "name": {"type": "string", "maxLength": MAX_NAME_LENGTH, "pattern": NAME_PATTERN},
                "filter": {"$ref": "#/components/schemas/Filter"},
            },
        },
        "SegmentCreated": {
            "type": "object",
            "required": ["id", "name", "count"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "count": {"type": "integer"},
            },
        },
        "Segment": {
            "type": "object",
            "required": ["id", "name", "filter", "count"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "filter": {"type": "object"},
                "count": {"type": "integer", "description": "Users in the segment now"},
                "reachable": {
                    "type": "integer",
                    "description": "With template_id: a campaign could message now",
                },
                "unreachable": {
                    "type": "object",
                    "description": "With template_id: why the others cannot be messaged (each user once)",
                    "required": list(UNREACHABLE_REASONS),
                    "properties": {reason: {"type": "integer"} for reason in UNREACHABLE_REASONS},
                },
                "reach": {"$ref": "#/components/schemas/ChannelReach"},
            },
        },
        "ChannelReach": {
            "type": "object",
            "description": (
                "With template_id: how many of the segment's users each channel could message now, by the "
                "rule the sends apply. The Official Account's figures are null while that channel is off."
            ),
            "required": ["mp_subscribe", "oa_template", "mp_subscribe_or_oa", "segment"],
            "additionalProperties": False,
            "properties": {
                "mp_subscribe": {
                    "type": "integer",
                    "description": "Hold a live credit for the template (beyond its credit budget)",
                },
                "oa_template": {
                    "type": ["integer", "null"],
                    "description": "Follow the Official Account now (joined by unionid)",
                },
                "mp_subscribe_or_oa": {
                    "type": ["integer", "null"],
                    "description": "Either: the subscribe message when they hold a credit, else the Official Account",
                },
                "segment": {"type": "integer", "description": "Users in the segment now"},
            },
        },
    }


def segment_paths() -> dict[str, Any]:
    auth_errors = {
        "401": _error("Missing, unknown or revoked API key"),
        "403": _error("The key lacks the campaigns scope"),
    }
    return {
        "/segments": {
            "post": {
                "summary": "Save a segment (a named user filter) and count its users",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/SegmentRequest"}}
                    },
                },
                "responses": {
                    "201": {
                        "description": "Saved",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/SegmentCreated"}}
                        },
                    },
                    "400": _error(
                        "Malformed body (not JSON, a NUL character or a lone surrogate in a string)"
                    ),
                    **auth_errors,
                    "409": _error("name_taken: another segment has this name"),
                    "413": _error("Body too large (4 MB)"),
                    "422": _error(
                        "invalid_filter (field: the path to the bad part, the message names an unknown leaf "
                        "or operator), invalid_name or unknown_field"
                    ),
                },
            }
        },
        "/segments/{id}": {
            "get": {
                "summary": "A segment's count now; with template_id, its reach for that template",
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": DB_INT_MAX},
                    },
                    {
                        "name": "template_id",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": TEMPLATE_ID_RE.pattern},
                        "description": (
                            "Adds reachable (a campaign of this template could message them now: a live "
                            "grant beyond the template's credit budget) and unreachable by reason: "
                            "main_switch_off, always_reject, no_credit, budget; and reach, the count per "
                            "channel (mp_subscribe, oa_template, mp_subscribe_or_oa)."
                        ),
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The segment",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Segment"}}},
                    },
                    **auth_errors,
                    "400": _error("The query string holds a NUL character"),
                    "404": _error("No such segment (not_found), or no such template (unknown_template)"),
                },
            }
        },
    }
