"""Reach per channel: the segment's users each channel could message now, counted by the same rule the
claim applies to each row (``dispatch.channels.choose`` over the ledger's credit and the unionid follow)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard.audience.reach import reach_by_channel
from dashboard.audience.segments import validate_filter
from dashboard.dispatch.channels import choose
from dashboard.extensions import db
from dashboard.grants.services import has_live_grant
from dashboard.models import Channel, Operator, Segment, WechatUser
from dashboard.models.catalog import TemplateKind
from dashboard.models.oa import OaFollower
from tests.segments.conftest import NOW, T_LONG, T_ONE, oracle
from tests.segments.test_api import key_for
from tests.segments.test_reach import add_template


def add_followers(people) -> set[str]:
    """Followers joined to some users by unionid: some follow, some stopped, one unionid has two rows
    (an old unfollowed openid and a new following one), and a follower no user matches. Some users who
    hold credits get a unionid first, so that some both hold a credit and follow. Returns the unionids
    that follow now."""
    # Odd ones hold credits (three for people[3::8]) and most an active long-term grant (make_people).
    for person in people[1::8] + people[3::8]:
        person.unionid = f"uBoth{person.id}"
        db.session.get(WechatUser, person.id).unionid = person.unionid
    following: set[str] = set()
    with_unionid = [p for p in people if p.unionid]
    for n, person in enumerate(with_unionid):
        follows = n % 3 != 2
        db.session.add(OaFollower(openid=f"oOa{n:04d}", unionid=person.unionid, following=follows))
        if follows:
            following.add(person.unionid)
    twice = with_unionid[2].unionid  # unfollowed above: follows again from a second openid
    db.session.add(OaFollower(openid="oOaSecond", unionid=twice, following=True))
    following.add(twice)
    db.session.add(OaFollower(openid="oOaNoUser", unionid="uNobodyHere", following=True))
    db.session.add(OaFollower(openid="oOaNoUnionid", unionid=None, following=True))
    db.session.commit()
    return following


def expected(members, template_id: str, budget: int, following: set[str]) -> dict[str, int]:
    """Each member asked ``choose()`` for each channel: a channel reaches the users it would send to."""
    counts = dict.fromkeys(("mp_subscribe", "oa_template", "mp_subscribe_or_oa"), 0)
    for person in members:
        facts = {
            "holds_credit": has_live_grant(person.id, template_id, keep=budget),
            "follows": bool(person.unionid) and person.unionid in following,
        }
        for channel in counts:
            counts[channel] += choose(Channel(channel), **facts).sends
    return {**counts, "segment": len(members)}


@pytest.mark.parametrize(
    "template_id,kind,budget",
    [
        (T_ONE, TemplateKind.one_time, 0),
        (T_ONE, TemplateKind.one_time, 2),
        (T_LONG, TemplateKind.long_term, 0),
    ],
)
@pytest.mark.parametrize(
    "doc", [{"all": []}, {"tag": "vip"}, {"has_unionid": True}, {"not": {"tag": "vip"}}], ids=str
)
def test_each_channel_counts_what_choose_would_send(app, people, template_id, kind, budget, doc):
    with app.app_context():
        add_template(template_id, kind, budget)
        following = add_followers(people)
        members = [p for p in people if oracle(doc, p)]
        want = expected(members, template_id, budget, following)
        assert reach_by_channel(validate_filter(doc), template_id, NOW) == want
        # The data set exercises every row of the table: credit only, follow only, both, neither.
        if doc == {"all": []}:
            assert 0 < want["mp_subscribe"] < want["mp_subscribe_or_oa"] < want["segment"]
            assert 0 < want["oa_template"] < want["mp_subscribe_or_oa"]
            assert want["mp_subscribe"] + want["oa_template"] > want["mp_subscribe_or_oa"]  # some hold both


def test_a_follower_with_two_openids_is_one_user(app, people):
    with app.app_context():
        add_template(T_ONE, TemplateKind.one_time, 0)
        person = next(p for p in people if p.unionid)
        for openid in ("oOaTwinA", "oOaTwinB"):
            db.session.add(OaFollower(openid=openid, unionid=person.unionid, following=True))
        db.session.commit()
        counts = reach_by_channel(validate_filter({"openids": [person.openid]}), T_ONE, NOW)
        assert counts["oa_template"] == 1 and counts["segment"] == 1


def test_without_followers_only_credits_reach(app, people):
    with app.app_context():
        add_template(T_ONE, TemplateKind.one_time, 0)
        counts = reach_by_channel(validate_filter({"all": []}), T_ONE, NOW)
        assert counts["oa_template"] == 0
        assert counts["mp_subscribe_or_oa"] == counts["mp_subscribe"] > 0
        assert counts["segment"] == len(people)


def test_an_unknown_template_reaches_only_followers(app, people):
    with app.app_context():
        following = add_followers(people)
        counts = reach_by_channel(validate_filter({"all": []}), "TMPL_unknown", NOW)
        assert counts["mp_subscribe"] == 0
        assert (
            counts["oa_template"]
            == counts["mp_subscribe_or_oa"]
            == len([p for p in people if p.unionid in following])
        )


# -- the segment page and the API ------------------------------------------------------------------------

OA_ON = {"WECHAT_OA_APPID": "wxoreachtest0000001", "WECHAT_OA_SECRET": "reach-test-oa-secret"}
OA_OFF = {"WECHAT_OA_APPID": None, "WECHAT_OA_SECRET": None}


def figure(body: str, channel: str) -> int:
    start = body.index(f'data-channel="{channel}"><strong>') + len(f'data-channel="{channel}"><strong>')
    return int(body[start : body.index("<", start)])


def saved_segment(app, doc: dict) -> int:
    with app.app_context():
        add_template(T_ONE, TemplateKind.one_time, 0)
        segment = Segment(name="Reach", filter=validate_filter(doc))
        db.session.add(segment)
        db.session.commit()
        return segment.id


@pytest.mark.parametrize("config_overrides", [OA_ON], indirect=True)
def test_the_segment_page_shows_reach_per_channel_in_both_languages(app, client, auth, people):
    segment_id = saved_segment(app, {"all": []})
    with app.app_context():
        want = expected(people, T_ONE, 0, add_followers(people))
    auth.login("viewer")
    with client.session_transaction() as session:
        session["locale"] = "en"
    page = client.get(f"/segments/{segment_id}", query_string={"template_id": T_ONE})
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="segment-channel-reach"' in body
    for channel in ("mp_subscribe", "oa_template", "mp_subscribe_or_oa"):
        assert figure(body, channel) == want[channel]
    assert "they follow the Official Account" in body and "The Official Account channel is off" not in body
    with client.session_transaction() as session:
        session["locale"] = "zh"
    with app.app_context():
        db.session.execute(sa.update(Operator).values(locale="zh"))
        db.session.commit()
    fragment = client.get(
        f"/segments/{segment_id}", query_string={"template_id": T_ONE}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "<html" not in fragment and "各渠道可触达" in fragment and "关注了公众号" in fragment
    assert figure(fragment, "mp_subscribe_or_oa") == want["mp_subscribe_or_oa"]
    # no template chosen: no reach per channel
    assert 'id="segment-channel-reach"' not in client.get(f"/segments/{segment_id}").get_data(as_text=True)


@pytest.mark.parametrize("config_overrides", [OA_OFF], indirect=True)
def test_with_the_official_account_off_only_the_subscribe_figure_shows(app, client, auth, people):
    segment_id = saved_segment(app, {"all": []})
    with app.app_context():
        want = expected(people, T_ONE, 0, add_followers(people))
    auth.login("marketer")
    with client.session_transaction() as session:
        session["locale"] = "en"
    body = client.post(
        "/segments/preview",
        data={"filter": '{"all": []}', "template_id": T_ONE},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert figure(body, "mp_subscribe") == want["mp_subscribe"]
    assert 'data-channel="oa_template"' not in body and 'data-channel="mp_subscribe_or_oa"' not in body
    assert "The Official Account channel is off." in body
    answer = client.get(f"/segments/{segment_id}", query_string={"template_id": T_ONE})
    assert 'data-channel="oa_template"' not in answer.get_data(as_text=True)


@pytest.mark.parametrize("oa_on", [True, False], ids=["oa_on", "oa_off"])
def test_the_api_count_gains_reach_per_channel(app, client, runner, people, oa_on):
    app.config.update(OA_ON if oa_on else OA_OFF)
    segment_id = saved_segment(app, {"tag": "vip"})
    with app.app_context():
        members = [p for p in people if oracle({"tag": "vip"}, p)]
        want = expected(members, T_ONE, 0, add_followers(people))
    headers = key_for(runner, "campaigns")
    body = client.get(f"/api/v1/segments/{segment_id}", query_string={"template_id": T_ONE}, headers=headers)
    assert body.status_code == 200
    reach = body.get_json()["reach"]
    if oa_on:
        assert reach == want
    else:
        assert reach == {**want, "oa_template": None, "mp_subscribe_or_oa": None}
    assert reach["segment"] == body.get_json()["count"]
    plain = client.get(f"/api/v1/segments/{segment_id}", headers=headers).get_json()
    assert "reach" not in plain
