"""Reading JSON bodies strictly: every problem is a 400 or 422 ``ApiError`` before anything is written,
so a bad request never leaves half a change behind. Both APIs read their bodies with ``read_json_body``;
the rest checks the shapes of the mini-program's bodies."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from flask import current_app, request

from ..deliveries.opens import OPEN_PARAM, TOKEN_RE
from ..models.grants import PROMPT_STATUSES
from ..storable import UnstorableJson, loads_storable
from .errors import ApiError

# WeChat's priTmplId is 43 URL-safe base64 characters; allow a little room, nothing else.
TEMPLATE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SETTING_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # template ids and SYS_MSG_TYPE_* names
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")
SUCCESS_ERRMSG = "requestSubscribeMessage:ok"
REPORT_FIELDS = ("errMsg", "scene", "page")
MAX_SETTING_ITEMS = 200
LOGIN_CODE_RE = re.compile(r"^[\x21-\x7e]{1,128}$")
# scene and page: any text but control characters (C0, DEL, C1). The OpenAPI document says the same.
PLAIN_TEXT_RE = re.compile(r"^[^\x00-\x1f\x7f-\x9f]*$")


def read_json_body(limit: int) -> Any:
    """The request body as JSON, of at most ``limit`` bytes, with or without a Content-Length.

    :raise ApiError: 413 ``body_too_large``; 400 ``invalid_json`` (see ``parse_json``).
    """
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "body_too_large", f"The body is larger than {limit} bytes.")
    # One byte over the limit, so a chunked body (no Content-Length) that is too long shows as such:
    # Werkzeug stops reading at the maximum without saying whether more was coming.
    request.max_content_length = limit + 1
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise ApiError(413, "body_too_large", f"The body is larger than {limit} bytes.")
    if not raw.strip():
        raise ApiError(400, "invalid_json", "The body is empty: send a JSON object.")
    return parse_json(raw)


def parse_json(raw: bytes | str) -> Any:
    """Strict JSON, the same for both APIs (``storable.loads_storable``).

    :raise ApiError: 400 ``invalid_json``: not JSON (nor UTF-8), NaN or Infinity, nested too deep, or a
        string holding a NUL or a lone surrogate (no database column can).
    """
    try:
        return loads_storable(raw)
    except UnstorableJson as error:
        raise ApiError(400, "invalid_json", str(error)) from None


def read_json_object() -> dict[str, Any]:
    """The mini-program's body: a JSON object, whatever the Content-Type (wx.request sends JSON).

    :raise ApiError: 413 / 400 as ``read_json_body``; 422 ``invalid_body`` (JSON, but not an object).
    """
    body = read_json_body(int(current_app.config["MP_MAX_BODY_BYTES"]))
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_body", "The body must be a JSON object.")
    return body


def digest(body: dict[str, Any]) -> str:
    """A stable fingerprint of a parsed body (key order and whitespace do not matter)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_key() -> str | None:
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    if not IDEMPOTENCY_KEY_RE.fullmatch(raw):
        raise ApiError(
            400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 128 visible ASCII characters."
        )
    return raw


def _short_text(body: dict[str, Any], name: str, limit: int, numbers: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    # JSON has one kind of number: 1001.0 is the integer 1001 (as JSON Schema says too).
    if numbers and isinstance(value, float) and value.is_integer():
        value = int(value)
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ApiError(422, "invalid_field", f"{name} must be a string.", field=name)
    if len(value) > limit:
        raise ApiError(422, "invalid_field", f"{name} is longer than {limit} characters.", field=name)
    if not PLAIN_TEXT_RE.fullmatch(value):
        raise ApiError(422, "invalid_field", f"{name} has control characters.", field=name)
    return value


@dataclass(frozen=True)
class GrantReportBody:
    answers: list[tuple[str, str]]
    scene: str | None
    page: str | None


def parse_grant_report(body: dict[str, Any], max_templates: int) -> GrantReportBody:
    """The success object of ``wx.requestSubscribeMessage``, forwarded as-is, with optional scene and page.

    :raise ApiError: 422 with ``prompt_failed``, ``invalid_template_id``, ``invalid_status``,
        ``no_templates``, ``too_many_templates`` or ``invalid_field``.
    """
    err_msg = body.get("errMsg")
    if err_msg is None:
        raise ApiError(
            422, "invalid_field", "errMsg is missing: forward the success object as it is.", field="errMsg"
        )
    if not isinstance(err_msg, str):
        raise ApiError(422, "invalid_field", "errMsg must be a string.", field="errMsg")
    if err_msg != SUCCESS_ERRMSG:
        raise ApiError(
            422, "prompt_failed", "errMsg is not requestSubscribeMessage:ok: report only successful prompts."
        )
    scene = _short_text(body, "scene", 64, numbers=True)
    page = _short_text(body, "page", 512)
    answers: list[tuple[str, str]] = []
    for key, value in body.items():
        if key in REPORT_FIELDS:
            continue
        if not TEMPLATE_ID_RE.fullmatch(key):
            raise ApiError(422, "invalid_template_id", "A template id has characters WeChat never uses.")
        if not isinstance(value, str) or value not in PROMPT_STATUSES:
            raise ApiError(
                422,
                "invalid_status",
                "Each template's status must be one of " + ", ".join(PROMPT_STATUSES) + ".",
                field=key,
            )
        answers.append((key, value))
    if not answers:
        raise ApiError(422, "no_templates", "The report names no template.")
    if len(answers) > max_templates:
        raise ApiError(
            422, "too_many_templates", f"A prompt answers at most {max_templates} templates; this names more."
        )
    return GrantReportBody(answers=answers, scene=scene, page=page)


@dataclass(frozen=True)
class SettingsBody:
    main_switch: bool
    items: dict[str, str]


def parse_settings(body: dict[str, Any]) -> SettingsBody:
    """``subscriptionsSetting`` from ``wx.getSetting({withSubscriptions: true})``, bare or wrapped in
    ``{"subscriptionsSetting": ...}``. Template choices may sit in ``itemSettings`` or, as older clients
    send them, at the top level; both are kept.

    :raise ApiError: 422 ``invalid_field`` / ``invalid_status`` / ``too_many_items``.
    """
    if "subscriptionsSetting" in body:
        body = body["subscriptionsSetting"]
        if not isinstance(body, dict):
            raise ApiError(
                422, "invalid_field", "subscriptionsSetting must be an object.", field="subscriptionsSetting"
            )
    main_switch = body.get("mainSwitch")
    if not isinstance(main_switch, bool):
        raise ApiError(422, "invalid_field", "mainSwitch must be true or false.", field="mainSwitch")
    item_settings = body.get("itemSettings", {})
    if not isinstance(item_settings, dict):
        raise ApiError(422, "invalid_field", "itemSettings must be an object.", field="itemSettings")
    candidates = [(k, v) for k, v in body.items() if k not in ("mainSwitch", "itemSettings")]
    candidates += list(item_settings.items())
    if len(candidates) > MAX_SETTING_ITEMS:
        raise ApiError(422, "too_many_items", f"At most {MAX_SETTING_ITEMS} template settings.")
    items: dict[str, str] = {}
    for key, value in candidates:
        if not SETTING_KEY_RE.fullmatch(key):
            raise ApiError(422, "invalid_template_id", "A template id has characters WeChat never uses.")
        if not isinstance(value, str) or value not in PROMPT_STATUSES:
            raise ApiError(
                422,
                "invalid_status",
                "Each template's setting must be one of " + ", ".join(PROMPT_STATUSES) + ".",
                field=key,
            )
        items[key] = value
    return SettingsBody(main_switch=main_switch, items=items)


def parse_login(body: dict[str, Any]) -> str:
    code = body.get("code")
    if code is None:
        raise ApiError(422, "invalid_field", "code is missing: send the code from wx.login.", field="code")
    if not isinstance(code, str) or not LOGIN_CODE_RE.fullmatch(code):
        raise ApiError(422, "invalid_field", "code must be the string wx.login returned.", field="code")
    return code


def parse_open(body: dict[str, Any]) -> str:
    """``{"tz": "<token>"}``: the tracking token the opened card's page carried (``tz=`` in its query)."""
    token = body.get(OPEN_PARAM)
    if token is None:
        raise ApiError(
            422, "invalid_field", "tz is missing: send the tz value of the page's query.", field=OPEN_PARAM
        )
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise ApiError(
            422, "invalid_field", "tz must be the 16-character token of the page's query.", field=OPEN_PARAM
        )
    return token
