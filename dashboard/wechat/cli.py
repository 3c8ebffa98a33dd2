"""``flask wechat-check``: prove the AppID/AppSecret, the network path and the token cache work, for the
mini-program and, when configured, the Official Account."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .check import run_check, run_oa_check


@click.command("wechat-check")
@with_appcontext
def wechat_check_command() -> None:
    """Get access tokens through the shared cache; count the mini-program's templates, and the Official
    Account's templates and followers."""
    failed = False
    result = run_check()
    if result.ok:
        click.echo(f"OK: {result.template_count} template(s); access token from {result.token_source}.")
    else:
        failed = True
        code = "no errcode" if result.errcode is None else f"errcode {result.errcode}"
        click.echo(f"WeChat check failed ({result.category}): {code}: {result.errmsg}", err=True)
    oa = run_oa_check()
    if not oa.configured:
        click.echo("Official Account: off (WECHAT_OA_APPID is not set).")
    elif oa.ok:
        click.echo(
            f"Official Account OK: {oa.template_count} template(s), {oa.follower_count} follower(s); "
            f"access token from {oa.token_source}."
        )
    else:
        failed = True
        code = "no errcode" if oa.errcode is None else f"errcode {oa.errcode}"
        click.echo(f"Official Account check failed ({oa.category}): {code}: {oa.errmsg}", err=True)
    if failed:
        raise click.exceptions.Exit(1)
