"""``flask wechat-check``: prove the AppID/AppSecret, the network path and the token cache work."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .check import run_check


@click.command("wechat-check")
@with_appcontext
def wechat_check_command() -> None:
    """Get an access token through the shared cache and count the account's templates."""
    result = run_check()
    if result.ok:
        click.echo(f"OK: {result.template_count} template(s); access token from {result.token_source}.")
        return
    code = "no errcode" if result.errcode is None else f"errcode {result.errcode}"
    click.echo(f"WeChat check failed ({result.category}): {code}: {result.errmsg}", err=True)
    raise click.exceptions.Exit(1)
