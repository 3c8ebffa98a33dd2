"""``flask sync-followers``: bring the Official Account's followers up to date now.

The worker also runs it every day at OA_FOLLOWER_SYNC_AT (``oa.daily_sync``); both take the same lock, so
a command started while the worker syncs says so and stops."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from ..config import oa_configured
from ..wechat.errors import WeChatError
from ..wechat.oa import get_oa_client
from .daily_sync import exclusive
from .followers import sync_followers


@click.command("sync-followers")
@with_appcontext
def sync_followers_command() -> None:
    """Read the Official Account's followers (user/get, then user/info/batchget for their unionid)."""
    if not oa_configured(current_app.config):
        click.echo("The Official Account channel is off (WECHAT_OA_APPID is not set): nothing to sync.")
        return
    try:
        with exclusive() as held:
            if not held:
                raise click.ClickException("A follower sync is already running (the worker's daily sync?).")
            result = sync_followers(get_oa_client())
    except WeChatError as error:
        code = "no errcode" if error.errcode is None else f"errcode {error.errcode}"
        raise click.ClickException(
            f"Follower sync failed ({error.category.value}): {code}: {error.errmsg}"
        ) from None
    click.echo(
        f"{result.total} follower(s) at WeChat: {result.seen} listed in {result.pages} page(s), "
        f"{result.added} new, {result.updated} changed, {result.unfollowed} no longer following."
    )
