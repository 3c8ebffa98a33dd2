"""``flask sync-templates``: the catalog's sync from WeChat, for cron."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..extensions import db
from ..wechat.errors import WeChatError
from . import sync

CLI_ACTOR = "flask sync-templates"


@click.command("sync-templates")
@click.option("--dry-run", is_flag=True, help="Print what would change and change nothing.")
@with_appcontext
def sync_templates_command(dry_run: bool) -> None:
    """Sync the template catalog with WeChat (gettemplate) and print what changed.

    New templates are registered; changed ones are updated and flagged for review; templates gone
    from WeChat are disabled and flagged as removed. Exits 1 when WeChat cannot be read.
    """
    try:
        plan = sync.plan_sync(sync.fetch_remote())
    except WeChatError as error:
        code = "no errcode" if error.errcode is None else f"errcode {error.errcode}"
        click.echo(f"Sync failed ({error.category.value}): {code}: {error.errmsg}", err=True)
        raise click.exceptions.Exit(1) from None
    for label, changes in (("New", plan.new), ("Changed", plan.changed), ("Removed", plan.removed)):
        for change in changes:
            click.echo(f"{label}: {change.describe()}")
    summary = (
        f"{len(plan.new)} new, {len(plan.changed)} changed, {len(plan.removed)} removed, "
        f"{plan.unchanged} unchanged"
    )
    if dry_run:
        click.echo(f"Dry run: {summary}; nothing applied.")
        return
    sync.apply_sync(plan, actor_email=CLI_ACTOR)
    db.session.commit()
    click.echo(f"Applied: {summary}.")
