"""The Official Account's client: the same funnel and shared token service as the mini-program's (keyed
by the OA's AppID), its API calls, and ``flask wechat-check`` / the Settings check covering both accounts.
Real HTTP to the sandbox on loopback, on both databases."""

from __future__ import annotations

import logging
import threading

import pytest
import sqlalchemy as sa

from dashboard import create_app
from dashboard.extensions import db
from dashboard.models import AccessTokenCache
from dashboard.wechat import get_client
from dashboard.wechat.check import run_oa_check
from dashboard.wechat.errors import ErrorCategory, WeChatError
from dashboard.wechat.oa import OfficialAccountClient, get_oa_client, template_keys
from tests.conftest import base_config
from tests.oa.helpers import oa_get, oa_post, sandbox_followers


def test_the_oa_client_goes_through_the_same_funnel_with_its_own_credentials(app, sandbox):
    with app.app_context():
        oa = get_oa_client()
        assert isinstance(oa, OfficialAccountClient) and oa.configured
        assert oa.appid == sandbox.server.state.config["OA_APPID"] != get_client().appid
        assert oa.tokens.store.appid == oa.appid  # the shared service, keyed by the OA's AppID


def test_one_token_call_per_account_for_every_app_and_thread(
    app, sandbox, database_url, tmp_path, config_overrides
):
    other = create_app({**base_config(database_url, tmp_path / "other"), **config_overrides})
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(which) -> None:
        try:
            with which.app_context():
                barrier.wait(5)
                get_oa_client().get_followers()
                get_client().get_templates()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(app if i % 2 else other,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    state = sandbox.state()
    assert state["oa"]["token_calls"]["stable"] == 1
    assert state["token_calls"]["stable"] == 1
    with app.app_context():
        appids = set(db.session.scalars(sa.select(AccessTokenCache.appid)))
    assert appids == {sandbox.appid, state["oa"]["appid"]}
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_rejected_oa_token_is_replaced_once(app, sandbox):
    with app.app_context():
        oa = get_oa_client()
        oa.get_followers()
        oa_post(sandbox, "/tokens/expire")
        assert oa.get_followers().total == 19  # 42001, one refresh, the call again
    assert sandbox.state()["oa"]["token_fetches"]["stable"] == 2


def test_followers_pages_batchget_and_templates(app, sandbox):
    with app.app_context():
        oa = get_oa_client()
        listed, anchor = [], ""
        while True:
            page = oa.get_followers(anchor)
            if not page.openids:
                assert page.next_openid == ""
                break
            listed += page.openids
            anchor = page.next_openid
        assert len(listed) == 19
        infos = oa.get_followers_info(listed[:5])
        assert [i.openid for i in infos] == listed[:5] and all(i.subscribe for i in infos)
        expected = {f["openid"]: f["unionid"] for f in sandbox_followers(sandbox)}
        assert {i.openid: i.unionid for i in infos} == {o: expected[o] for o in listed[:5]}
        with pytest.raises(ValueError):
            oa.get_followers_info(listed * 6)
        templates = {t.title: t for t in oa.get_oa_templates()}
        assert templates["订单发货通知"].keys == ["first", "keyword1", "keyword2", "keyword3", "remark"]
        assert templates["账单状态提醒"].keys == ["thing1", "amount2", "const3"]
    assert template_keys("{{ first.DATA }}\n{{keyword1.DATA}}{{keyword1.DATA}}") == ["first", "keyword1"]


def test_send_template_message_and_its_errors(app, sandbox):
    following = sandbox_followers(sandbox, subscribed=True)[0]
    not_following = sandbox_followers(sandbox, subscribed=False)[0]
    with app.app_context():
        oa = get_oa_client()
        order = next(t for t in oa.get_oa_templates() if t.title == "订单发货通知")
        data = {"first": "已发货", "keyword1": "A1", "keyword2": "咖啡豆", "keyword3": "2024年1月1日"}
        msgid = oa.send_template_message(
            following["openid"],
            order.template_id,
            data,
            miniprogram_appid=sandbox.appid,
            pagepath="pages/order/detail?id=1",
            client_msg_id="d-1-1",
        )
        again = oa.send_template_message(following["openid"], order.template_id, data, client_msg_id="d-1-1")
        assert msgid and again == msgid
        with pytest.raises(WeChatError) as raised:
            oa.send_template_message(not_following["openid"], order.template_id, data)
        assert raised.value.errcode == 43004
        with pytest.raises(WeChatError) as raised:
            oa.send_template_message(following["openid"], "no-such-template", data)
        assert (raised.value.errcode, raised.value.category) == (40037, ErrorCategory.TEMPLATE)
    [message] = [m for m in oa_get(sandbox, "/messages")["messages"] if m["errcode"] == 0 and not m["repeat"]]
    assert message["miniprogram"] == {"appid": sandbox.appid, "pagepath": "pages/order/detail?id=1"}
    assert message["client_msg_id"] == "d-1-1"


def test_the_check_covers_the_official_account(app, sandbox):
    with app.app_context():
        result = run_oa_check()
    assert (result.configured, result.ok, result.template_count, result.follower_count) == (True, True, 3, 19)
    assert result.token_source == "wechat"


def test_the_command_checks_both_accounts(runner):
    result = runner.invoke(args=["wechat-check"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("OK: ")
    assert lines[1].startswith("Official Account OK: 3 template(s), 19 follower(s)")


def test_a_wrong_oa_secret_fails_the_command_and_is_never_shown(app, runner, caplog):
    app.config["WECHAT_OA_SECRET"] = "a-wrong-oa-secret-value"
    with caplog.at_level(logging.DEBUG):
        result = runner.invoke(args=["wechat-check"])
    assert result.exit_code == 1
    assert "Official Account check failed" in result.output and "errcode 40125" in result.output
    assert "a-wrong-oa-secret-value" not in result.output
    assert "a-wrong-oa-secret-value" not in caplog.text


def test_with_the_channel_off_the_check_says_so_and_asks_nothing(app, runner, sandbox):
    app.config["WECHAT_OA_APPID"] = app.config["WECHAT_OA_SECRET"] = None
    result = runner.invoke(args=["wechat-check"])
    assert result.exit_code == 0, result.output
    assert "Official Account: off" in result.output
    with app.app_context():
        assert run_oa_check().configured is False
        with pytest.raises(WeChatError) as raised:
            get_oa_client().get_followers()
    assert raised.value.category is ErrorCategory.CONFIG and "WECHAT_OA_APPID" in raised.value.errmsg
    assert sandbox.state()["oa"]["token_calls"]["stable"] == 0


def test_the_settings_check_shows_both_accounts(client, auth):
    auth.login("admin")
    answer = client.post("/settings/wechat-check", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "公众号已应答：3 个模板消息，19 个粉丝" in answer
