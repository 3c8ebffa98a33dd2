"""Template keywords: parse a template's ``content``, validate values per type, suggest fixes.

WeChat fails a whole subscribe-message send with errcode 47003 ("argument invalid! data.thing3.value
invalid") when one keyword value breaks the rule of its type, so Tongzhi checks every value before it
queues a send. The type of a keyword is its placeholder name minus the trailing digits
(``{{thing3.DATA}}`` → key ``thing3`` → type ``thing``). The rules and their official source are in
docs/wechat-rules.md, "Keyword values"; where the official pages leave a point open, the choice is a
module-level setting (see "Settings").

Public API (standard library only, no Flask):

* :func:`keyword_type`, :func:`parse_content`, :func:`render_content`, :func:`render_text`
* :func:`validate_value`, :func:`validate_data`, :func:`has_errors`
* :func:`suggest_fix`, :func:`fix_all`
* :func:`enum_values_from_template`, :func:`type_label`, :func:`max_length`, :data:`KNOWN_TYPES`
* two rule sets, one checker: :data:`MINIPROGRAM_RULES` (subscribe messages, the default of every
  function above) and :data:`OFFICIAL_ACCOUNT_RULES` (OA template messages: ``amount`` ≤ 12 digits,
  ``const`` only an approved value or empty, no ``phrase`` in its table, classic ``first`` /
  ``keywordN`` / ``remark`` keys); pass ``rules=`` to choose

Contracts: the validators never raise, whatever the value (``None``, numbers, control characters,
emoji, lone surrogates); and when :func:`suggest_fix` returns a string, :func:`validate_value`
reports no error-severity violation for it.
"""

from __future__ import annotations

import calendar
import difflib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# --------------------------------------------------------------------------------------------------
# Settings (each one is a point the official pages leave open: docs/wechat-rules.md, "Open points")
# --------------------------------------------------------------------------------------------------

#: ``number`` is "digits only, decimal point allowed"; whether a sign is allowed is not documented.
#: Until a real account confirms that ``-5`` is accepted, a leading minus sign is an error.
ALLOW_NEGATIVE_NUMBER = False

#: ``amount`` is "one currency symbol + ≤ 10 digits", but the official examples include ``99.00元``
#: without a symbol, so whether the symbol is mandatory is open.
AMOUNT_REQUIRES_SYMBOL = False

#: How emoji or other non-BMP characters are counted is not documented. Rejecting them is the safe
#: default: a 47003 fails the whole send.
REJECT_NON_BMP = True

#: Max digits of an ``amount``. The doc says "≤ 10 digits, decimals allowed" without saying whether
#: the decimals count; we count every digit (the stricter reading). Official-Account templates allow 12.
AMOUNT_MAX_DIGITS = 10

#: Official-Account category templates allow 12 digits in an ``amount`` (docs/wechat-rules.md,
#: "Official Account").
OA_AMOUNT_MAX_DIGITS = 12

ELLIPSIS = "…"

Severity = Literal["error", "warning"]

# --------------------------------------------------------------------------------------------------
# Parsing template content
# --------------------------------------------------------------------------------------------------

# Keys are placeholder names such as thing1, character_string12, number01 or (doc table) enum.
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\.DATA\s*\}\}")
_TRAILING_DIGITS_RE = re.compile(r"[0-9]+$")
_LABEL_TRAILER = " \t:：\u3000"


@dataclass(frozen=True)
class Keyword:
    """One placeholder of a template: ``key`` as used in ``data``, its ``type``, and its UI label."""

    key: str
    type: str
    label: str = ""


def keyword_type(key: str) -> str:
    """Return the value type of a keyword key: the key minus trailing digits.

    ``character_string12`` → ``character_string``, ``number01`` → ``number``. A ``keywordCode`` such
    as ``enum_string2.DATA`` (from ``keywordEnumValueList``) is accepted too.
    """
    key = _normalise_key(key)
    return _TRAILING_DIGITS_RE.sub("", key)


def _normalise_key(key: object) -> str:
    text = str(key).strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2].strip()
    if text.endswith(".DATA"):
        text = text[: -len(".DATA")]
    return text


def parse_content(content: str | None) -> list[Keyword]:
    """Return the keywords of a template ``content`` in order of first appearance.

    ``"会议时间:{{date2.DATA}}\\n会议地点:{{thing1.DATA}}\\n"`` →
    ``[Keyword("date2", "date", "会议时间"), Keyword("thing1", "thing", "会议地点")]``.
    The label is the text on the same line before the placeholder (after any earlier placeholder on
    that line), without trailing colons and whitespace; it may be empty. A key that occurs twice is
    listed once, with the label of its first occurrence.
    """
    keywords: list[Keyword] = []
    seen: set[str] = set()
    for line in (content or "").splitlines():
        start = 0
        for match in _PLACEHOLDER_RE.finditer(line):
            key = match.group(1)
            label = line[start : match.start()].strip().rstrip(_LABEL_TRAILER).strip()
            start = match.end()
            if key not in seen:
                seen.add(key)
                keywords.append(Keyword(key=key, type=keyword_type(key), label=label))
    return keywords


def _plain_value(value: object) -> object:
    """Accept both ``"text"`` and WeChat's ``{"value": "text"}`` shape."""
    if isinstance(value, Mapping):
        return value.get("value")
    return value


def render_text(content: str | None, values: Mapping[str, Any], missing: str = "") -> str:
    """Substitute ``{{key.DATA}}`` in ``content`` with ``values[key]`` (str or ``{"value": str}``)."""

    def substitute(match: re.Match[str]) -> str:
        value = _plain_value(values.get(match.group(1)))
        return missing if value is None else str(value)

    return _PLACEHOLDER_RE.sub(substitute, content or "")


def render_content(
    content: str | None, values: Mapping[str, Any], missing: str = ""
) -> list[tuple[str, str]]:
    """Preview rows ``(label, value)`` for a message card, one per non-blank line of ``content``.

    The label is the text before the line's first placeholder (trailing colon removed); the value is
    the rest of the line with placeholders substituted (``missing`` for keys without a value). A
    line without placeholders becomes ``(line, "")``.
    """
    rows: list[tuple[str, str]] = []
    for line in (content or "").splitlines():
        if not line.strip():
            continue
        match = _PLACEHOLDER_RE.search(line)
        if match is None:
            rows.append((line.strip(), ""))
            continue
        label = line[: match.start()].strip().rstrip(_LABEL_TRAILER).strip()
        rows.append((label, render_text(line[match.start() :], values, missing).strip()))
    return rows


def enum_values_from_template(
    keyword_enum_value_list: Iterable[Mapping[str, Any]] | None,
) -> dict[str, list[str]]:
    """Map ``gettemplate``'s ``keywordEnumValueList`` to ``{key: [allowed values]}``.

    ``[{"keywordCode": "enum_string2.DATA", "enumValueList": ["客厅"]}]`` → ``{"enum_string2": ["客厅"]}``.
    """
    result: dict[str, list[str]] = {}
    for item in keyword_enum_value_list or ():
        code = item.get("keywordCode")
        if code:
            result[_normalise_key(code)] = [str(v) for v in item.get("enumValueList") or ()]
    return result


# --------------------------------------------------------------------------------------------------
# Violations and their messages
# --------------------------------------------------------------------------------------------------

_TYPE_LABELS: dict[str, tuple[str, str]] = {
    # type: (English, Chinese as in the official table)
    "thing": ("thing", "事物"),
    "number": ("number", "数字"),
    "letter": ("letter", "字母"),
    "symbol": ("symbol", "符号"),
    "character_string": ("character string", "字符串"),
    "time": ("time", "时间"),
    "date": ("date", "日期"),
    "amount": ("amount", "金额"),
    "phone_number": ("phone number", "电话"),
    "car_number": ("car number", "车牌"),
    "name": ("name", "姓名"),
    "phrase": ("phrase", "汉字"),
    "enum": ("enum", "枚举值"),
    "enum_string": ("enum", "枚举值"),
    # Official Account template messages only
    "const": ("constant", "常量"),
    "first": ("first line", "首行"),
    "keyword": ("keyword", "关键词"),
    "remark": ("remark", "备注"),
}

_FIELD_ZH = {"year": "年份", "month": "月份", "day": "日", "hour": "小时", "minute": "分钟", "second": "秒"}

# rule code → (English template, Chinese template). Placeholders: {key}, {type_en}, {type_zh},
# {type} (raw type name), plus the violation's params.
_MESSAGES: dict[str, tuple[str, str]] = {
    "not_string": (
        "{key}: the value must be text (got {got})",
        "{key}：取值必须是文本（当前是 {got}）",
    ),
    "empty": (
        "{key}: the value is empty; WeChat rejects the whole message (47003 “is empty”)",
        "{key}：取值为空，微信会拒绝整条消息（47003 “is empty”）",
    ),
    "missing": (
        "{key}: no value given; every keyword of the template must be filled in",
        "{key}：没有填写取值，模板的每个关键词都必须填写",
    ),
    "unexpected_key": (
        "{key}: this keyword is not part of the template",
        "{key}：模板中没有这个关键词",
    ),
    "control_char": (
        "{key}: contains a line break, tab or other control character ({char}); WeChat does not allow them",
        "{key}：包含换行、制表符或其他不可见的控制字符（{char}），微信不允许",
    ),
    "non_bmp": (
        "{key}: contains an emoji or other special character ({char}) that WeChat may reject",
        "{key}：包含表情符号或其他特殊字符（{char}），微信可能拒绝",
    ),
    "too_long": (
        '{key}: at most {max} characters for a "{type_en}" keyword (this value has {length})',
        "{key}：“{type_zh}”类关键词最多 {max} 个字符（当前 {length} 个）",
    ),
    "not_digits": (
        '{key}: a "{type_en}" keyword takes digits only, with at most one decimal point (e.g. 42 or 3.14)',
        "{key}：“{type_zh}”类关键词只能填数字，最多一个小数点（如 42 或 3.14）",
    ),
    "negative_number": (
        '{key}: WeChat may reject negative numbers in a "{type_en}" keyword; leave out the minus sign',
        "{key}：“{type_zh}”类关键词是否支持负数未经确认，请去掉负号",
    ),
    "not_letters": (
        '{key}: a "{type_en}" keyword takes English letters (A–Z, a–z) only',
        "{key}：“{type_zh}”类关键词只能填英文字母（A–Z、a–z）",
    ),
    "not_symbols": (
        '{key}: a "{type_en}" keyword takes symbols only (no letters, digits, Chinese or spaces)',
        "{key}：“{type_zh}”类关键词只能填标点符号（不能有字母、数字、汉字或空格）",
    ),
    "chinese_not_allowed": (
        '{key}: a "{type_en}" keyword cannot contain Chinese or other full-width characters ({char})',
        "{key}：“{type_zh}”类关键词不能包含中文或全角字符（{char}）",
    ),
    "not_ascii": (
        '{key}: a "{type_en}" keyword takes English letters, digits and symbols only ({char} is not allowed)',
        "{key}：“{type_zh}”类关键词只能填英文字母、数字和符号（不允许 {char}）",
    ),
    "bad_time": (
        '{key}: not a valid "{type_en}"; use 24-hour HH:MM or HH:MM:SS, optionally after a date '
        "(e.g. 15:01, 2019年10月1日 15:01, 2019-10-01 15:01); join a range with ~",
        "{key}：不是有效的“{type_zh}”；请用 24 小时制 HH:MM 或 HH:MM:SS，前面可带日期"
        "（如 15:01、2019年10月1日 15:01、2019-10-01 15:01），时间段用 ~ 连接",
    ),
    "bad_date": (
        '{key}: not a valid "{type_en}"; use e.g. 2019年10月1日, 2019年10月, 10月1日, 2019-10-01, '
        "2019/10/01, 2019.10.01, 2019-10 or 10-01, optionally with a 24-hour time; join a range with ~",
        "{key}：不是有效的“{type_zh}”；请用如 2019年10月1日、2019年10月、10月1日、2019-10-01、2019/10/01、"
        "2019.10.01、2019-10 或 10-01 的格式，可带 24 小时制时间，日期段用 ~ 连接",
    ),
    "out_of_range": (
        "{key}: {field} {value} is out of range (allowed {min}–{max})",
        "{key}：{field_zh} {value} 超出范围（允许 {min}–{max}）",
    ),
    "bad_amount": (
        '{key}: not a valid "{type_en}"; use an optional currency symbol, digits with optional decimals '
        "and an optional 元 (e.g. ¥99.00, ￥100, 99.00元)",
        "{key}：不是有效的“{type_zh}”；格式为可选的货币符号 + 数字（可带小数）+ 可选的“元”"
        "（如 ¥99.00、￥100、99.00元）",
    ),
    "missing_currency_symbol": (
        '{key}: an "{type_en}" keyword must start with a currency symbol (e.g. ¥99.00)',
        "{key}：“{type_zh}”类关键词必须以货币符号开头（如 ¥99.00）",
    ),
    "too_many_digits": (
        '{key}: at most {max} digits for an "{type_en}" keyword (this value has {digits})',
        "{key}：“{type_zh}”类关键词最多 {max} 位数字（当前 {digits} 位）",
    ),
    "bad_phone": (
        '{key}: a "{type_en}" keyword takes digits and symbols such as + - ( ) only (e.g. +86-0766-66888866)',
        "{key}：“{type_zh}”类关键词只能填数字和 + - ( ) 等符号（如 +86-0766-66888866）",
    ),
    "bad_car_number": (
        '{key}: not a valid "{type_en}"; English letters and digits, optionally a Chinese character '
        "first and last (e.g. 粤A8Z888挂)",
        "{key}：不是有效的“{type_zh}”；应为英文字母和数字，首尾可各有一个汉字（如 粤A8Z888挂）",
    ),
    "digits_not_allowed": (
        '{key}: a "{type_en}" keyword cannot contain digits',
        "{key}：“{type_zh}”类关键词不能包含数字",
    ),
    "not_chinese": (
        '{key}: a "{type_en}" keyword takes Chinese characters only (e.g. 配送中)',
        "{key}：“{type_zh}”类关键词只能填汉字（如 配送中）",
    ),
    "not_in_enum": (
        "{key}: “{value}” is not one of the template's allowed values: {allowed_en}",
        "{key}：“{value}”不是模板允许的取值，可选：{allowed_zh}",
    ),
    "enum_unknown": (
        "{key}: the allowed values of this enum keyword are unknown, so the value was not checked; "
        "sync the template",
        "{key}：不知道此枚举关键词的可选值，未做校验；请同步模板",
    ),
    "const_unknown": (
        "{key}: only a value approved for this constant keyword (or nothing) can be sent; WeChat does not "
        "list the approved values, so Tongzhi could not check this one",
        "{key}：常量类关键词只能发送审核通过的取值（或留空）；微信不提供已通过的取值，通知无法校验",
    ),
    "unknown_type": (
        '{key}: WeChat does not document the type "{type}", so only empty values and control characters '
        "were checked",
        "{key}：微信未公开“{type}”类型的规则，只检查了空值和控制字符",
    ),
}


@dataclass(frozen=True)
class Violation:
    """One broken rule for one keyword value.

    ``rule`` is a short stable code (``too_long``, ``empty``, ``bad_date``, …), ``params`` its details
    (e.g. ``{"max": 20, "length": 21}``). Errors block a send; warnings are shown but do not block.
    """

    key: str
    rule: str
    severity: Severity
    params: dict[str, Any] = field(hash=False)  # keeps violations hashable (usable in sets)
    message_en: str
    message_zh: str

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def message(self, locale: str | None = "en") -> str:
        """The message in Chinese for a ``zh…`` locale (``zh``, ``zh_CN``, ``zh-Hans``), else English."""
        return self.message_zh if str(locale or "").lower().startswith("zh") else self.message_en


def _violation(key: str, type_name: str, rule: str, severity: Severity = "error", **params: Any) -> Violation:
    type_en, type_zh = _TYPE_LABELS.get(type_name, (type_name, type_name))
    fmt = {"key": key, "type": type_name, "type_en": type_en, "type_zh": type_zh, **params}
    if "field" in params:
        fmt["field_zh"] = _FIELD_ZH.get(params["field"], params["field"])
    if "allowed" in params:
        shown = [str(v) for v in params["allowed"][:10]]
        more = len(params["allowed"]) > 10
        fmt["allowed_en"] = ", ".join(shown) + (", …" if more else "")
        fmt["allowed_zh"] = "、".join(shown) + ("……" if more else "")
    en, zh = _MESSAGES[rule]
    return Violation(key, rule, severity, dict(params), en.format(**fmt), zh.format(**fmt))


def has_errors(violations: Iterable[Violation]) -> bool:
    """True when any violation has severity ``error`` (i.e. the send would fail)."""
    return any(v.is_error for v in violations)


# --------------------------------------------------------------------------------------------------
# Character classes
# --------------------------------------------------------------------------------------------------


def _is_control(ch: str) -> bool:
    # C0/C1 controls and the Unicode line/paragraph separators are "line breaks" to WeChat; lone
    # surrogates cannot even be encoded as UTF-8 (the body would be corrupt → 47003).
    cp = ord(ch)
    return cp < 0x20 or 0x7F <= cp <= 0x9F or cp in (0x2028, 0x2029) or 0xD800 <= cp <= 0xDFFF


def _is_han(ch: str) -> bool:
    """A Chinese character (CJK unified/compatibility ideographs, extensions, 〇)."""
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0xF900 <= cp <= 0xFAFF
        or 0x20000 <= cp <= 0x3134F
        or cp == 0x3007
    )


def _is_cjk(ch: str) -> bool:
    """Chinese characters plus CJK punctuation, kana, hangul and full-width forms."""
    cp = ord(ch)
    return (
        _is_han(ch)
        or 0x3000 <= cp <= 0x30FF
        or 0xAC00 <= cp <= 0xD7AF
        or 0xFF00 <= cp <= 0xFFEF
        or 0x3100 <= cp <= 0x31FF
    )


def _is_symbol(ch: str) -> bool:
    """Punctuation or symbol (Unicode P*/S*), excluding CJK ideographs, letters, digits, spaces."""
    return unicodedata.category(ch)[0] in "PS"


def _is_ascii_letter(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _is_ascii_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _char_ref(ch: str) -> str:
    """How a character is shown in a message: itself when visible, plus its code point."""
    code = f"U+{ord(ch):04X}"
    if _is_control(ch) or unicodedata.category(ch) in ("Zs", "Cf", "Co", "Cn"):
        return code
    return f"{ch} {code}"


# --------------------------------------------------------------------------------------------------
# Per-type checks: each returns a list of (rule, params); the common checks run before them.
# --------------------------------------------------------------------------------------------------

Problems = list[tuple[str, dict[str, Any]]]

_NUMBER_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_AMOUNT_RE = re.compile(r"(?P<symbol>[^0-9])?(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<yuan>元)?")
_PHONE_ALLOWED = frozenset("0123456789+-() #*,./")


def _check_nothing(value: str) -> Problems:
    return []


def _check_number(value: str) -> Problems:
    if not _NUMBER_RE.fullmatch(value):
        return [("not_digits", {})]
    if value.startswith("-") and not ALLOW_NEGATIVE_NUMBER:
        return [("negative_number", {})]
    return []


def _check_letter(value: str) -> Problems:
    return [] if all(_is_ascii_letter(ch) for ch in value) else [("not_letters", {})]


def _check_symbol(value: str) -> Problems:
    return [] if all(_is_symbol(ch) for ch in value) else [("not_symbols", {})]


def _check_character_string(value: str) -> Problems:
    # Official community answer (docs/wechat-rules.md, "Keyword values"): no Chinese. We go further and accept printable ASCII only, because
    # "letters, digits, symbols" in WeChat's wording means half-width ones (order numbers, codes).
    for ch in value:
        if not (" " <= ch <= "~"):
            return [("chinese_not_allowed" if _is_cjk(ch) else "not_ascii", {"char": _char_ref(ch)})]
    return []


def _check_amount(value: str, max_digits: int | None = None) -> Problems:
    max_digits = AMOUNT_MAX_DIGITS if max_digits is None else max_digits
    match = _AMOUNT_RE.fullmatch(value)
    if not match or (match.group("symbol") and unicodedata.category(match.group("symbol")) != "Sc"):
        return [("bad_amount", {})]
    if AMOUNT_REQUIRES_SYMBOL and not match.group("symbol"):
        return [("missing_currency_symbol", {})]
    digits = sum(ch.isdigit() for ch in match.group("number"))
    if digits > max_digits:
        return [("too_many_digits", {"max": max_digits, "digits": digits})]
    return []


def _check_oa_amount(value: str) -> Problems:
    return _check_amount(value, OA_AMOUNT_MAX_DIGITS)


def _check_phone(value: str) -> Problems:
    # Official table: "digits and symbols". We allow the symbols phone numbers actually use.
    ok = all(ch in _PHONE_ALLOWED for ch in value) and any(_is_ascii_digit(ch) for ch in value)
    return [] if ok else [("bad_phone", {})]


def _check_car_number(value: str) -> Problems:
    middle = value
    if middle and _is_han(middle[0]):
        middle = middle[1:]
    if middle and _is_han(middle[-1]):
        middle = middle[:-1]
    ok = bool(middle) and all(_is_ascii_letter(ch) or _is_ascii_digit(ch) for ch in middle)
    return [] if ok else [("bad_car_number", {})]


def _check_name(value: str) -> Problems:
    problems: Problems = []
    if any(ch.isdigit() for ch in value):
        problems.append(("digits_not_allowed", {}))
    # ≤ 10 when any Chinese is present (mixed counts as Chinese), else ≤ 20 letters/symbols.
    limit = 10 if any(_is_han(ch) for ch in value) else 20
    if len(value) > limit:
        problems.append(("too_long", {"max": limit, "length": len(value)}))
    return problems


def _check_phrase(value: str) -> Problems:
    return [] if all(_is_han(ch) for ch in value) else [("not_chinese", {})]


# Dates and times. Digits are ASCII only (Python's \d would also match full-width digits).
_HMS = r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2}))?"
_Y, _M, _D = r"(?P<year>[0-9]{4})", r"(?P<month>[0-9]{1,2})", r"(?P<day>[0-9]{1,2})"
_DATE_FORMS = (
    # (pattern, may carry a time). A time follows Chinese forms directly or after spaces, numeric
    # forms after at least one space.
    (rf"{_Y}年{_M}月{_D}日(?:\s*{_HMS})?", True),
    (rf"{_Y}年{_M}月", False),
    (rf"{_M}月{_D}日(?:\s*{_HMS})?", True),
    (rf"{_Y}(?P<sep>[-/.]){_M}(?P=sep){_D}(?:\s+{_HMS})?", True),
    (rf"{_Y}[-/.]{_M}", False),
    (rf"{_M}[-/.]{_D}(?:\s+{_HMS})?", True),
)
_DATE_RES = tuple(re.compile(pattern) for pattern, _ in _DATE_FORMS)
_TIME_RE = re.compile(_HMS)
_DAYS_IN_MONTH_ANY_YEAR = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _parse_moment(text: str) -> dict[str, int] | None:
    """Parse one side of a range into its fields (year/month/day/hour/minute/second), or None."""
    for regex in (_TIME_RE, *_DATE_RES):
        match = regex.fullmatch(text)
        if match:
            return {
                name: int(val) for name, val in match.groupdict().items() if val is not None and name != "sep"
            }
    return None


def _range_problems(fields: dict[str, int]) -> Problems:
    limits: list[tuple[str, int, int]] = [("year", 1, 9999), ("month", 1, 12)]
    if "day" in fields:
        month = fields.get("month", 0)
        max_day = 31
        if 1 <= month <= 12:
            year = fields.get("year")
            max_day = (
                calendar.monthrange(year, month)[1]
                if year and 1 <= year <= 9999
                else _DAYS_IN_MONTH_ANY_YEAR[month - 1]
            )
        limits.append(("day", 1, max_day))
    limits += [("hour", 0, 23), ("minute", 0, 59), ("second", 0, 59)]
    for name, low, high in limits:
        if name in fields and not low <= fields[name] <= high:
            return [("out_of_range", {"field": name, "value": fields[name], "min": low, "max": high})]
    return []


def _check_moments(value: str, need: Literal["date", "time"]) -> Problems:
    bad = "bad_date" if need == "date" else "bad_time"
    parts = value.split("~")
    if len(parts) > 2:
        return [(bad, {})]
    for index, part in enumerate(parts):
        fields = _parse_moment(part)
        if fields is None:
            return [(bad, {})]
        # A "time" needs a clock time on every side; a "date" needs a date first, and its second side
        # may be a bare time ("2019年10月1日 15:01~16:00").
        if need == "time" and "hour" not in fields:
            return [(bad, {})]
        if need == "date" and "month" not in fields and "year" not in fields and index == 0:
            return [(bad, {})]
        problems = _range_problems(fields)
        if problems:
            return problems
    return []


def _check_time(value: str) -> Problems:
    return _check_moments(value, "time")


def _check_date(value: str) -> Problems:
    return _check_moments(value, "date")


# --------------------------------------------------------------------------------------------------
# Per-type clean-ups used by suggest_fix (after control characters/emoji are gone)
# --------------------------------------------------------------------------------------------------


def _fold_width(value: str) -> str:
    """Full-width ASCII (１２：３０～) → half-width (12:30~); ideographic space and wave dash too."""
    out = []
    for ch in value:
        cp = ord(ch)
        if 0xFF01 <= cp <= 0xFF5E:
            out.append(chr(cp - 0xFEE0))
        elif ch == "\u3000":
            out.append(" ")
        elif ch == "\u301c":  # 〜 WAVE DASH, often typed for ~
            out.append("~")
        else:
            out.append(ch)
    return "".join(out)


def _fix_number(value: str) -> str:
    negative = value.lstrip().startswith("-")
    if negative and not ALLOW_NEGATIVE_NUMBER:
        return ""  # dropping the sign would change the number's meaning: no sensible fix
    kept = "".join(ch for ch in value if _is_ascii_digit(ch) or ch == ".")
    head, dot, tail = kept.partition(".")
    kept = (head + dot + tail.replace(".", "")).strip(".")
    return ("-" + kept) if negative and kept else kept


def _fix_amount(value: str) -> str:
    value = value.replace(" ", "").replace(",", "")
    if AMOUNT_REQUIRES_SYMBOL and value and unicodedata.category(value[0]) != "Sc":
        value = "¥" + value  # Tongzhi is a Chinese product: the missing symbol is the yuan's.
    return value


def _fix_moments(value: str) -> str:
    value = re.sub(r"\s*~\s*", "~", value)
    # Zero-pad a one-digit hour: "9:05" → "09:05" (the documented form is HH:MM).
    return re.sub(r"(?<![0-9])([0-9]):([0-9]{2})", r"0\1:\2", value)


def _fix_car_number(value: str) -> str:
    return "".join(ch for ch in value if ch not in " ·.-•").upper()


def _keep(predicate: Callable[[str], bool]) -> Callable[[str], str]:
    return lambda value: "".join(ch for ch in value if predicate(ch))


# --------------------------------------------------------------------------------------------------
# The type table
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TypeRule:
    max_len: int | None  # in code points; None = no length rule (or handled by `check`)
    check: Callable[[str], Problems]
    clean: Callable[[str], str] = field(default=lambda value: value)
    fold_width: bool = False  # suggest_fix folds full-width ASCII before cleaning
    ellipsis: bool = False  # suggest_fix may shorten with "…" (else it just cuts)


_TYPE_RULES: dict[str, _TypeRule] = {
    "thing": _TypeRule(20, _check_nothing, ellipsis=True),
    "number": _TypeRule(32, _check_number, _fix_number, fold_width=True),
    "letter": _TypeRule(32, _check_letter, _keep(_is_ascii_letter), fold_width=True),
    "symbol": _TypeRule(5, _check_symbol, _keep(_is_symbol)),
    "character_string": _TypeRule(
        32, _check_character_string, lambda v: _keep(lambda ch: " " <= ch <= "~")(v).strip(), fold_width=True
    ),
    "time": _TypeRule(None, _check_time, _fix_moments, fold_width=True),
    "date": _TypeRule(None, _check_date, _fix_moments, fold_width=True),
    "amount": _TypeRule(None, _check_amount, _fix_amount, fold_width=True),
    "phone_number": _TypeRule(
        17, _check_phone, _keep(lambda ch: _is_ascii_digit(ch) or ch in "+-() "), fold_width=True
    ),
    "car_number": _TypeRule(8, _check_car_number, _fix_car_number, fold_width=True),
    "name": _TypeRule(
        None, _check_name, lambda v: re.sub(r" {2,}", " ", _keep(lambda ch: not ch.isdigit())(v))
    ),
    "phrase": _TypeRule(5, _check_phrase, _keep(_is_han)),
    "enum": _TypeRule(None, _check_nothing),
    "enum_string": _TypeRule(None, _check_nothing),
}

#: Types with a documented rule; anything else passes with an ``unknown_type`` warning.
KNOWN_TYPES: frozenset[str] = frozenset(_TYPE_RULES)
_ENUM_TYPES = frozenset({"enum", "enum_string"})


@dataclass(frozen=True)
class RuleSet:
    """One channel's value rules: the type table, the types whose allowed values come from a list
    (checked against it), and the types that may be left empty. Every check goes through the same
    functions (:func:`validate_value`, :func:`validate_data`, :func:`suggest_fix`); only the table differs.
    """

    name: str
    types: Mapping[str, _TypeRule]
    listed: frozenset[str]  # value must be one of a list (enum values, approved constants)
    may_be_empty: frozenset[str] = frozenset()

    @property
    def known_types(self) -> frozenset[str]:
        return frozenset(self.types)


#: Mini-program subscribe messages (docs/wechat-rules.md, "Keyword values").
MINIPROGRAM_RULES = RuleSet("miniprogram", _TYPE_RULES, _ENUM_TYPES)

#: Official Account template messages (docs/wechat-rules.md, "Official Account"): the mini-program's
#: table except ``amount`` up to 12 digits, ``const`` (constant text ≤ 20, only a pre-approved value or
#: empty), and no ``phrase`` (not in the OA's table: passed with an ``unknown_type`` warning, like every
#: type the table does not know). Classic templates' ``first`` / ``keywordN`` / ``remark`` are free text;
#: ``first`` and ``remark`` may be left empty.
_OA_TYPE_RULES: dict[str, _TypeRule] = {
    **{name: rule for name, rule in _TYPE_RULES.items() if name != "phrase"},
    "amount": _TypeRule(None, _check_oa_amount, _fix_amount, fold_width=True),
    "const": _TypeRule(20, _check_nothing),
    "first": _TypeRule(None, _check_nothing),
    "keyword": _TypeRule(None, _check_nothing),
    "remark": _TypeRule(None, _check_nothing),
}
OFFICIAL_ACCOUNT_RULES = RuleSet(
    "official_account",
    _OA_TYPE_RULES,
    _ENUM_TYPES | {"const"},
    may_be_empty=frozenset({"const", "first", "remark"}),
)


def type_label(type_name: str, locale: str | None = "en") -> str:
    """Human name of a type (``thing`` → "thing" / "事物"); unknown types are returned unchanged."""
    en, zh = _TYPE_LABELS.get(type_name, (type_name, type_name))
    return zh if str(locale or "").lower().startswith("zh") else en


def max_length(type_name: str, rules: RuleSet = MINIPROGRAM_RULES) -> int | None:
    """Maximum length in characters for a type (``name``: 20, the limit without Chinese), or None."""
    if type_name == "name":
        return 20
    rule = rules.types.get(type_name)
    return rule.max_len if rule else None


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def validate_value(
    key: str,
    value: object,
    enum_values: Iterable[str] | None = None,
    *,
    type_name: str | None = None,
    rules: RuleSet = MINIPROGRAM_RULES,
) -> list[Violation]:
    """Check one keyword value against the rule of its type; an empty list means valid.

    The type comes from ``key`` (``thing3`` → ``thing``) unless ``type_name`` is given (e.g. the
    ``rule`` from ``getpubtemplatekeywords``). ``enum_values`` are the allowed values of an enum
    keyword. Errors mean WeChat would answer 47003; warnings (unknown type, enum list unknown) do not
    block. Never raises: ``None`` and non-strings yield a violation. ``rules`` is the channel's rule
    set (:data:`MINIPROGRAM_RULES` by default, :data:`OFFICIAL_ACCOUNT_RULES`).
    """
    key = _normalise_key(key)
    type_name = type_name or keyword_type(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if type_name in rules.may_be_empty and (value is None or value == ""):
            return []
        return [_violation(key, type_name, "empty")]
    if not isinstance(value, str):
        return [_violation(key, type_name, "not_string", got=type(value).__name__)]

    violations: list[Violation] = []
    control = next((ch for ch in value if _is_control(ch)), None)
    if control is not None:
        violations.append(_violation(key, type_name, "control_char", char=_char_ref(control)))
    astral = next((ch for ch in value if ord(ch) > 0xFFFF), None)
    if REJECT_NON_BMP and astral is not None:
        violations.append(_violation(key, type_name, "non_bmp", char=_char_ref(astral)))

    rule = rules.types.get(type_name)
    if rule is None:
        violations.append(_violation(key, type_name, "unknown_type", "warning"))
        return violations
    if rule.max_len is not None and len(value) > rule.max_len:
        violations.append(_violation(key, type_name, "too_long", max=rule.max_len, length=len(value)))
    for code, params in rule.check(value):
        violations.append(_violation(key, type_name, code, **params))
    if type_name in rules.listed:
        allowed = [str(v) for v in enum_values or ()]
        if not allowed:
            unknown = "const_unknown" if type_name == "const" else "enum_unknown"
            violations.append(_violation(key, type_name, unknown, "warning"))
        elif value not in allowed:
            violations.append(_violation(key, type_name, "not_in_enum", value=_short(value), allowed=allowed))
    return violations


def _short(value: str, limit: int = 30) -> str:
    return value if len(value) <= limit else value[: limit - 1] + ELLIPSIS


def _keys_of(keywords: Iterable[Keyword | str]) -> list[tuple[str, str]]:
    """(key, type) pairs from Keyword objects or plain keys."""
    pairs = []
    for kw in keywords:
        if isinstance(kw, Keyword):
            pairs.append((kw.key, kw.type))
        else:
            key = _normalise_key(kw)
            pairs.append((key, keyword_type(key)))
    return pairs


def validate_data(
    keywords: Iterable[Keyword | str],
    data: Mapping[str, Any] | None,
    enum_values_by_key: Mapping[str, Iterable[str]] | None = None,
    *,
    rules: RuleSet = MINIPROGRAM_RULES,
) -> list[Violation]:
    """Check a whole ``data`` payload against the template's keywords; an empty list means valid.

    ``data`` maps keys to strings or to WeChat's ``{"value": str}``. Every keyword must have a
    non-empty value (``missing`` / ``empty`` errors); keys that are not in the template are
    ``unexpected_key`` errors. ``enum_values_by_key`` maps a key (or ``keywordCode``) to its allowed
    values (see :func:`enum_values_from_template`). Violations come in template order, extras last.
    """
    data = data if isinstance(data, Mapping) else {}
    enums = {_normalise_key(k): v for k, v in (enum_values_by_key or {}).items()}
    pairs = _keys_of(keywords)
    violations: list[Violation] = []
    for key, type_name in pairs:
        if key not in data:
            if type_name not in rules.may_be_empty:
                violations.append(_violation(key, type_name, "missing"))
            continue
        value = _plain_value(data[key])
        violations += validate_value(key, value, enums.get(key), type_name=type_name, rules=rules)
    known = {key for key, _ in pairs}
    for extra in data:
        if extra not in known:
            violations.append(_violation(str(extra), keyword_type(str(extra)), "unexpected_key"))
    return violations


# --------------------------------------------------------------------------------------------------
# Fixes
# --------------------------------------------------------------------------------------------------


def _strip_invisible(value: str) -> str:
    """Control characters → space (and non-BMP dropped when rejected), then collapse whitespace."""
    out = []
    for ch in value:
        if _is_control(ch):
            out.append(" ")
        elif REJECT_NON_BMP and ord(ch) > 0xFFFF:
            continue
        else:
            out.append(ch)
    return re.sub(r"\s+", " ", "".join(out)).strip()


def _shorten(value: str, limit: int, ellipsis: bool) -> str:
    if len(value) <= limit:
        return value
    if ellipsis:
        return value[: limit - 1].rstrip() + ELLIPSIS
    return value[:limit].strip()


def _closest_enum(value: str, allowed: list[str]) -> str | None:
    folded = _fold_width(value).strip().casefold()
    for option in allowed:
        if _fold_width(option).strip().casefold() == folded:
            return option
    matches = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
    return matches[0] if matches else None


def suggest_fix(
    key: str,
    value: object,
    enum_values: Iterable[str] | None = None,
    *,
    type_name: str | None = None,
    rules: RuleSet = MINIPROGRAM_RULES,
) -> str | None:
    """A corrected value that passes :func:`validate_value`, or None when no sensible fix exists.

    A value that is already valid is returned unchanged. Otherwise: control characters become
    spaces, emoji (non-BMP) are dropped, full-width digits/punctuation are folded for machine-like
    types, characters the type forbids are removed, and over-long text is shortened (``thing`` with
    a trailing "…", other types by cutting). Enum values snap to a close allowed value. Empty
    results, unparseable dates and far-off enum values give None. Contract: a returned string never
    has error-severity violations.
    """
    if not isinstance(value, str):
        return None
    key = _normalise_key(key)
    type_name = type_name or keyword_type(key)
    allowed = [str(v) for v in enum_values or ()]
    if not has_errors(validate_value(key, value, allowed, type_name=type_name, rules=rules)):
        return value

    fixed = _strip_invisible(value)
    rule = rules.types.get(type_name)
    if rule is not None:
        if rule.fold_width:
            fixed = _fold_width(fixed)
        fixed = rule.clean(fixed).strip()
        if type_name == "name":
            fixed = _shorten(fixed, 10 if any(_is_han(ch) for ch in fixed) else 20, ellipsis=False)
        elif rule.max_len is not None:
            fixed = _shorten(fixed, rule.max_len, rule.ellipsis)
        if type_name in rules.listed and allowed:
            fixed = _closest_enum(fixed, allowed) or ""
    if not fixed or has_errors(validate_value(key, fixed, allowed, type_name=type_name, rules=rules)):
        return None
    return fixed


@dataclass(frozen=True)
class FixResult:
    """Outcome of :func:`fix_all`: the values to send and what happened to each key."""

    values: dict[str, str]
    changed: list[str]  # keys whose value was replaced by a fix
    unfixable: list[str]  # keys still invalid (or missing): the operator must edit them
    dropped: list[str]  # keys removed because the template does not have them


def fix_all(
    keywords: Iterable[Keyword | str],
    data: Mapping[str, Any] | None,
    enum_values_by_key: Mapping[str, Iterable[str]] | None = None,
) -> FixResult:
    """Apply :func:`suggest_fix` to every invalid value of a payload.

    Returns plain string values (``{"value": ...}`` wrappers are unwrapped) for the template's keys.
    Invalid values without a fix are kept as they were (non-strings as ``""``) and listed in
    ``unfixable``; missing keys are listed there too and left out of ``values``.
    """
    data = data if isinstance(data, Mapping) else {}
    enums = {_normalise_key(k): v for k, v in (enum_values_by_key or {}).items()}
    pairs = _keys_of(keywords)
    values: dict[str, str] = {}
    changed: list[str] = []
    unfixable: list[str] = []
    for key, type_name in pairs:
        if key not in data:
            unfixable.append(key)
            continue
        value = _plain_value(data[key])
        allowed = enums.get(key)
        fixed = suggest_fix(key, value, allowed, type_name=type_name)
        if fixed is None:
            values[key] = value if isinstance(value, str) else ""
            unfixable.append(key)
        else:
            values[key] = fixed
            if fixed != value:
                changed.append(key)
    known = {key for key, _ in pairs}
    dropped = [str(extra) for extra in data if extra not in known]
    return FixResult(values, changed, unfixable, dropped)
