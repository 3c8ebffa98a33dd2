"""``run_check`` and ``flask wechat-check``: a token through the shared cache, then the template count."""

from __future__ import annotations

import pytest

from dashboard.wechat.check import CheckResult, run_check


def test_the_check_counts_the_templates_and_says_where_the_token_came_from(app, sandbox):
    expected = len(sandbox.templates(2)) + len(sandbox.templates(3))
    with app.app_context():
        first = run_check()
        second = run_check()
    assert first == CheckResult(ok=True, template_count=expected, token_source="wechat")
    assert second.token_source == "memory"
    assert sandbox.stable_calls() == 1


def test_the_command_prints_ok_with_the_count(runner, sandbox):
    result = runner.invoke(args=["wechat-check"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: ")
    assert "template(s)" in result.output


def test_the_command_fails_with_wechats_errcode_and_never_the_secret(app, runner, sandbox):
    app.config["WECHAT_SECRET"] = "a-wrong-secret-value"
    result = runner.invoke(args=["wechat-check"])
    assert result.exit_code == 1
    assert "errcode 40125" in result.output and "invalid appsecret" in result.output
    assert "a-wrong-secret-value" not in result.output
    assert sandbox.secret not in result.output


def test_an_unconfigured_account_is_reported_not_raised(app):
    app.config["WECHAT_APPID"] = None
    with app.app_context():
        result = run_check()
    assert (result.ok, result.category, result.errcode) == (False, "config", None)
    assert "WECHAT_APPID" in result.errmsg


def test_a_missing_token_table_is_reported_without_a_traceback(app, runner, sandbox, backend):
    import sqlalchemy as sa

    if backend != "sqlite":
        pytest.skip("drops a table: only on the per-test SQLite copy, never the shared PostgreSQL schema")

    from dashboard.extensions import db

    with app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE wechat_access_token"))
    result = runner.invoke(args=["wechat-check"])
    assert result.exit_code == 1
    assert "access-token cache is unavailable" in result.output
