"""``flask worker``: a Huey consumer with the app, sending what is due.

Run any number of them, on any number of machines, over PostgreSQL and Redis. Exactly one should run
the periodic tick (reconciler + backstop kick): the default; start the others with ``--no-periodic``.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("worker")
@click.option("--periodic/--no-periodic", default=True, show_default=True, help="Run the minute tick here.")
@with_appcontext
def worker_command(periodic: bool) -> None:
    """Consume dispatch kicks and ticks until stopped (SIGTERM/SIGINT stop it gracefully)."""
    tasks = current_app.extensions["dispatch_tasks"]
    consumer = tasks.huey.create_consumer(
        workers=1, worker_type="thread", periodic=periodic, check_worker_health=True
    )
    click.echo(
        f"Tongzhi worker: queue {type(tasks.huey).__name__}, periodic tick {'on' if periodic else 'off'}"
    )
    # Send whatever is already due, without waiting for the first kick or tick.
    tasks.kick()
    consumer.run()
