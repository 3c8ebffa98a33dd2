"""Command-line tools: ``flask create-operator``, ``flask check-settings``, ``flask demo-admin``."""

from __future__ import annotations

import secrets
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from .apikeys import services as apikey_services
from .catalog.cli import sync_templates_command
from .config import effective_settings
from .dispatch.worker import worker_command
from .extensions import db
from .models import Operator, Role
from .models.api_key import SCOPES
from .models.operator import MIN_PASSWORD_LENGTH
from .oa.cli import sync_followers_command
from .operators import services as operator_services
from .serve import DEFAULT_HOST, DEFAULT_PORT, browse_url, serve_command
from .wechat.cli import wechat_check_command

DEMO_ADMIN_EMAIL = "admin@tongzhi.local"


@click.command("create-operator")
@with_appcontext
@click.argument("email")
@click.option(
    "--role", type=click.Choice([role.value for role in Role]), default=Role.viewer.value, show_default=True
)
@click.option("--name", default="", help="Display name.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input instead of prompting."
)
def create_operator_command(email: str, role: str, name: str, password_stdin: bool) -> None:
    """Add an operator who can log in to the console."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    try:
        operator = operator_services.create_operator(email, password, role, name)
    except operator_services.OperatorError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Created operator {operator.email} with role {operator.role.value}.")


@click.command("check-settings")
@with_appcontext
def check_settings_command() -> None:
    """Print the effective configuration, secrets masked."""
    width = max(len(name) for name, _ in effective_settings(current_app.config))
    for name, shown in effective_settings(current_app.config):
        click.echo(f"{name.ljust(width)}  {shown}")


@click.command("create-api-key")
@click.argument("name")
@click.option(
    "--scope", "scopes", multiple=True, type=click.Choice(list(SCOPES)), default=["send"], show_default=True
)
@with_appcontext
def create_api_key_command(name: str, scopes: tuple[str, ...]) -> None:
    """Create an API key for another back end; the key is printed alone on the last line, once."""
    try:
        key, plaintext = apikey_services.create_key(name, list(scopes))
    except apikey_services.ApiKeyError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Created API key {key.name} (scopes: {key.scopes}). It is shown only now:")
    click.echo(plaintext)


@click.command("demo-admin")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Where `flask serve` listens.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Its port.")
@with_appcontext
def demo_admin_command(host: str, port: int) -> None:
    """Create a demo admin with a random password when no operator exists yet, and print the credentials
    with the login URL of a `flask serve --host HOST --port PORT`."""
    count = db.session.scalar(select(func.count()).select_from(Operator))
    if count:
        click.echo(f"{count} operator(s) already exist; no demo admin created.")
        return
    password = secrets.token_urlsafe(12)
    operator_services.create_operator(DEMO_ADMIN_EMAIL, password, Role.admin, "Demo admin")
    db.session.commit()
    click.echo(f"Demo admin created. Log in at {browse_url(host, port)}/login with")
    click.echo(f"  email:    {DEMO_ADMIN_EMAIL}")
    click.echo(f"  password: {password}")


def init_app(app: Flask) -> None:
    for command in (
        create_operator_command,
        check_settings_command,
        demo_admin_command,
        create_api_key_command,
        wechat_check_command,
        sync_templates_command,
        sync_followers_command,
        serve_command,
        worker_command,
    ):
        app.cli.add_command(command)
