"""The ``sandbox`` click command (without actually serving)."""

from __future__ import annotations

from click.testing import CliRunner

from dashboard.sandbox.cli import sandbox_command


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(sandbox_command, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--appid",
        "--secret",
        "--push-url",
        "--push-format",
        "--push-mode",
        "--push-token",
        "--push-aes-key",
        "--users",
        "--token-ttl",
    ):
        assert option in result.output


def test_secure_mode_without_a_key_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        sandbox_command, ["--push-url", "http://127.0.0.1:1/x", "--push-mode", "secure"]
    )
    assert result.exit_code == 2
    assert "PUSH_AES_KEY" in result.output
