"""The segment index on PostgreSQL: ``user_tag`` and ``user_attribute_value`` follow every write.

Segment tag and ``eq`` conditions read these tables instead of the users' JSONB (migration 0019), so a
user written by any path — the ORM, a bulk upsert, plain SQL, an update of other columns — must be found
there exactly as ``wechat_user`` says, or segments silently lose (or keep) people.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from dashboard.audience.segments import count_users, validate_filter
from dashboard.extensions import db
from dashboard.models import UserAttributeValue, UserTag, WechatUser
from tests.segments.conftest import NOW


@pytest.fixture(autouse=True)
def postgresql_only(backend):
    if backend != "postgresql":
        pytest.skip("the segment index is kept by PostgreSQL triggers; SQLite reads the JSON")


def indexed(openid: str) -> tuple[set[str], dict[str, str]]:
    user_id = db.session.scalar(sa.select(WechatUser.id).where(WechatUser.openid == openid))
    tags = set(db.session.scalars(sa.select(UserTag.tag).where(UserTag.user_id == user_id)))
    rows = db.session.execute(
        sa.select(UserAttributeValue.key, UserAttributeValue.value).where(
            UserAttributeValue.user_id == user_id
        )
    )
    return tags, {key: value for key, value in rows}


def count(doc: dict) -> int:
    return count_users(validate_filter(doc), NOW)


def test_an_inserted_user_is_indexed_as_its_json_reads(app):
    with app.app_context():
        db.session.add(
            WechatUser(
                openid="oIdx1",
                tags=["vip", "vip", "北京", 7, "x" * 33],
                attributes={"city": "上海", "level": 3, "paid": True, "gone": None, "long": "y" * 257},
            )
        )
        db.session.commit()
        tags, attributes = indexed("oIdx1")
        # Strings only, once each; nothing longer than a filter can name.
        assert tags == {"vip", "北京"}
        assert attributes == {"city": "上海", "level": "3", "paid": "true"}
        assert (
            count({"all": [{"tag": "vip"}, {"attribute": {"key": "city", "op": "eq", "value": "上海"}}]}) == 1
        )


def test_an_update_of_tags_or_attributes_rewrites_only_that_users_rows(app):
    with app.app_context():
        db.session.add_all(
            [
                WechatUser(openid="oIdx1", tags=["vip"], attributes={"city": "上海"}),
                WechatUser(openid="oIdx2", tags=["vip"], attributes={"city": "上海"}),
            ]
        )
        db.session.commit()
        user = db.session.scalar(sa.select(WechatUser).where(WechatUser.openid == "oIdx1"))
        user.tags = ["new"]
        user.attributes = {"city": "北京", "level": "2"}
        db.session.commit()
        assert indexed("oIdx1") == ({"new"}, {"city": "北京", "level": "2"})
        assert indexed("oIdx2") == ({"vip"}, {"city": "上海"})
        assert count({"tag": "vip"}) == 1
        assert count({"attribute": {"key": "city", "op": "eq", "value": "北京"}}) == 1
        # An update that leaves tags and attributes alone (a login) leaves the index alone.
        db.session.execute(sa.update(WechatUser).values(nickname="n", last_login_at=NOW))
        db.session.commit()
        assert indexed("oIdx1") == ({"new"}, {"city": "北京", "level": "2"})
        # Emptying them, or storing something that is not a list / an object, leaves no rows.
        db.session.execute(sa.update(WechatUser).values(tags=sa.text("'\"vip\"'::jsonb"), attributes={}))
        db.session.commit()
        assert indexed("oIdx1") == (set(), {}) == indexed("oIdx2")
        assert count({"tag": "vip"}) == 0


def test_a_bulk_upsert_and_plain_sql_are_indexed(app):
    with app.app_context():
        db.session.add(WechatUser(openid="oIdx0", tags=["old"], attributes={"city": "广州"}))
        db.session.commit()
        rows = [{"openid": f"oIdx{i}", "tags": ["vip"], "attributes": {"city": "上海"}} for i in range(500)]
        statement = insert(WechatUser).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=[WechatUser.openid],
            set_={"tags": statement.excluded.tags, "attributes": statement.excluded.attributes},
        )
        db.session.execute(statement)
        db.session.execute(
            sa.text(
                "INSERT INTO wechat_user (openid, nickname, tags, attributes, created_at)"
                " VALUES ('oSql', '', '[\"vip\"]', '{\"city\": \"上海\"}', now())"
            )
        )
        db.session.commit()
        assert indexed("oIdx0") == ({"vip"}, {"city": "上海"})  # updated by the upsert, old rows gone
        doc = {"all": [{"tag": "vip"}, {"attribute": {"key": "city", "op": "eq", "value": "上海"}}]}
        assert count(doc) == 501
        assert count({"tag": "old"}) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(UserTag)) == 501


def test_a_deleted_user_leaves_no_rows(app):
    with app.app_context():
        db.session.add(WechatUser(openid="oIdx1", tags=["vip"], attributes={"city": "上海"}))
        db.session.commit()
        db.session.execute(sa.delete(WechatUser))
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(UserTag)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(UserAttributeValue)) == 0


def test_truncating_users_empties_the_index(app):
    with app.app_context():
        db.session.add(WechatUser(openid="oIdx1", tags=["vip"], attributes={"city": "上海"}))
        db.session.commit()
        db.session.execute(sa.text("TRUNCATE wechat_user CASCADE"))
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(UserTag)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(UserAttributeValue)) == 0
