"""The sandbox's own judgement of subscribe-message values (docs/wechat-rules.md, "Keyword values").

Written independently of Tongzhi's validator on purpose (style.md: the sandbox must not confirm our own
mistakes). Where the official pages leave a rule open the sandbox is lenient, so that it never rejects a
value real WeChat might accept: ``number`` may carry a sign, ``amount`` may omit the currency symbol, and
types the table does not document (``short_thing``, …) only get the generic checks.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

_DIGITS = frozenset("0123456789")
_HAN_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2EBEF),
    (0x30000, 0x3134F),
)
_TIME = r"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?"
_DATE_FORMS = (
    re.compile(r"(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日"),
    re.compile(r"(?P<y>\d{4})年(?P<m>\d{1,2})月"),
    re.compile(r"(?P<m>\d{1,2})月(?P<d>\d{1,2})日"),
    re.compile(r"(?P<y>\d{4})(?P<s>[-/.])(?P<m>\d{1,2})(?P=s)(?P<d>\d{1,2})"),
    re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})"),
    re.compile(r"(?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"),
)
_AMOUNT = re.compile(r"[¥￥$€£]?\d{1,10}(?:\.\d{1,2})?元?")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_LETTERS = re.compile(r"[A-Za-z]+")
_ALNUM_ASCII = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def is_han(ch: str) -> bool:
    """True for a Chinese (Han) character."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _HAN_RANGES)


def _is_symbol(ch: str) -> bool:
    # "symbol" = punctuation other than Chinese characters, letters and digits (official send page).
    return not ch.isalnum() and not ch.isspace() and not is_han(ch)


def has_control(value: str) -> bool:
    """Line breaks and other control characters are refused in every value (official send page)."""
    return any(unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029" for ch in value)


def _valid_date(text: str) -> bool:
    for form in _DATE_FORMS:
        match = form.fullmatch(text)
        if not match:
            continue
        parts = match.groupdict()
        month = int(parts["m"])
        if not 1 <= month <= 12:
            return False
        if parts.get("d") is None:
            return True
        day = int(parts["d"])
        # Without a year, 2000 (a leap year) lets 2月29日 through.
        year = int(parts["y"]) if parts.get("y") else 2000
        try:
            dt.date(year, month, day)
        except ValueError:
            return False
        return True
    return False


def _date_point(text: str) -> bool:
    """A date, optionally followed by a space and a 24-hour time."""
    date_part, _, time_part = text.partition(" ")
    if time_part and not re.fullmatch(_TIME, time_part.strip()):
        return False
    return _valid_date(date_part)


def _time_point(text: str) -> bool:
    """A 24-hour time, optionally preceded by a date and a space."""
    date_part, sep, time_part = text.rpartition(" ")
    if not re.fullmatch(_TIME, time_part):
        return False
    return not sep or _valid_date(date_part.strip())


def _ranged(point: Callable[[str], bool], value: str) -> bool:
    """``point`` or ``point ~ point``; the right side of a range may be a bare time (``9:00~10:00``)."""
    pieces = [p.strip() for p in value.split("~")]
    if len(pieces) == 1:
        return point(pieces[0])
    if len(pieces) != 2:
        return False
    return point(pieces[0]) and (point(pieces[1]) or re.fullmatch(_TIME, pieces[1]) is not None)


def _name(value: str) -> bool:
    if any(ch.isdigit() for ch in value):
        return False
    # Mixed Chinese + letters counts as Chinese: 10 characters; letters/symbols only: 20.
    limit = 10 if any(is_han(ch) for ch in value) else 20
    return len(value) <= limit


def _car_number(value: str) -> bool:
    if not 2 <= len(value) <= 8:
        return False
    first, middle, last = value[0], value[1:-1], value[-1]
    edge_ok = all(ch in _ALNUM_ASCII or is_han(ch) for ch in (first, last))
    return edge_ok and all(ch in _ALNUM_ASCII for ch in middle)


def _phone(value: str) -> bool:
    return (
        len(value) <= 17
        and any(ch in _DIGITS for ch in value)
        and all(ch in _DIGITS or ch == " " or _is_symbol(ch) for ch in value)
    )


_RULES: dict[str, Callable[[str], bool]] = {
    "thing": lambda v: len(v) <= 20,
    "number": lambda v: len(v) <= 32 and _NUMBER.fullmatch(v) is not None,
    "letter": lambda v: len(v) <= 32 and _LETTERS.fullmatch(v) is not None,
    "symbol": lambda v: len(v) <= 5 and all(_is_symbol(ch) for ch in v),
    "character_string": lambda v: len(v) <= 32 and not any(is_han(ch) for ch in v),
    "time": lambda v: _ranged(_time_point, v),
    "date": lambda v: _ranged(_date_point, v),
    "amount": lambda v: _AMOUNT.fullmatch(v) is not None,
    "phone_number": _phone,
    "car_number": _car_number,
    "name": _name,
    "phrase": lambda v: len(v) <= 5 and all(is_han(ch) for ch in v),
}

# Undocumented types (short_thing and whatever WeChat adds) get only this generic length bound.
_GENERIC_LIMIT = 20


def key_type(key: str) -> str:
    """Value type of a data key: trailing digits removed (``character_string12`` → ``character_string``)."""
    return key.rstrip("0123456789")


def value_ok(rule: str, value: str, enum_values: list[str] | None = None) -> bool:
    """Whether non-empty ``value`` satisfies ``rule``; enum rules need ``enum_values`` (none: no fit)."""
    if has_control(value):
        return False
    if rule in ("enum", "enum_string"):
        return value in (enum_values or [])
    check = _RULES.get(rule)
    if check is None:
        return len(value) <= _GENERIC_LIMIT
    return check(value)


def find_problem(keys: list[str], data: Any, enum_values: Mapping[str, list[str]]) -> tuple[str, str] | None:
    """First offending key of a send's ``data`` as (key, "empty" | "invalid"), or None when all pass.

    ``keys`` are the template's placeholders in content order; ``enum_values`` is keyed by keywordCode
    (``enum_string3.DATA``). Keys the template does not have are ignored, as WeChat ignores them.
    """
    if not isinstance(data, dict):
        data = {}
    for key in keys:
        item = data.get(key)
        value = item.get("value") if isinstance(item, dict) else None
        if value is None or (isinstance(value, str) and not value.strip()):
            return key, "empty"
        # The API documents string values; a JSON number or object is a caller bug worth surfacing.
        if not isinstance(value, str):
            return key, "invalid"
        if not value_ok(key_type(key), value, enum_values.get(f"{key}.DATA")):
            return key, "invalid"
    return None


# -- the Official Account's template messages ----------------------------------------------------------------

_TEMPLATE_KEY = re.compile(r"\{\{\s*([A-Za-z_]+\d*)\.DATA\s*\}\}")
# Classic (pre-category) templates name their keys first, keyword1…N and remark: free text.
_CLASSIC = frozenset({"first", "keyword", "remark"})
_CLASSIC_LIMIT = 200
_OA_AMOUNT = re.compile(r"[¥￥$€£]?\d{1,12}(?:\.\d{1,2})?元?")


def template_keys(content: str) -> list[str]:
    """Placeholder keys of a template's content, in order, without duplicates."""
    return list(dict.fromkeys(_TEMPLATE_KEY.findall(content or "")))


def oa_value_ok(rule: str, value: str, const_values: list[str] | None = None) -> bool:
    """The OA category template rules where they differ from the mini-program's
    (docs/wechat-rules.md, "Official Account"): ``amount`` up to 12 digits (10 for the mini-program),
    ``const`` only an approved value, and ``phrase`` is not in the OA table (only the generic bound)."""
    if has_control(value):
        return False
    if rule == "const":
        return value in (const_values or [])
    if rule == "amount":
        return _OA_AMOUNT.fullmatch(value) is not None
    if rule == "phrase":
        return len(value) <= _GENERIC_LIMIT
    return value_ok(rule, value)


def oa_find_problem(
    keys: list[str], data: Any, const_values: Mapping[str, list[str]]
) -> tuple[str, str] | None:
    """First offending key of an OA send's ``data`` as (key, "empty" | "invalid"), or None.

    Classic keys (first, keywordN, remark) take any text up to 200 characters and may be left out.
    A ``const`` key may be empty (only approved values or "" may be sent); every other typed key must
    have a value that passes its rule.
    """
    if not isinstance(data, dict):
        data = {}
    for key in keys:
        rule = key_type(key)
        item = data.get(key)
        value = item.get("value") if isinstance(item, dict) else None
        if value is not None and not isinstance(value, str):
            return key, "invalid"
        if rule in _CLASSIC:
            if value is not None and len(value) > _CLASSIC_LIMIT:
                return key, "invalid"
            continue
        if rule == "const" and value == "":
            continue
        if value is None or not value.strip():
            return key, "empty"
        if not oa_value_ok(rule, value, const_values.get(key)):
            return key, "invalid"
    return None
