"""Tests for dashboard.wechat.keywords: parsing template content, per-type validation, fixes."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.wechat import keywords as kw
from dashboard.wechat.keywords import (
    KNOWN_TYPES,
    Keyword,
    Violation,
    enum_values_from_template,
    fix_all,
    has_errors,
    keyword_type,
    parse_content,
    render_content,
    render_text,
    suggest_fix,
    validate_data,
    validate_value,
)

# No example database: the suite must not write into the shared working tree.
FAST = settings(max_examples=200, database=None, deadline=None)


def errors(key: str, value: object, enum_values: list[str] | None = None) -> list[Violation]:
    return [v for v in validate_value(key, value, enum_values) if v.severity == "error"]


def rules(key: str, value: object, enum_values: list[str] | None = None) -> set[str]:
    return {v.rule for v in errors(key, value, enum_values)}


# --------------------------------------------------------------------------------------------------
# parse_content / keyword_type / rendering
# --------------------------------------------------------------------------------------------------


def test_parse_content_facts_example() -> None:
    content = "会议时间:{{date2.DATA}}\n会议地点:{{thing1.DATA}}\n"
    assert parse_content(content) == [
        Keyword(key="date2", type="date", label="会议时间"),
        Keyword(key="thing1", type="thing", label="会议地点"),
    ]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("character_string12", "character_string"),
        ("number01", "number"),
        ("name01", "name"),
        ("short_thing1", "short_thing"),
        ("enum_string2", "enum_string"),
        ("phone_number3", "phone_number"),
        ("enum_string2.DATA", "enum_string"),
        ("enum", "enum"),
    ],
)
def test_keyword_type(key: str, expected: str) -> None:
    assert keyword_type(key) == expected


def test_parse_content_types_labels_and_duplicates() -> None:
    content = (
        "订单号：{{character_string12.DATA}}\r\n"
        "数量 : {{number01.DATA}}\n"
        "\n"
        "{{short_thing1.DATA}}\n"
        "房间：{{enum_string2.DATA}}\n"
        "订单号：{{character_string12.DATA}}\n"
        "时间:{{time3.DATA}} 至 {{time4.DATA}}"
    )
    assert parse_content(content) == [
        Keyword("character_string12", "character_string", "订单号"),
        Keyword("number01", "number", "数量"),
        Keyword("short_thing1", "short_thing", ""),
        Keyword("enum_string2", "enum_string", "房间"),
        Keyword("time3", "time", "时间"),
        Keyword("time4", "time", "至"),
    ]


def test_parse_content_empty_inputs() -> None:
    assert parse_content("") == []
    assert parse_content(None) == []
    assert parse_content("纯文本，没有占位符") == []


def test_render_content_and_text() -> None:
    content = "会议时间:{{date2.DATA}}\n会议地点:{{thing1.DATA}}\n说明文字\n"
    values = {"date2": "2019年10月1日", "thing1": {"value": "3号会议室"}}
    assert render_content(content, values) == [
        ("会议时间", "2019年10月1日"),
        ("会议地点", "3号会议室"),
        ("说明文字", ""),
    ]
    assert render_content(content, {}, missing="—")[0] == ("会议时间", "—")
    assert render_text(content, values) == "会议时间:2019年10月1日\n会议地点:3号会议室\n说明文字\n"


def test_enum_values_from_template() -> None:
    raw = [{"keywordCode": "enum_string2.DATA", "enumValueList": ["客厅", "卧室"]}]
    assert enum_values_from_template(raw) == {"enum_string2": ["客厅", "卧室"]}
    assert enum_values_from_template(None) == {}


# --------------------------------------------------------------------------------------------------
# Valid examples from the official send page (docs/wechat-rules.md, "Keyword values")
# --------------------------------------------------------------------------------------------------

VALID = [
    ("thing1", "请注意查收"),
    ("thing1", "一二三四五六七八九十一二三四五六七八九十"),  # exactly 20
    ("thing1", "A楼 3层, #12!"),
    ("number1", "42"),
    ("number1", "3.14"),
    ("number1", "9" * 32),
    ("letter1", "abcXYZ"),
    ("symbol1", "!?#"),
    ("symbol1", "…，。"),
    ("character_string1", "A20240101001"),
    ("character_string1", "SO-2024/01_#7"),
    ("time1", "15:01"),
    ("time1", "15:01:59"),
    ("time1", "2019年10月1日 15:01"),
    ("time1", "2019年10月1日15:01"),
    ("time1", "2018-01-01 08:00"),
    ("time1", "10月1日 15:01"),
    ("time1", "12:30~13:00"),
    ("time1", "2019年10月1日 15:01~2019年10月1日 16:00"),
    ("date1", "2019年10月1日"),
    ("date1", "2019年10月1日 15:01"),
    ("date1", "2019年10月"),
    ("date1", "10月1日"),
    ("date1", "2018-01-01"),
    ("date1", "2018/01/01"),
    ("date1", "2018.01.01"),
    ("date1", "2018-01"),
    ("date1", "01-01"),
    ("date1", "2018-01-01 15:01:02"),
    ("date1", "2018-01-01~2018-01-07"),
    ("date1", "2019年10月1日 15:01~16:00"),
    ("date1", "2024-02-29"),
    ("amount1", "¥99.00"),
    ("amount1", "￥100"),
    ("amount1", "99.00元"),
    ("amount1", "$5"),
    ("amount1", "¥1234567890"),
    ("phone_number1", "+86-0766-66888866"),
    ("phone_number1", "(0766) 6688 8866"),
    ("phone_number1", "13800138000"),
    ("car_number1", "粤A8Z888挂"),
    ("car_number1", "粤AD12345"),
    ("car_number1", "A12345"),
    ("name1", "张三"),
    ("name1", "欧阳娜娜·阿依古丽"),
    ("name1", "John Smith-Brown"),
    ("phrase1", "配送中"),
    ("phrase1", "已发货"),
    ("phrase1", "一二三四五"),
]


@pytest.mark.parametrize(("key", "value"), VALID)
def test_documented_values_are_valid(key: str, value: str) -> None:
    assert validate_value(key, value) == []


def test_enum_value_in_list_is_valid() -> None:
    assert validate_value("enum_string2", "客厅", ["客厅", "卧室"]) == []
    assert validate_value("enum1", "卧室", ["客厅", "卧室"]) == []


# --------------------------------------------------------------------------------------------------
# Rejected values: the rule, the key, and both messages
# --------------------------------------------------------------------------------------------------

INVALID = [
    ("thing3", "一二三四五六七八九十一二三四五六七八九十一", "too_long"),
    ("phrase2", "一二三四五六", "too_long"),
    ("phrase2", "配送ok", "not_chinese"),
    ("character_string5", "订单A001", "chinese_not_allowed"),
    ("character_string5", "A００1", "chinese_not_allowed"),
    ("character_string5", "Café", "not_ascii"),
    ("character_string5", "A" * 33, "too_long"),
    ("number4", "12a", "not_digits"),
    ("number4", "1.2.3", "not_digits"),
    ("number4", "-5", "negative_number"),
    ("number4", "9" * 33, "too_long"),
    ("letter6", "abc1", "not_letters"),
    ("letter6", "a" * 33, "too_long"),
    ("symbol7", "!a", "not_symbols"),
    ("symbol7", "!!!!!!", "too_long"),
    ("name8", "张三3", "digits_not_allowed"),
    ("name8", "一二三四五六七八九十一", "too_long"),
    ("name8", "A" * 21, "too_long"),
    ("car_number9", "粤A8Z888挂X", "too_long"),
    ("car_number9", "粤挂", "bad_car_number"),
    ("car_number9", "粤A-8Z888", "bad_car_number"),
    ("amount10", "¥12345678901", "too_many_digits"),
    ("amount10", "99.00 元", "bad_amount"),
    ("amount10", "A99", "bad_amount"),
    ("amount10", "¥", "bad_amount"),
    ("phone_number11", "1" * 18, "too_long"),
    ("phone_number11", "call 12345", "bad_phone"),
    ("time12", "25:00", "out_of_range"),
    ("time12", "12:60", "out_of_range"),
    ("time12", "9:05", "bad_time"),
    ("time12", "2019年10月1日", "bad_time"),
    ("time12", "下午三点", "bad_time"),
    ("time12", "12:00~13:00~14:00", "bad_time"),
    ("date13", "2019-13-01", "out_of_range"),
    ("date13", "2019-02-30", "out_of_range"),
    ("date13", "2019-01-32", "out_of_range"),
    ("date13", "2019-01/01", "bad_date"),
    ("date13", "15:01", "bad_date"),
    ("date13", "2019-01-01 24:00", "out_of_range"),
    ("date13", "yesterday", "bad_date"),
    ("thing14", "第一行\n第二行", "control_char"),
    ("thing14", "tab\there", "control_char"),
    ("thing14", "nul\x00", "control_char"),
    ("thing14", "c1\x85", "control_char"),
    ("thing14", "sep\u2028", "control_char"),
    ("thing14", "好评👍", "non_bmp"),
    ("thing15", "", "empty"),
    ("thing15", "   ", "empty"),
    ("thing15", None, "empty"),
    ("thing15", 42, "not_string"),
]


@pytest.mark.parametrize(("key", "value", "rule"), INVALID)
def test_bad_values_are_rejected_with_key_in_messages(key: str, value: object, rule: str) -> None:
    found = errors(key, value)
    assert rule in {v.rule for v in found}, found
    for violation in found:
        assert violation.key == key
        assert violation.message("en").startswith(f"{key}:")
        assert violation.message("zh_CN").startswith(f"{key}：")
        assert violation.message_en != violation.message_zh


def test_enum_value_not_in_list() -> None:
    (violation,) = validate_value("enum_string2", "厨房", ["客厅", "卧室"])
    assert violation.rule == "not_in_enum"
    assert violation.severity == "error"
    assert violation.params["allowed"] == ["客厅", "卧室"]
    assert "enum_string2" in violation.message("en") and "客厅" in violation.message("en")
    assert "enum_string2" in violation.message("zh") and "卧室" in violation.message("zh")


def test_enum_without_known_values_is_a_warning() -> None:
    (violation,) = validate_value("enum_string2", "厨房")
    assert (violation.rule, violation.severity) == ("enum_unknown", "warning")


def test_thing_message_wording() -> None:
    (violation,) = validate_value("thing3", "x" * 21)
    assert violation.params == {"max": 20, "length": 21}
    assert (
        violation.message("en") == 'thing3: at most 20 characters for a "thing" keyword (this value has 21)'
    )
    assert violation.message("zh") == "thing3：“事物”类关键词最多 20 个字符（当前 21 个）"
    assert violation.message("zh-Hans") == violation.message_zh
    assert violation.message("en_US") == violation.message(None) == violation.message_en


def test_length_counts_code_points() -> None:
    assert validate_value("thing1", "é" * 20) == []  # precomposed: 20 code points
    assert rules("thing1", "e\u0301" * 11) == {"too_long"}  # 22 code points


def test_unknown_type_is_only_a_warning() -> None:
    (violation,) = validate_value("short_thing1", "任意长度的文本" * 10)
    assert (violation.rule, violation.severity) == ("unknown_type", "warning")
    assert "short_thing1" in violation.message("en") and "short_thing" in violation.message("zh")
    # ... but empty and control characters are still errors.
    assert rules("short_thing1", "") == {"empty"}
    assert rules("short_thing1", "a\nb") == {"control_char"}


def test_settings_switch_uncertain_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kw, "ALLOW_NEGATIVE_NUMBER", True)
    assert validate_value("number1", "-5.5") == []
    monkeypatch.setattr(kw, "AMOUNT_REQUIRES_SYMBOL", True)
    assert rules("amount1", "99.00元") == {"missing_currency_symbol"}
    assert validate_value("amount1", "¥99.00") == []
    assert suggest_fix("amount1", "99.00元") == "¥99.00元"
    monkeypatch.setattr(kw, "REJECT_NON_BMP", False)
    assert validate_value("thing1", "好评👍") == []


def test_has_errors() -> None:
    assert has_errors(validate_value("thing1", ""))
    assert not has_errors(validate_value("short_thing1", "x"))


# --------------------------------------------------------------------------------------------------
# validate_data
# --------------------------------------------------------------------------------------------------

CONTENT = "会议时间:{{date2.DATA}}\n会议地点:{{thing1.DATA}}\n房间:{{enum_string3.DATA}}\n"


def test_validate_data_accepts_good_payload_in_both_shapes() -> None:
    keywords = parse_content(CONTENT)
    enums = enum_values_from_template([{"keywordCode": "enum_string3.DATA", "enumValueList": ["A", "B"]}])
    plain = {"date2": "2019年10月1日", "thing1": "3号会议室", "enum_string3": "A"}
    wrapped = {k: {"value": v} for k, v in plain.items()}
    assert validate_data(keywords, plain, enums) == []
    assert validate_data(keywords, wrapped, enums) == []
    assert validate_data(["date2", "thing1"], {"date2": "2019年10月1日", "thing1": "x"}) == []


def test_validate_data_missing_empty_and_extra_keys() -> None:
    keywords = parse_content(CONTENT)
    found = validate_data(keywords, {"date2": "2019年10月1日", "thing1": " ", "thing9": "x"}, {})
    assert [(v.key, v.rule) for v in found if v.severity == "error"] == [
        ("thing1", "empty"),
        ("enum_string3", "missing"),
        ("thing9", "unexpected_key"),
    ]
    missing = next(v for v in found if v.rule == "missing")
    assert "enum_string3" in missing.message("en") and "enum_string3" in missing.message("zh")
    extra = next(v for v in found if v.rule == "unexpected_key")
    assert "thing9" in extra.message("en") and "thing9" in extra.message("zh")


def test_validate_data_never_raises_on_junk() -> None:
    keywords = parse_content(CONTENT)
    assert {v.rule for v in validate_data(keywords, None)} == {"missing"}
    assert "not_string" in {v.rule for v in validate_data(keywords, {"date2": ["x"], "thing1": {"value": 3}})}


# --------------------------------------------------------------------------------------------------
# suggest_fix / fix_all
# --------------------------------------------------------------------------------------------------

FIXES = [
    ("thing1", "一二三四五六七八九十一二三四五六七八九十一二", "一二三四五六七八九十一二三四五六七八九…"),
    ("thing1", "第一行\n第二行\t结束", "第一行 第二行 结束"),
    ("thing1", "好评👍 谢谢", "好评 谢谢"),
    ("time1", "１２：３０～１３：００", "12:30~13:00"),
    ("time1", "9:05", "09:05"),
    ("time1", "12:30 ~ 13:00", "12:30~13:00"),
    ("date1", "２０１８－０１－０１", "2018-01-01"),
    ("number1", "12abc", "12"),
    ("number1", "1,234.5.6", "1234.56"),
    ("number1", "１２", "12"),
    ("letter1", "abc123DEF", "abcDEF"),
    ("letter1", "a" * 40, "a" * 32),
    ("character_string1", "订单A001", "A001"),
    ("character_string1", "Ａ００１", "A001"),
    ("character_string1", "X" * 40, "X" * 32),
    ("phrase1", "配送中abc", "配送中"),
    ("phrase1", "正在配送中哦", "正在配送中"),
    ("phone_number1", "电话：+86 0766-66888866", "+86 0766-66888866"),
    ("car_number1", "粤a·8z888挂", "粤A8Z888挂"),
    ("name1", "张三3号", "张三号"),
    ("symbol1", "a!b?c#d$e%f^", "!?#$%"),
    ("amount1", "¥1,000.00", "¥1000.00"),
    ("amount1", "99.00 元", "99.00元"),
    ("short_thing1", "a\nb", "a b"),
]


@pytest.mark.parametrize(("key", "value", "expected"), FIXES)
def test_suggest_fix(key: str, value: str, expected: str) -> None:
    assert suggest_fix(key, value) == expected
    assert not has_errors(validate_value(key, expected))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("thing1", ""),
        ("thing1", "\n\t"),
        ("thing1", None),
        ("date1", "yesterday"),
        ("date1", "2019-02-30"),
        ("time1", "25:00"),
        ("number1", "abc"),
        ("number1", "-5"),  # dropping the sign would change the meaning
        ("amount1", "¥12345678901"),
        ("phrase1", "abc"),
    ],
)
def test_suggest_fix_gives_up(key: str, value: object) -> None:
    assert suggest_fix(key, value) is None


def test_suggest_fix_keeps_valid_value() -> None:
    assert suggest_fix("thing1", "a  b") == "a  b"


def test_suggest_fix_enum() -> None:
    allowed = ["已发货", "配送中", "已签收"]
    assert suggest_fix("enum_string1", "已发贷", allowed) == "已发货"
    assert suggest_fix("enum_string1", " 配送中\n", allowed) == "配送中"
    assert suggest_fix("enum1", "ＯＫ", ["ok", "no"]) == "ok"
    assert suggest_fix("enum_string1", "完全不同的值", allowed) is None
    assert suggest_fix("enum_string1", "随便\n", None) == "随便"


def test_fix_all() -> None:
    keywords = parse_content("{{thing1.DATA}}{{date2.DATA}}{{phrase3.DATA}}{{number4.DATA}}")
    result = fix_all(
        keywords,
        {"thing1": {"value": "好" * 25}, "date2": "2019年10月1日", "phrase3": "abc", "thing9": "x"},
    )
    assert result.values == {"thing1": "好" * 19 + "…", "date2": "2019年10月1日", "phrase3": "abc"}
    assert result.changed == ["thing1"]
    assert result.unfixable == ["phrase3", "number4"]
    assert result.dropped == ["thing9"]


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

TYPES = sorted(KNOWN_TYPES | {"short_thing", "const"})
ENUM = ["已发货", "配送中", "A-1"]

# Everything, including controls, surrogates and emoji (st.text leaves out surrogates by default).
ANY_TEXT = (
    st.text()
    | st.text(st.characters(codec=None, exclude_categories=()))
    | st.sampled_from(
        ["１２：３０～１３：００", "2019年10月1日 15:01", "¥99.00", "粤A8Z888挂", "9:05", "-1", "  "]
    )
)


@pytest.mark.parametrize("type_name", TYPES)
@FAST
@given(value=ANY_TEXT)
def test_validate_never_raises_and_fix_is_valid(type_name: str, value: str) -> None:
    key = f"{type_name}7"
    enum_values = ENUM if type_name.startswith("enum") else None
    violations = validate_value(key, value, enum_values)
    assert all(isinstance(v, Violation) and v.key == key for v in violations)
    for v in violations:
        assert v.message("en") and v.message("zh")
    fixed = suggest_fix(key, value, enum_values)
    if fixed is not None:
        assert not has_errors(validate_value(key, fixed, enum_values)), fixed


@FAST
@given(value=st.none() | st.integers() | st.floats() | st.binary() | st.lists(st.text()))
def test_validate_non_strings(value: object) -> None:
    assert has_errors(validate_value("thing1", value))
    assert suggest_fix("thing1", value) is None


def _fmt_date(d: date, form: int) -> str:
    return [
        f"{d.year}年{d.month}月{d.day}日",
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}",
        f"{d.year:04d}/{d.month:02d}/{d.day:02d}",
        f"{d.year:04d}.{d.month:02d}.{d.day:02d}",
        f"{d.year:04d}-{d.month:02d}",
        f"{d.month:02d}-{d.day:02d}",
        f"{d.month}月{d.day}日",
    ][form]


_any_date = st.dates(min_value=date(1000, 1, 1))  # the accepted forms have a 4-digit year
_dates = st.builds(_fmt_date, _any_date, st.integers(0, 6))
_times = st.times().map(lambda t: t.strftime("%H:%M") if t.second % 2 else t.strftime("%H:%M:%S"))
_date_times = st.builds(lambda d, t: f"{d} {t}", st.builds(_fmt_date, _any_date, st.integers(0, 3)), _times)

VALID_STRATEGIES = {
    "thing": st.text(
        st.characters(max_codepoint=0xFFFF, exclude_categories=("Cc", "Cs")), max_size=20
    ).filter(lambda s: s.strip() and not any(ch in s for ch in "\u2028\u2029")),
    "number": st.from_regex(r"\A[0-9]{1,20}(\.[0-9]{1,10})?\Z"),
    "letter": st.from_regex(r"\A[A-Za-z]{1,32}\Z"),
    "character_string": st.from_regex(r"\A[A-Za-z0-9_#/-]{1,32}\Z"),
    "phrase": st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=5),
    "amount": st.from_regex(r"\A[¥￥$]?[0-9]{1,8}(\.[0-9]{2})?元?\Z"),
    "phone_number": st.from_regex(r"\A\+?[0-9]{1,3}-[0-9]{3,4}-[0-9]{4,7}\Z"),
    "car_number": st.from_regex(r"\A[粤京沪]?[A-Z][A-Z0-9]{4,5}[挂学]?\Z"),
    "date": _dates | _date_times | st.builds(lambda a, b: f"{a}~{b}", _dates, _dates),
    "time": _times | _date_times | st.builds(lambda a, b: f"{a}~{b}", _times, _times),
}


@pytest.mark.parametrize("type_name", sorted(VALID_STRATEGIES))
@FAST
@given(data=st.data())
def test_generated_valid_values_pass(type_name: str, data: st.DataObject) -> None:
    value = data.draw(VALID_STRATEGIES[type_name])
    assert validate_value(f"{type_name}1", value) == []
    assert suggest_fix(f"{type_name}1", value) == value
