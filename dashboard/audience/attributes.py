"""Declared attribute keys and their typed values (issue 14).

A key is declared once (Settings → User attributes, or ``PUT /api/v1/attributes/<key>``) with a type:

- ``string``: text of at most 256 characters without control characters;
- ``number``: a JSON number (``true`` is not a number);
- ``bool``: ``true`` or ``false``;
- ``date``: ``YYYY-MM-DD``, stored as given;
- ``datetime``: an RFC 3339 instant with its UTC offset (``2026-12-31T23:59:59+08:00`` or ``…Z``), stored as
  ISO 8601 text **in the console's TIMEZONE** (``2027-01-01T07:59:59+08:00`` for ``…T23:59:59Z`` under
  Asia/Shanghai). Its first ten characters are then the operator's calendar day, which is what the
  segment operators ``before``/``after``/``within_*`` compare (they read ``YYYY-MM-DD`` off the front and
  count days in TIMEZONE); an instant kept in UTC would put a midnight in Shanghai on the day before, and
  one kept with whatever offset the caller used would date the same instant differently per caller. All
  values of a key share one offset, so their text also sorts as their instants (outside DST changes).

Values already in the table (the CSV import, data from before declarations) are not rewritten or
checked: undeclared keys stay readable and filterable; only upserts through the API are held to this.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..extensions import db
from ..models.user_attribute import ATTRIBUTE_TYPES, UserAttribute
from .segments import ATTRIBUTE_KEY_RE

MAX_STRING_LENGTH = 256  # as the CSV import (and the segment index) take
MAX_LABEL_LENGTH = 80
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# RFC 3339 date-time: seconds required, an offset required (Z or ±HH:MM), up to nanoseconds.
DATETIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
TYPE_LABELS = {
    "string": _l("Text"),
    "number": _l("Number"),
    "bool": _l("Yes / no"),
    "date": _l("Date"),
    "datetime": _l("Date and time"),
}
TYPE_WORDS = {  # for the API's messages (English)
    "string": "a string",
    "number": "a number",
    "bool": "true or false",
    "date": "a date (YYYY-MM-DD)",
    "datetime": "a date and time with its offset (RFC 3339, e.g. 2026-12-31T23:59:59+08:00)",
}
assert set(TYPE_LABELS) == set(ATTRIBUTE_TYPES) == set(TYPE_WORDS)


class ValueRefused(ValueError):
    """A value that does not fit its declared type; the message (English) names the key and the type."""


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _parse_date(text: str) -> date | None:
    if not DATE_RE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _parse_datetime(text: str) -> datetime | None:
    match = DATETIME_RE.fullmatch(text)
    if match is None:
        return None
    day, hour, minute, second, fraction, zulu, sign, off_hours, off_minutes = match.groups()
    parsed_day = _parse_date(day)
    if parsed_day is None or int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        return None
    if zulu:
        zone = UTC
    else:
        if int(off_hours) > 23 or int(off_minutes) > 59:
            return None
        offset = timedelta(hours=int(off_hours), minutes=int(off_minutes))
        zone = timezone(-offset if sign == "-" else offset)
    microsecond = int((fraction or "0").ljust(6, "0")[:6])
    return datetime(
        parsed_day.year,
        parsed_day.month,
        parsed_day.day,
        int(hour),
        int(minute),
        int(second),
        microsecond,
        tzinfo=zone,
    )


def operator_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Shanghai"))


def stored_value(key: str, kind: str, value: Any, zone: ZoneInfo) -> Any:
    """The value as it is kept in ``wechat_user.attributes``.

    :raise ValueRefused: the value is not of the key's declared type.
    """
    wrong = ValueRefused(
        f"Attribute {key!r} is declared as {kind}: it takes {TYPE_WORDS[kind]}, not {json_kind(value)}."
    )
    if kind == "string":
        if not isinstance(value, str):
            raise wrong
        if len(value) > MAX_STRING_LENGTH:
            raise ValueRefused(f"Attribute {key!r} (string) is longer than {MAX_STRING_LENGTH} characters.")
        if CONTROL_RE.search(value):
            raise ValueRefused(f"Attribute {key!r} (string) holds a control character.")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong
        if isinstance(value, float) and not math.isfinite(value):
            raise wrong
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise wrong
        return value
    if not isinstance(value, str):
        raise wrong
    if kind == "date":
        if _parse_date(value) is None:
            raise ValueRefused(
                f"Attribute {key!r} is declared as date: {value[:40]!r} is not a date (YYYY-MM-DD)."
            )
        return value
    instant = _parse_datetime(value)
    if instant is None:
        raise ValueRefused(
            f"Attribute {key!r} is declared as datetime: {value[:40]!r} is not a date and time with its "
            "offset (RFC 3339, e.g. 2026-12-31T23:59:59+08:00)."
        )
    try:
        return instant.astimezone(zone).isoformat()
    except OverflowError:  # within a day of year 1 or 9999: no local form, keep the offset given
        return instant.isoformat()


# -- declarations ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeclarationRefused(ValueError):
    code: str
    message: str  # English, for the API
    field: str


def declared_types() -> dict[str, str]:
    """Every declared key and its type."""
    return {key: kind for key, kind in db.session.execute(select(UserAttribute.key, UserAttribute.type))}


def list_declarations() -> list[UserAttribute]:
    return list(db.session.scalars(select(UserAttribute).order_by(UserAttribute.key)))


def check_declaration(key: Any, kind: Any, label: Any) -> tuple[str, str, str]:
    """The key, type and label to store (a missing label is the key).

    :raise DeclarationRefused: with the field at fault.
    """
    if not isinstance(key, str) or not ATTRIBUTE_KEY_RE.fullmatch(key):
        raise DeclarationRefused(
            "invalid_key",
            "An attribute key is a letter, digit or _ then up to 39 letters, digits, _ . -",
            "key",
        )
    if not isinstance(kind, str) or kind not in ATTRIBUTE_TYPES:
        raise DeclarationRefused(
            "invalid_type", "type must be one of " + ", ".join(ATTRIBUTE_TYPES) + ".", "type"
        )
    if label is None:
        label = key
    if not isinstance(label, str) or not label.strip(" "):
        raise DeclarationRefused("invalid_label", "label must be text that is not blank.", "label")
    label = label.strip(" ")
    if len(label) > MAX_LABEL_LENGTH or CONTROL_RE.search(label):
        raise DeclarationRefused(
            "invalid_label",
            f"label is at most {MAX_LABEL_LENGTH} characters, without control characters.",
            "label",
        )
    return key, kind, label


def declare(key: str, kind: str, label: str) -> tuple[UserAttribute, bool]:
    """Declare ``key`` or change its type and label (checked by ``check_declaration``); (row, created).

    Changing the type does not rewrite values already stored: they stay as they are, and values written
    from now on must be of the new type. Added to the session; the caller commits.
    """
    from ..audit.services import record

    attribute = db.session.scalar(select(UserAttribute).where(UserAttribute.key == key))
    if attribute is None:
        attribute = UserAttribute(key=key, type=kind, label=label)
        db.session.add(attribute)
        db.session.flush()
        record("user_attribute.declared", attribute, name=key)
        return attribute, True
    if (attribute.type, attribute.label) != (kind, label):
        attribute.type, attribute.label = kind, label
        db.session.flush()
        record("user_attribute.changed", attribute, name=key)
    return attribute, False


def declaration_json(attribute: UserAttribute) -> dict[str, Any]:
    return {"key": attribute.key, "type": attribute.type, "label": attribute.label}
