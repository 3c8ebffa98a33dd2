"""``flask worker``: a Huey consumer with the app, sending what is due.

Run any number of them, on any number of machines, over PostgreSQL and Redis. Exactly one should run
the periodic tick (reconciler + backstop kick): the default; start the others with ``--no-periodic``.
"""

from __future__ import annotations

import signal

import click
from flask import current_app
from flask.cli import with_appcontext

from ..oa.daily_sync import catch_up_if_stale


@click.command("worker")
@click.option("--periodic/--no-periodic", default=True, show_default=True, help="Run the minute tick here.")
@with_appcontext
def worker_command(periodic: bool) -> None:
    """Consume dispatch kicks and ticks until stopped.

    SIGTERM (what systemd, Docker and Kubernetes send) and SIGINT (Ctrl-C under ``make run``) stop
    gracefully: no more claims, rows claimed ahead go back to the queue with their credits, the batch in
    flight gets its answers recorded, then the process exits. A second signal stops at once (the lease
    and the reconciler then deal with what was in flight, as after a crash).
    """
    tasks = current_app.extensions["dispatch_tasks"]
    consumer = tasks.huey.create_consumer(
        workers=1, worker_type="thread", periodic=periodic, check_worker_health=True, graceful_signal="TERM"
    )
    # Huey makes one signal graceful and the other immediate; an immediate stop on Ctrl-C would leave the
    # batch in flight unknown for no reason, so both are graceful (huey is pinned: this is its table of
    # (restart, graceful) per signal).
    consumer._signal_actions[signal.SIGINT] = (False, True)
    # Huey sets this flag on the graceful signal and then waits for the running task: the dispatcher
    # watches it to stop claiming.
    current_app.extensions["dispatch_stop"] = consumer.stop_flag
    click.echo(
        f"Tongzhi worker: queue {type(tasks.huey).__name__}, periodic tick {'on' if periodic else 'off'}"
    )
    # Send whatever is already due, without waiting for the first kick or tick.
    tasks.kick()
    if periodic:  # the worker that runs the schedule also runs what the schedule missed while it was down
        catch_up_if_stale(current_app._get_current_object())
    consumer.run()
