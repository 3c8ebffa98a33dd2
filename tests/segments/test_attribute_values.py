"""An attribute's ``eq`` matches the value's text whatever JSON type it is stored as.

On PostgreSQL the condition is answered by the segment index (``user_attribute_value``, kept by a
trigger with the ``->>`` text of each value); on SQLite by reading the JSON. Either way users whose
attribute is a number, a boolean, a list or an object must not silently drop out of segments.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard.audience.segments import segment_user_ids, validate_filter
from dashboard.extensions import db
from dashboard.models import WechatUser
from tests.segments.conftest import NOW

STORED = {
    "oVal01": {"level": 3},
    "oVal02": {"level": "3"},
    "oVal03": {"level": 3.5},
    "oVal04": {"level": True},
    "oVal05": {"level": [1, 2]},
    "oVal06": {"level": {"a": 1}},
    "oVal07": {"level": None},
    "oVal08": {"other": 3},
    "oVal09": {"level": "0.10"},
    "oVal10": {"level": 0.1},
}


@pytest.fixture
def stored(app):
    with app.app_context():
        for openid, attributes in STORED.items():
            db.session.add(WechatUser(openid=openid, attributes=attributes))
        db.session.commit()


def matched(value: str) -> set[str]:
    doc = validate_filter({"attribute": {"key": "level", "op": "eq", "value": value}})
    ids = segment_user_ids(doc, NOW)
    return set(db.session.scalars(select(WechatUser.openid).where(WechatUser.id.in_(ids))))


@pytest.mark.parametrize(
    ("value", "openids"),
    [
        ("3", {"oVal01", "oVal02"}),
        ("3.5", {"oVal03"}),
        ("0.10", {"oVal09"}),  # the text, not the number: a stored 0.1 reads "0.1"
        ("0.1", {"oVal10"}),
        ("null", set()),  # a JSON null is a missing attribute
        ("NaN", set()),
        ("Infinity", set()),
        ('"3"', set()),
    ],
)
def test_eq_matches_the_text_of_any_json_value(app, stored, value, openids):
    with app.app_context():
        assert matched(value) == openids


def test_eq_on_a_boolean_matches_its_json_text(app, stored, backend):
    if backend != "postgresql":
        pytest.skip("SQLite's JSON functions read a JSON true as the integer 1")
    with app.app_context():
        assert matched("true") == {"oVal04"}


def test_eq_on_lists_and_objects_matches_their_json_text(app, stored, backend):
    with app.app_context():
        # The text of a list or object is the database's own spelling of it: compact on SQLite (JSON
        # kept as written by json.dumps with its default separators), normalised by PostgreSQL's jsonb.
        assert matched("[1, 2]" if backend == "postgresql" else "[1,2]") == {"oVal05"}
        assert matched('{"a": 1}' if backend == "postgresql" else '{"a":1}') == {"oVal06"}
