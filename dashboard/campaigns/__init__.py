"""Campaigns: compose, launch (a snapshot of the segment into delivery rows), watch, pause, cancel."""

from __future__ import annotations

import logging

from flask import Flask

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Let the dispatch tick run the campaign supervisor (scheduled starts, automatic pauses, completion)
    without the engine importing campaigns (it knows no catalog; see tests/dispatch/test_layering.py)."""
    app.extensions.setdefault("dispatch_hooks", []).append(_supervise)


def _supervise() -> None:
    from .services import supervise

    supervise()
