"""The Official Account's settings (none set = the channel off; sandbox mode links the sandbox's OA),
secrets never shown or logged, and Settings → Channels."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from dashboard import create_app
from dashboard.config import ConfigError, effective_settings, load_settings, oa_configured
from tests.conftest import base_config

OA_ENV = {"WECHAT_OA_APPID": "wxoa0123456789abcd", "WECHAT_OA_SECRET": "oa-secret-value-123"}
REAL_MP = {"WECHAT_APPID": "wx0123456789abcdef", "WECHAT_SECRET": "mp-secret-value"}


def load(tmp_path: Path, **env: str) -> dict:
    return load_settings({"TONGZHI_ENV": "embedded", **env}, tmp_path)


def test_no_oa_setting_means_the_channel_is_off(tmp_path):
    settings = load(tmp_path, **REAL_MP)
    assert settings["WECHAT_OA_APPID"] is None and not oa_configured(settings)
    assert settings["WECHAT_OA_PUSH_TOKEN"] is None and settings["WECHAT_OA_PUSH_AES_KEY"] is None


def test_the_oa_settings_are_read(tmp_path):
    key = "b" * 43
    settings = load(
        tmp_path, **REAL_MP, **OA_ENV, WECHAT_OA_PUSH_TOKEN="oa-token", WECHAT_OA_PUSH_AES_KEY=key
    )
    assert oa_configured(settings)
    assert (settings["WECHAT_OA_APPID"], settings["WECHAT_OA_PUSH_TOKEN"]) == (
        "wxoa0123456789abcd",
        "oa-token",
    )
    assert settings["WECHAT_OA_PUSH_AES_KEY"] == key


def test_sandbox_mode_links_the_sandboxs_official_account(tmp_path):
    settings = load(tmp_path)
    assert settings["SANDBOX_MODE"] and oa_configured(settings)
    assert settings["WECHAT_OA_APPID"] == "wxsandboxoa0000000"
    assert settings["WECHAT_OA_PUSH_TOKEN"] == "sandboxoatoken"
    # The sandbox's defaults are the same made-up credentials.
    from dashboard.sandbox.settings import DEFAULTS

    assert (DEFAULTS["OA_APPID"], DEFAULTS["OA_SECRET"]) == (
        settings["WECHAT_OA_APPID"],
        settings["WECHAT_OA_SECRET"],
    )
    assert DEFAULTS["OA_PUSH_TOKEN"] == settings["WECHAT_OA_PUSH_TOKEN"]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"WECHAT_OA_APPID": "wxoa0123456789abcd"}, "WECHAT_OA_APPID and WECHAT_OA_SECRET"),
        ({"WECHAT_OA_SECRET": "lonely-secret-value"}, "WECHAT_OA_APPID and WECHAT_OA_SECRET"),
        ({**OA_ENV, "WECHAT_OA_PUSH_AES_KEY": "short"}, "WECHAT_OA_PUSH_AES_KEY"),
    ],
)
def test_a_half_or_malformed_oa_configuration_refuses_to_start(tmp_path, env, says):
    with pytest.raises(ConfigError, match=says) as raised:
        load(tmp_path, **REAL_MP, **env)
    assert "lonely-secret-value" not in str(raised.value) and "short" not in str(raised.value)


def test_oa_secrets_are_masked_in_settings_and_logs(tmp_path, caplog):
    config = {
        "WECHAT_OA_SECRET": "oa-secret-value-123",
        "WECHAT_OA_PUSH_TOKEN": "oa-push-token-value",
        "WECHAT_OA_PUSH_AES_KEY": "c" * 43,
    }
    shown = dict(effective_settings({**config, "WECHAT_OA_APPID": "wxoa0123456789abcd"}))
    assert shown["WECHAT_OA_APPID"] == "wxoa0123456789abcd"
    for name in config:
        assert shown[name] == "(set, hidden)"
    app = create_app({**base_config(f"sqlite:///{tmp_path / 'x.db'}", tmp_path), **config})
    with caplog.at_level(logging.INFO):
        logging.getLogger("tongzhi.test").info(
            "leaking %s and %s", "oa-secret-value-123", "oa-push-token-value"
        )
    assert "oa-secret-value-123" not in caplog.text and "oa-push-token-value" not in caplog.text
    del app


@pytest.mark.parametrize("role", ["viewer", "marketer", "admin"])
def test_every_operator_reads_the_channels_page(client, auth, role):
    auth.login(role)
    page = client.get("/settings/channels/").get_data(as_text=True)
    assert "消息渠道" in page
    for words in ("订阅消息（一次性与长期）", "公众号模板消息", "小程序模板消息（formId）", "客服消息"):
        assert words in page
    assert "2020-01-10" in page and "45103" in page and "48 小时" in page and "45015" in page
    assert ("operators" in page) == (role == "admin")  # the settings menu is an admin's


def test_the_channels_page_says_the_state_here(app, client, auth):
    auth.login("viewer")
    page = client.get("/settings/channels/").get_data(as_text=True)
    assert page.count(">沙箱<") == 2  # the mini-program and the Official Account, both the sandbox's
    app.config["SANDBOX_MODE"] = False
    page = client.get("/settings/channels/").get_data(as_text=True)
    assert page.count(">已配置<") == 2 and "0 人关注中" in page
    app.config["WECHAT_OA_APPID"] = app.config["WECHAT_OA_SECRET"] = None
    page = client.get("/settings/channels/").get_data(as_text=True)
    assert page.count(">已配置<") == 1 and "未开启（未配置）" in page and "公众号渠道未开启" in page
    client.post("/language/en", data={"next": "/"})
    page = client.get("/settings/channels/").get_data(as_text=True)
    assert "off (not configured)" in page and "Retired by WeChat on 2020-01-10" in page


def test_the_channels_page_needs_a_login(client):
    response = client.get("/settings/channels/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_viewers_settings_link_leads_to_the_channels(client, auth):
    auth.login("viewer")
    home = client.get("/").get_data(as_text=True)
    assert 'href="/settings/channels/"' in home
