"""Each leaf and combinator of the filter JSON, counted in SQL, agrees with a Python oracle on hand-made users."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard.audience.segments import (
    FilterError,
    count_users,
    filter_clause,
    segment_user_ids,
    validate_filter,
)
from dashboard.extensions import db
from dashboard.models import WechatUser
from tests.segments.conftest import NOW, T_LONG, T_ONE, _day, oracle

LEAVES = [
    {"grant": {"template_id": T_ONE}},
    {"grant": {"template_id": T_ONE, "min_credits": 2}},
    {"grant": {"template_id": T_ONE, "min_credits": 3}},
    {"grant": {"template_id": T_LONG}},
    {"grant": {"template_id": "TMPL_nobody"}},
    {"tag": "vip"},
    {"tag": "北京"},
    {"tags": {"any": ["new", "old"]}},
    {"tags": {"all": ["vip", "new"]}},
    {"tags": {"none": ["vip", "old"]}},
    {"attribute": {"key": "city", "op": "eq", "value": "上海"}},
    {"attribute": {"key": "city", "op": "eq", "value": ""}},
    {"attribute": {"key": "city", "op": "contains", "value": "SHANG"}},
    {"attribute": {"key": "city", "op": "contains", "value": "%"}},
    {"attribute": {"key": "city", "op": "set"}},
    {"attribute": {"key": "city", "op": "unset"}},
    {"attribute": {"key": "birthday", "op": "before", "value": _day(0)}},
    {"attribute": {"key": "birthday", "op": "after", "value": _day(-50)}},
    {"attribute": {"key": "birthday", "op": "within_next_days", "value": 3}},
    {"attribute": {"key": "birthday", "op": "within_last_days", "value": 2}},
    {"attribute": {"key": "birthday", "op": "within_last_days", "value": 0}},
    {"seen_within_days": 30},
    {"seen_within_days": 0},
    {"has_unionid": True},
    {"has_unionid": False},
    {"granted_in_scene": "1001"},
    {"main_switch": True},
    {"main_switch": False},
    {"openids": ["oSeg0003aaaaaaaaaaaaaaaaaa", "oSeg0010aaaaaaaaaaaaaaaaaa", "oNobody"]},
    {"openids": []},
]

COMBINED = [
    {"all": []},
    {"any": []},
    {"all": [{"grant": {"template_id": T_ONE}}, {"tag": "vip"}]},
    {"any": [{"tag": "old"}, {"attribute": {"key": "city", "op": "eq", "value": "Beijing"}}]},
    {"not": {"attribute": {"key": "city", "op": "eq", "value": "上海"}}},  # NULLs must not leak
    {"not": {"seen_within_days": 30}},
    {"not": {"attribute": {"key": "birthday", "op": "before", "value": _day(0)}}},
    {
        "all": [
            {"grant": {"template_id": T_ONE}},
            {"not": {"any": [{"main_switch": False}, {"tags": {"all": ["vip", "new"]}}]}},
            {"any": [{"has_unionid": True}, {"granted_in_scene": "1047"}]},
        ]
    },
]


def selected(doc):
    ids = db.session.scalars(segment_user_ids(validate_filter(doc), NOW)).all()
    return set(ids)


@pytest.mark.parametrize("doc", LEAVES + COMBINED, ids=lambda d: str(d)[:60])
def test_sql_agrees_with_the_oracle(app, people, doc):
    with app.app_context():
        expected = {p.id for p in people if oracle(doc, p)}
        assert selected(doc) == expected
        assert count_users(validate_filter(doc), NOW) == len(expected)
        # the complement is exact: every user is in the filter or in its "not"
        negated = selected({"not": doc})
        assert negated == {p.id for p in people} - expected


def test_the_test_data_exercises_every_leaf(app, people):
    """Each leaf selects some users and leaves out others, so a wrong compilation cannot pass by luck."""
    for doc in LEAVES:
        if doc in (
            {"openids": []},
            {"grant": {"template_id": "TMPL_nobody"}},
            {"attribute": {"key": "city", "op": "contains", "value": "%"}},  # a LIKE wildcard matches nobody
        ):
            continue
        hits = sum(oracle(doc, p) for p in people)
        assert 0 < hits < len(people), doc


def test_a_huge_openid_list_is_one_parameter(app, people):
    """SQLite refuses more than 32,766 parameters: a 60,000-openid leaf must still work."""
    wanted = [f"oFake{i:06d}" for i in range(60_000)] + [people[5].openid]
    with app.app_context():
        assert selected({"openids": wanted}) == {people[5].id}


def test_filter_clause_is_a_where_over_users(app, people):
    with app.app_context():
        clause = filter_clause(validate_filter({"tag": "vip"}), NOW)
        names = db.session.scalars(select(WechatUser.openid).where(clause)).all()
        assert names and all(n in {p.openid for p in people if "vip" in p.tags} for n in names)


@pytest.mark.parametrize(
    "doc,path,words",
    [
        ({"color": "red"}, "", "color"),
        ({"all": [{"tag": "a"}, {"tag": "b"}, {"sparkle": 1}]}, "all[2]", "sparkle"),
        (
            {"all": [{"tag": "a"}, {"tag": "b"}, {"attribute": {"key": "city", "op": "like", "value": "x"}}]},
            "all[2].attribute.op",
            "like",
        ),
        ({"tags": {"some": ["a"]}}, "tags.some", "some"),
        ({"grant": {"template_id": "T", "min_credits": 0}}, "grant.min_credits", "between"),
        ({"grant": {"template": "T"}}, "grant.template", "template"),
        ({"attribute": {"key": "birthday", "op": "before", "value": "soon"}}, "attribute.value", "date"),
        ({"attribute": {"key": "city", "op": "eq"}}, "attribute.value", "required"),
        ({"attribute": {"key": "bad key!", "op": "set"}}, "attribute.key", "attribute name"),
        ({"seen_within_days": "30"}, "seen_within_days", "whole number"),
        ({"seen_within_days": True}, "seen_within_days", "whole number"),
        ({"has_unionid": "yes"}, "has_unionid", "true or false"),
        ({"openids": ["ok_1", "bad openid"]}, "openids[1]", "openid"),
        ({"not": [{"tag": "a"}]}, "not", "object"),
        ({"all": {"tag": "a"}}, "all", "list"),
        ({"tag": "a", "main_switch": True}, "", "exactly one"),
        ([], "", "object"),
        ("{not json", "", "JSON"),
    ],
)
def test_bad_documents_say_where_and_what(doc, path, words):
    with pytest.raises(FilterError) as caught:
        validate_filter(doc)
    assert caught.value.path == path
    assert words in str(caught.value)


def test_validation_normalises(app):
    assert validate_filter({"grant": {"template_id": " T1 "}}) == {
        "grant": {"template_id": "T1", "min_credits": 1}
    }
    assert validate_filter({"openids": ["a", "b", "a"]}) == {"openids": ["a", "b"]}
    assert validate_filter('{"tags": {"any": ["x", "x"]}}') == {"tags": {"any": ["x"]}}
    with pytest.raises(FilterError, match="at most 8 deep"):
        doc: dict = {"tag": "x"}
        for _ in range(10):
            doc = {"not": doc}
        validate_filter(doc)
