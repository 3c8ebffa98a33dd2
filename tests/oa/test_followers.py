"""The follower sync (user/get paging, batchget 100 at a time), the OA's push endpoint keeping followers
current, an unfollow arriving during a sync, and the unionid join in both orders. Both databases; real
HTTP to the sandbox, and the sandbox's own pushes to the app on a loopback server."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import WechatUser
from dashboard.models.oa import OaEvent, OaFollower
from dashboard.oa.followers import follower_for_user, sync_followers, user_for_follower
from dashboard.wechat.oa import get_oa_client
from tests.api.live import MiniProgram
from tests.oa.helpers import OA_PUSH_TOKEN, followers_in_db, oa_get, oa_post, sandbox_followers


def sandbox_calls(sandbox, path: str) -> int:
    return oa_get(sandbox, "/state")["api_calls"].get(path, 0)


def push_to(sandbox, live_server) -> None:
    oa_post(
        sandbox,
        "/push-config",
        {"OA_PUSH_URL": f"{live_server}/wechat/oa-push", "OA_PUSH_TOKEN": OA_PUSH_TOKEN},
    )


def wait_pushed(sandbox) -> None:
    assert sandbox.server.sandbox.oa_pusher.wait_idle(10)
    assert all(p["ok"] for p in oa_get(sandbox, "/pushes")["pushes"]), oa_get(sandbox, "/pushes")


def test_sync_followers_pages_and_reads_unionids(app, runner, sandbox):
    result = runner.invoke(args=["sync-followers"])
    assert result.exit_code == 0, result.output
    assert "19 follower(s) at WeChat: 19 listed in 4 page(s), 19 new" in result.output
    rows = followers_in_db(app)
    expected = {f["openid"]: f for f in sandbox_followers(sandbox, subscribed=True)}
    assert set(rows) == set(expected)
    for openid, row in rows.items():
        assert row.following and row.unionid == expected[openid]["unionid"]
        assert row.followed_at == datetime.fromtimestamp(expected[openid]["subscribe_time"], UTC)
    assert sandbox_calls(sandbox, "/cgi-bin/user/get") == 5  # four pages, then the empty answer
    assert sandbox_calls(sandbox, "/cgi-bin/user/info/batchget") == 4
    again = runner.invoke(args=["sync-followers"])
    assert "0 new, 0 changed, 0 no longer following" in again.output


@pytest.mark.parametrize("sandbox_config", [{"OA_PAGE_SIZE": 250, "USERS": 300}], indirect=True)
def test_batchget_asks_for_100_openids_at_a_time(app, sandbox):
    with app.app_context():
        result = sync_followers(get_oa_client())
    assert (result.total, result.pages, result.added) == (243, 1, 243)
    assert sandbox_calls(sandbox, "/cgi-bin/user/info/batchget") == 3  # 100, 100, 43


def test_a_follower_gone_from_the_list_without_an_event_is_marked_unfollowed(app, sandbox):
    with app.app_context():
        sync_followers(get_oa_client())
    gone = sandbox_followers(sandbox, subscribed=True)[3]
    oa_post(sandbox, f"/users/{gone['openid']}/unfollow")  # no push URL: the event is lost
    with app.app_context():
        result = sync_followers(get_oa_client())
    assert result.unfollowed == 1
    row = followers_in_db(app)[gone["openid"]]
    assert not row.following and row.unfollowed_at is not None


def test_an_unfollow_arriving_during_a_sync_is_not_undone_by_it(app, sandbox, live_server):
    push_to(sandbox, live_server)
    late, early = (
        sandbox_followers(sandbox, subscribed=True)[7],
        sandbox_followers(sandbox, subscribed=True)[12],
    )
    with app.app_context():
        oa = get_oa_client()
        asked = oa.get_followers_info

        def get_followers_info(openids, lang="zh_CN"):
            if early["openid"] in openids:
                # Unfollows after user/get listed them and before batchget: batchget says so.
                oa_post(sandbox, f"/users/{early['openid']}/unfollow")
                wait_pushed(sandbox)
            answer = asked(openids, lang)
            if late["openid"] in openids:
                # Unfollows after batchget answered "following": the event lands before the sync writes.
                oa_post(sandbox, f"/users/{late['openid']}/unfollow")
                wait_pushed(sandbox)
            return answer

        oa.get_followers_info = get_followers_info
        try:
            result = sync_followers(oa)
        finally:
            del oa.get_followers_info
    rows = followers_in_db(app)
    assert not rows[late["openid"]].following and not rows[early["openid"]].following
    assert result.kept >= 1
    assert sum(1 for r in rows.values() if r.following) == 17
    # The next sync agrees.
    with app.app_context():
        sync_followers(get_oa_client())
    rows = followers_in_db(app)
    assert sum(1 for r in rows.values() if r.following) == 17


def test_follow_events_keep_followers_current(app, sandbox, live_server):
    push_to(sandbox, live_server)
    newcomer = sandbox_followers(sandbox, subscribed=False)[0]
    oa_post(sandbox, f"/users/{newcomer['mp_openid']}/follow")
    wait_pushed(sandbox)
    row = followers_in_db(app)[newcomer["openid"]]
    assert row.following and row.followed_at is not None and row.unionid is None  # the event has no unionid
    oa_post(sandbox, f"/users/{newcomer['openid']}/unfollow")
    wait_pushed(sandbox)
    row = followers_in_db(app)[newcomer["openid"]]
    assert not row.following and row.unfollowed_at >= row.followed_at
    # WeChat's de-dup key is FromUserName + CreateTime + Event: a second follow in the same second as
    # the first would be taken for its retry.
    time.sleep(1.02 - time.time() % 1)
    oa_post(sandbox, f"/users/{newcomer['openid']}/follow")
    wait_pushed(sandbox)
    with app.app_context():
        sync_followers(get_oa_client())  # the sync adds the unionid
        assert db.session.scalar(select(func.count()).select_from(OaEvent)) == 3
    row = followers_in_db(app)[newcomer["openid"]]
    assert row.following and row.unionid == newcomer["unionid"]


def test_templatesendjobfinish_is_kept_with_its_msgid(app, sandbox, live_server):
    push_to(sandbox, live_server)
    follower = sandbox_followers(sandbox, subscribed=True)[0]
    with app.app_context():
        oa = get_oa_client()
        order = next(t for t in oa.get_oa_templates() if t.title == "订单发货通知")
        msgid = oa.send_template_message(follower["openid"], order.template_id, {"keyword1": "A1"})
    wait_pushed(sandbox)
    with app.app_context():
        event = db.session.scalar(select(OaEvent).where(OaEvent.msgid == msgid))
        assert (event.event, event.status, event.openid) == (
            "TEMPLATESENDJOBFINISH",
            "success",
            follower["openid"],
        )
        assert event.body_format == "xml" and not event.encrypted


def _unionid_user(app, openid: str, unionid: str) -> int:
    with app.app_context():
        user = WechatUser(openid=openid, unionid=unionid, nickname="张三")
        db.session.add(user)
        db.session.commit()
        return user.id


def test_join_mini_program_user_first(app, client, auth, sandbox):
    follower = next(f for f in sandbox_followers(sandbox, subscribed=True) if f["unionid"])
    user_id = _unionid_user(app, follower["mp_openid"], follower["unionid"])
    auth.login("viewer")
    page = client.get(f"/users/{user_id}").get_data(as_text=True)
    assert "没有公众号粉丝的 unionid 与此用户相同" in page
    with app.app_context():
        sync_followers(get_oa_client())
        user = db.session.get(WechatUser, user_id)
        joined = follower_for_user(user)
        assert joined.openid == follower["openid"] and user_for_follower(joined).id == user_id
    page = client.get(f"/users/{user_id}").get_data(as_text=True)
    assert follower["mp_openid"] in page and follower["openid"] in page
    assert "已关注公众号" in page and "自 " in page


def test_join_follower_first_then_the_user_logs_in(app, client, auth, sandbox, live_server):
    follower = next(f for f in sandbox_followers(sandbox, subscribed=True) if f["unionid"] and f["mp_openid"])
    only = next(f for f in sandbox_followers(sandbox) if not f["mp_openid"])
    with app.app_context():
        sync_followers(get_oa_client())
        lone = db.session.scalar(select(OaFollower).where(OaFollower.openid == only["openid"]))
        assert lone.following and lone.unionid and user_for_follower(lone) is None  # a person all the same
    MiniProgram(live_server, sandbox, follower["mp_openid"]).login()  # code2Session gives the unionid
    with app.app_context():
        user = db.session.scalar(select(WechatUser).where(WechatUser.openid == follower["mp_openid"]))
        assert user.unionid == follower["unionid"]
        assert follower_for_user(user).openid == follower["openid"]
        user_id = user.id
    auth.login("viewer")
    page = client.get(f"/users/{user_id}").get_data(as_text=True)
    assert follower["openid"] in page and "已关注公众号" in page


def test_a_user_who_unfollowed_shows_since_when(app, client, auth, sandbox, live_server):
    push_to(sandbox, live_server)
    follower = next(f for f in sandbox_followers(sandbox, subscribed=True) if f["unionid"])
    user_id = _unionid_user(app, follower["mp_openid"], follower["unionid"])
    with app.app_context():
        sync_followers(get_oa_client())
    oa_post(sandbox, f"/users/{follower['openid']}/unfollow")
    wait_pushed(sandbox)
    auth.login("viewer")
    page = client.get(f"/users/{user_id}").get_data(as_text=True)
    assert "未关注公众号" in page and "取消关注" in page


def test_with_the_channel_off_there_is_nothing_to_sync(app, runner, client, auth, sandbox):
    app.config["WECHAT_OA_APPID"] = app.config["WECHAT_OA_SECRET"] = None
    result = runner.invoke(args=["sync-followers"])
    assert result.exit_code == 0 and "channel is off" in result.output
    assert oa_get(sandbox, "/state")["token_calls"]["stable"] == 0
    user_id = _unionid_user(app, "oSomeMiniProgramUser000000000", "oUSomeUnion0000000000000000")
    auth.login("viewer")
    assert "公众号渠道未开启" in client.get(f"/users/{user_id}").get_data(as_text=True)


def test_a_failed_sync_reports_wechats_answer(app, runner, sandbox):
    app.config["WECHAT_OA_SECRET"] = "wrong-oa-secret-value"
    result = runner.invoke(args=["sync-followers"])
    assert result.exit_code == 1
    assert "errcode 40125" in result.output and "wrong-oa-secret-value" not in result.output
    assert requests.get(f"{sandbox.url}/sandbox/api/oa/state", timeout=10).json()["followers"] == 19


def test_the_oa_consoles_url_check_passes_against_the_app(sandbox, live_server):
    push_to(sandbox, live_server)
    answer = oa_post(sandbox, "/push/verify")
    assert answer["ok"] is True, answer
    oa_post(sandbox, "/push-config", {"OA_PUSH_TOKEN": "not-the-apps-token"})
    assert oa_post(sandbox, "/push/verify")["status"] == 403
