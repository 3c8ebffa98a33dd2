"""``flask sandbox`` / ``python -m dashboard.sandbox``: run the WeChat sandbox in the foreground.

A plain click command: it builds its own app and needs no application context of the product.
"""

from __future__ import annotations

import click

from .settings import SandboxConfigError


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=5010, show_default=True, type=int, help="Port to serve on.")
@click.option("--appid", default="wxsandbox000000000", show_default=True, help="AppID the sandbox accepts.")
@click.option("--secret", default="sandbox-secret", show_default=True, help="AppSecret the sandbox accepts.")
@click.option("--original-id", default="gh_sandbox00000", show_default=True, help="ToUserName of pushes.")
@click.option("--push-url", default=None, help="Where to push subscribe events (Tongzhi's callback URL).")
@click.option("--push-format", type=click.Choice(["json", "xml"]), default="json", show_default=True)
@click.option(
    "--push-mode", type=click.Choice(["plaintext", "secure"]), default="plaintext", show_default=True
)
@click.option("--push-token", default="sandboxtoken", show_default=True, help="Token for push signatures.")
@click.option("--push-aes-key", default=None, help="43-character EncodingAESKey (secure mode).")
@click.option(
    "--mp-api-base", default=None, help="Tongzhi's mini-program API base URL (stored for reporting)."
)
@click.option(
    "--oa-appid", default="wxsandboxoa0000000", show_default=True, help="The linked Official Account's AppID."
)
@click.option(
    "--oa-secret", default="sandbox-oa-secret", show_default=True, help="The Official Account's AppSecret."
)
@click.option(
    "--oa-push-url", default=None, help="Where to push the Official Account's events (/wechat/oa-push)."
)
@click.option(
    "--oa-push-token", default="sandboxoatoken", show_default=True, help="Token for its push signatures."
)
@click.option("--oa-push-aes-key", default=None, help="Its 43-character EncodingAESKey (secure mode).")
@click.option("--oa-page-size", default=100, show_default=True, type=int, help="user/get page size.")
@click.option("--users", default=300, show_default=True, type=int, help="Simulated users to seed.")
@click.option("--token-ttl", default=7200, show_default=True, type=int, help="access_token lifetime (s).")
def sandbox_command(
    host: str,
    port: int,
    appid: str,
    secret: str,
    original_id: str,
    push_url: str | None,
    push_format: str,
    push_mode: str,
    push_token: str,
    push_aes_key: str | None,
    mp_api_base: str | None,
    oa_appid: str,
    oa_secret: str,
    oa_push_url: str | None,
    oa_push_token: str,
    oa_push_aes_key: str | None,
    oa_page_size: int,
    users: int,
    token_ttl: int,
) -> None:
    """Run a local imitation of WeChat's server APIs (tokens, login, subscribe messages, templates)."""
    from . import SandboxServer

    config = {
        "APPID": appid,
        "SECRET": secret,
        "ORIGINAL_ID": original_id,
        "PUSH_URL": push_url,
        "PUSH_FORMAT": push_format,
        "PUSH_MODE": push_mode,
        "PUSH_TOKEN": push_token,
        "PUSH_AES_KEY": push_aes_key,
        "MP_API_BASE": mp_api_base,
        "OA_APPID": oa_appid,
        "OA_SECRET": oa_secret,
        "OA_PUSH_URL": oa_push_url,
        "OA_PUSH_TOKEN": oa_push_token,
        "OA_PUSH_MODE": "secure" if oa_push_aes_key else "plaintext",
        "OA_PUSH_AES_KEY": oa_push_aes_key,
        "OA_PAGE_SIZE": oa_page_size,
        "USERS": users,
        "TOKEN_TTL": token_ttl,
    }
    try:
        server = SandboxServer(config, host=host, port=port, quiet=False)
    except SandboxConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"WeChat sandbox / 微信沙箱 for {appid} on http://{host}:{port}")
    click.echo(f"  WECHAT_API_BASE=http://{host}:{port}   users page: http://{host}:{port}/sandbox/")
    if push_url:
        click.echo(f"  pushing events to {push_url} ({push_format}, {push_mode})")
    click.echo(
        f"  linked Official Account {oa_appid}"
        + (f", pushing its events to {oa_push_url}" if oa_push_url else "")
    )
    server.serve_forever()


if __name__ == "__main__":
    sandbox_command()
