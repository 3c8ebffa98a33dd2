"""``flask sync-templates``: the catalog's sync from WeChat, for cron."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from ..config import oa_configured
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
    from WeChat are disabled and flagged as removed. When the Official Account is configured its
    template messages are synced too (get_all_private_template). Exits 1 when WeChat cannot be read.
    """
    failed = False
    try:
        plan = sync.plan_sync(sync.fetch_remote())
    except WeChatError as error:
        _echo_failure("Sync failed", error)
        failed = True
    else:
        for label, changes in (("New", plan.new), ("Changed", plan.changed), ("Removed", plan.removed)):
            for change in changes:
                click.echo(f"{label}: {change.describe()}")
        summary = (
            f"{len(plan.new)} new, {len(plan.changed)} changed, {len(plan.removed)} removed, "
            f"{plan.unchanged} unchanged"
        )
        if dry_run:
            click.echo(f"Dry run: {summary}; nothing applied.")
        else:
            sync.apply_sync(plan, actor_email=CLI_ACTOR)
            db.session.commit()
            click.echo(f"Applied: {summary}.")
    if oa_configured(current_app.config) and not _sync_official_account(dry_run):
        failed = True
    if failed:
        raise click.exceptions.Exit(1)


def _echo_failure(what: str, error: WeChatError) -> None:
    code = "no errcode" if error.errcode is None else f"errcode {error.errcode}"
    click.echo(f"{what} ({error.category.value}): {code}: {error.errmsg}", err=True)


def _sync_official_account(dry_run: bool) -> bool:
    """The Official Account's template messages (get_all_private_template), when the OA is configured."""
    from ..oa.templates import sync_oa_templates

    try:
        result = sync_oa_templates(actor_email=CLI_ACTOR, apply=not dry_run)
    except WeChatError as error:
        db.session.rollback()
        _echo_failure("Official Account sync failed", error)
        return False
    for template_id, title in result.new:
        click.echo(f"Official Account new: {template_id} {title}")
    for template_id, title, fields in result.changed:
        click.echo(f"Official Account changed: {template_id} {title} ({', '.join(fields)})")
    for template_id, title in result.removed:
        click.echo(f"Official Account removed: {template_id} {title}")
    if dry_run:
        click.echo(f"Official Account dry run: {result.summary()}; nothing applied.")
    else:
        db.session.commit()
        click.echo(f"Official Account applied: {result.summary()}.")
    return True
