"""The Official Account's value rules: one checker, two tables (docs/wechat-rules.md, "Official Account").

Where the OA differs from the mini-program: ``amount`` takes up to 12 digits (10), ``const`` takes an
approved value or nothing, ``phrase`` is not in the OA's table (passed with a warning), and classic
templates' ``first`` / ``keywordN`` / ``remark`` are free text (``first`` and ``remark`` may be empty).
Everywhere else the two agree.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.oa.templates import parse_keys
from dashboard.wechat import keywords
from dashboard.wechat.keywords import (
    MINIPROGRAM_RULES,
    OFFICIAL_ACCOUNT_RULES,
    has_errors,
    suggest_fix,
    validate_data,
    validate_value,
)


def errors(key, value, rules, enum=None):
    return [v.rule for v in validate_value(key, value, enum, rules=rules) if v.is_error]


def warnings(key, value, rules, enum=None):
    return [v.rule for v in validate_value(key, value, enum, rules=rules) if not v.is_error]


@pytest.mark.parametrize(
    ("key", "value", "mp_ok", "oa_ok"),
    [
        ("amount1", "¥12345678901", False, True),  # 11 digits
        ("amount1", "123456789012元", False, True),  # 12 digits
        ("amount1", "¥1234567890123", False, False),  # 13 digits
        ("amount1", "¥99.00", True, True),
        ("phrase2", "配送中", True, True),
        (
            "phrase2",
            "配送中了没有啊",
            False,
            True,
        ),  # > 5: mini-program error, OA only warns (not in its table)
        ("const3", "", False, True),  # const may be empty in the OA
        ("remark", "", False, True),
        ("first", "", False, True),
        ("keyword1", "", False, False),
        ("keyword1", "A20240101001 云南小粒咖啡豆 500g 很长很长很长很长很长很长很长的文字", True, True),
        ("thing4", "一" * 21, False, False),
        ("thing4", "一" * 20, True, True),
        ("character_string5", "订单123", False, False),
        ("time6", "2024年1月5日 14:00", True, True),
    ],
)
def test_the_two_tables_differ_where_the_facts_say(key, value, mp_ok, oa_ok):
    assert (not errors(key, value, MINIPROGRAM_RULES)) is mp_ok
    assert (not errors(key, value, OFFICIAL_ACCOUNT_RULES)) is oa_ok


def test_const_takes_only_an_approved_value_when_the_list_is_known():
    approved = ["待缴费", "已缴费"]
    assert not errors("const3", "待缴费", OFFICIAL_ACCOUNT_RULES, approved)
    assert errors("const3", "欠费", OFFICIAL_ACCOUNT_RULES, approved) == ["not_in_enum"]
    assert errors("const3", "", OFFICIAL_ACCOUNT_RULES, approved) == []
    # WeChat does not list the approved values: warn, do not guess.
    assert warnings("const3", "欠费", OFFICIAL_ACCOUNT_RULES) == ["const_unknown"]
    assert errors("const3", "一" * 21, OFFICIAL_ACCOUNT_RULES) == ["too_long"]


def test_phrase_is_unknown_to_the_official_account_and_only_warns():
    assert warnings("phrase1", "abc", OFFICIAL_ACCOUNT_RULES) == ["unknown_type"]
    assert errors("phrase1", "abc", MINIPROGRAM_RULES) == ["not_chinese"]


def test_missing_optional_keys_are_fine_in_the_official_account_only():
    keys = ["first", "keyword1", "remark"]
    assert [v.rule for v in validate_data(keys, {"keyword1": "A1"}, rules=OFFICIAL_ACCOUNT_RULES)] == []
    oa = validate_data(keys, {}, rules=OFFICIAL_ACCOUNT_RULES)
    assert [(v.key, v.rule) for v in oa] == [("keyword1", "missing")]


def test_the_default_is_the_mini_program_and_its_settings_still_apply(monkeypatch):
    assert [v.rule for v in validate_value("amount1", "¥12345678901")] == ["too_many_digits"]
    monkeypatch.setattr(keywords, "OA_AMOUNT_MAX_DIGITS", 11)
    assert errors("amount1", "123456789012元", OFFICIAL_ACCOUNT_RULES) == ["too_many_digits"]


def test_an_oa_fix_passes_the_oa_rules():
    fixed = suggest_fix("amount2", "¥ 1,234,567,890,12", rules=OFFICIAL_ACCOUNT_RULES)
    assert fixed == "¥123456789012"
    assert suggest_fix("amount2", "¥ 1,234,567,890,12") is None  # 12 digits: no mini-program fix


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "{{first.DATA}}\n订单号：{{keyword1.DATA}}\n{{remark.DATA}}",
            [("first", "first", ""), ("keyword1", "keyword", "订单号"), ("remark", "remark", "")],
        ),
        (
            "账单名称：{{thing3.DATA}}\n账单金额：{{amount5.DATA}}\n状态：{{const12.DATA}}",
            [
                ("thing3", "thing", "账单名称"),
                ("amount5", "amount", "账单金额"),
                ("const12", "const", "状态"),
            ],
        ),
        ("时间：{{time1.DATA}} ~ {{time1.DATA}}", [("time1", "time", "时间")]),
        ("no placeholders", []),
    ],
)
def test_keys_are_parsed_from_classic_and_typed_contents(content, expected):
    assert [(k["key"], k["type"], k["label"]) for k in parse_keys(content)] == expected


_SHARED_TYPES = sorted(set(MINIPROGRAM_RULES.types) - {"amount", "phrase"})


@settings(max_examples=300, deadline=None)
@given(type_name=st.sampled_from(_SHARED_TYPES), value=st.text(max_size=40))
def test_every_other_type_is_judged_alike(type_name, value):
    key = f"{type_name}1"
    mp = [(v.rule, v.severity) for v in validate_value(key, value, ["a"], rules=MINIPROGRAM_RULES)]
    oa = [(v.rule, v.severity) for v in validate_value(key, value, ["a"], rules=OFFICIAL_ACCOUNT_RULES)]
    assert mp == oa


@settings(max_examples=300, deadline=None)
@given(
    digits=st.integers(min_value=1, max_value=14), symbol=st.sampled_from(["", "¥", "￥"]), yuan=st.booleans()
)
def test_amount_digits_bound(digits, symbol, yuan):
    value = symbol + "9" * digits + ("元" if yuan else "")
    assert (not errors("amount1", value, MINIPROGRAM_RULES)) is (digits <= 10)
    assert (not errors("amount1", value, OFFICIAL_ACCOUNT_RULES)) is (digits <= 12)


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=30))
def test_an_oa_fix_never_has_errors(value):
    for key in ("amount1", "const2", "thing3", "keyword1", "remark"):
        fixed = suggest_fix(key, value, rules=OFFICIAL_ACCOUNT_RULES)
        if fixed is not None:
            assert not has_errors(validate_value(key, fixed, rules=OFFICIAL_ACCOUNT_RULES))
