"""Configuration is read once from the environment and fails loudly on junk."""

from pathlib import Path

import pytest

from dashboard import create_app
from dashboard.config import ConfigError, effective_settings, load_settings, mask_url


def load(tmp_path: Path, **env: str) -> dict:
    return load_settings({"TONGZHI_ENV": "embedded", **env}, tmp_path)


def test_embedded_defaults_use_the_sandbox(tmp_path):
    settings = load(tmp_path)
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'tongzhi.db'}"
    assert settings["TIMEZONE"] == "Asia/Shanghai"
    assert settings["REDIS_URL"] is None
    assert settings["AUTO_MIGRATE"] is True
    assert settings["SANDBOX_MODE"] is True
    assert settings["WECHAT_API_BASE"] == "http://127.0.0.1:5010"
    assert settings["WECHAT_APPID"] == "wxsandbox000000000"


def test_real_credentials_mean_no_sandbox(tmp_path):
    settings = load(tmp_path, WECHAT_APPID="wx0123456789abcdef", WECHAT_SECRET="s3cr3t-value")
    assert settings["SANDBOX_MODE"] is False
    assert settings["WECHAT_API_BASE"] == "https://api.weixin.qq.com"
    production = load_settings({"SECRET_KEY": "k" * 32}, tmp_path)
    assert production["SANDBOX_MODE"] is False and production["WECHAT_APPID"] is None


def test_embedded_generates_a_secret_key_once_and_keeps_it(tmp_path):
    first = load(tmp_path)["SECRET_KEY"]
    assert len(first) >= 32
    assert (tmp_path / "secret_key").read_text().strip() == first
    assert load(tmp_path)["SECRET_KEY"] == first


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        load_settings({}, tmp_path)
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("TONGZHI_ENV", "staging", "TONGZHI_ENV"),
        ("TIMEZONE", "Mars/Olympus", "TIMEZONE"),
        ("DATABASE_URL", "not a url", "DATABASE_URL"),
        ("DATABASE_URL", "mysql://u@h/db", "DATABASE_URL"),
        ("REDIS_URL", "http://127.0.0.1:6379", "REDIS_URL"),
        ("WECHAT_API_BASE", "ftp://example.com", "WECHAT_API_BASE"),
        ("SESSION_COOKIE_SECURE", "maybe", "SESSION_COOKIE_SECURE"),
        ("LOGIN_MAX_FAILURES", "five", "LOGIN_MAX_FAILURES"),
        ("LOGIN_MAX_FAILURES", "0", "LOGIN_MAX_FAILURES"),
        ("WECHAT_PUSH_AES_KEY", "short", "WECHAT_PUSH_AES_KEY"),
        ("SECRET_KEY", "tiny", "SECRET_KEY"),
        ("WECHAT_READ_TIMEOUT", "soon", "WECHAT_READ_TIMEOUT"),
        ("WECHAT_TOKEN_FORCE_REFRESH_MINUTES", "5", "WECHAT_TOKEN_FORCE_REFRESH_MINUTES"),
    ],
)
def test_junk_values_are_refused_with_the_setting_named(tmp_path, name, value, says):
    with pytest.raises(ConfigError, match=says):
        load(tmp_path, **{name: value})


def test_postgres_urls_use_the_psycopg_driver(tmp_path):
    assert load(tmp_path, DATABASE_URL="postgres://u:p@h/db")["SQLALCHEMY_DATABASE_URI"] == (
        "postgresql+psycopg://u:p@h/db"
    )


def test_create_app_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TONGZHI_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("TIMEZONE", "Europe/Berlin")
    app = create_app()
    assert app.config["TIMEZONE"] == "Europe/Berlin"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["AUTO_MIGRATE"] is False


def test_create_app_without_secret_in_production_says_so(monkeypatch):
    monkeypatch.setenv("TONGZHI_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="refuses to start"):
        create_app()


def test_effective_settings_mask_secrets_and_url_passwords():
    config = {
        "SECRET_KEY": "flask-secret-value",
        "WECHAT_SECRET": "wechat-app-secret",
        "WECHAT_PUSH_TOKEN": "push-token-value",
        "WECHAT_PUSH_AES_KEY": "a" * 43,
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://tz:db-password@db/tongzhi",
        "REDIS_URL": "redis://:redis-password@cache:6379/0",
    }
    shown = " ".join(value for _, value in effective_settings(config))
    for secret in (
        "flask-secret-value",
        "wechat-app-secret",
        "push-token-value",
        "a" * 43,
        "db-password",
        "redis-password",
    ):
        assert secret not in shown
    assert "postgresql+psycopg://tz:***@db/tongzhi" in shown
    assert mask_url("redis://cache:6379/0") == "redis://cache:6379/0"


def test_check_settings_prints_the_configuration_masked(app, runner):
    app.config["WECHAT_SECRET"] = "wechat-app-secret"
    result = runner.invoke(args=["check-settings"])
    assert result.exit_code == 0
    assert "WECHAT_SECRET" in result.output and "(set, hidden)" in result.output
    assert "wechat-app-secret" not in result.output
    assert app.config["SECRET_KEY"] not in result.output
