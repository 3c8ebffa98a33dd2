"""The sandbox's own value rules (docs/wechat-rules.md, "Keyword values"), checked directly: they are the sandbox's judgement."""

from __future__ import annotations

import pytest

from dashboard.sandbox import rules
from dashboard.sandbox.seed import TITLES


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ("thing", "一" * 20),
        ("number", "3.14"),
        ("letter", "Abc"),
        ("symbol", "★%"),
        ("character_string", "A2024-01_x"),
        ("time", "15:01"),
        ("time", "2019年10月1日 15:01"),
        ("time", "09:00~10:30"),
        ("date", "2019年10月1日"),
        ("date", "2018/01/01"),
        ("date", "2018.01.01"),
        ("date", "2018-01"),
        ("date", "01-01"),
        ("date", "10月1日"),
        ("date", "2024-01-01 12:00 ~ 2024-01-02 12:00"),
        ("amount", "¥99.00"),
        ("amount", "99.00元"),
        ("amount", "￥100"),
        ("phone_number", "+86-0766-66888866"),
        ("car_number", "粤A8Z888挂"),
        ("name", "欧阳·娜娜"),
        ("name", "John Smith"),
        ("phrase", "已发货"),
    ],
)
def test_accepts(rule: str, value: str) -> None:
    assert rules.value_ok(rule, value)


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ("thing", "一" * 21),
        ("thing", "第一行\n第二行"),
        ("number", "12a"),
        ("number", "1" * 33),
        ("letter", "ab1"),
        ("symbol", "abc"),
        ("symbol", "!!!!!!"),
        ("character_string", "订单123"),
        ("time", "25:00"),
        ("time", "下午三点"),
        ("date", "2024-13-01"),
        ("date", "2023年2月29日"),
        ("date", "yesterday"),
        ("amount", "¥12345678901"),
        ("amount", "99.999"),
        ("amount", "九十九元"),
        ("phone_number", "1" * 18),
        ("phone_number", "call-me"),
        ("car_number", "粤A8Z888挂X"),
        ("car_number", "粤A中Z888"),
        ("name", "张三3"),
        ("name", "一" * 11),
        ("phrase", "已经发货了吗"),
        ("phrase", "OK"),
    ],
)
def test_refuses(rule: str, value: str) -> None:
    assert not rules.value_ok(rule, value)


def test_enum_values_must_be_listed() -> None:
    assert rules.value_ok("enum_string", "工作", ["工作", "学习"])
    assert not rules.value_ok("enum_string", "娱乐", ["工作", "学习"])


def test_undocumented_types_only_get_the_generic_bound() -> None:
    assert rules.value_ok("short_thing", "短")
    assert not rules.value_ok("short_thing", "x" * 21)


def test_every_seeded_example_passes_the_rules() -> None:
    for title in TITLES:
        for keyword in title.keywords:
            assert rules.value_ok(keyword.rule, keyword.example, keyword.enum_values), (title.title, keyword)
