"""The admin settings page: configuration with secrets masked, and the WeChat connection check."""

import pytest

from tests.api.live import mp_overrides


@pytest.fixture
def config_overrides(sandbox):
    return mp_overrides(sandbox)


def test_the_check_reports_the_template_count_from_the_sandbox(client, auth, sandbox):
    auth.login("admin")
    page = client.get("/settings/").get_data(as_text=True)
    assert 'id="wechat-check"' in page and "检查连接" in page
    answer = client.post("/settings/wechat-check", headers={"HX-Request": "true"}).get_data(as_text=True)
    count = len(sandbox.get("/templates")["templates"])
    assert f"此账号有 {count} 个模板" in answer
    assert "<html" not in answer  # a fragment, swapped into the page by htmx
    assert sandbox.stable_fetches() == 1


def test_the_check_shows_wechats_errcode_when_the_secret_is_wrong(app, client, auth, sandbox):
    app.config["WECHAT_SECRET"] = "not-the-secret"
    auth.login("admin")
    answer = client.post("/settings/wechat-check").get_data(as_text=True)
    assert "检查失败" in answer and "40125" in answer
    assert "not-the-secret" not in answer


def test_only_admins_run_the_check(client, auth):
    auth.login("marketer")
    assert client.post("/settings/wechat-check").status_code == 403
