"""The unit of work a worker repeats: claim a batch, send it, record the answers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import Flask

from ..extensions import db
from ..wechat import get_client
from .claim import DEFAULT_LEASE_SECONDS, claim_due, load_dispatch_state
from .finalize import finalize, reconcile_expired_leases
from .ledger import CreditLedger
from .sender import BatchSender
from .transactions import write_transaction


@dataclass(frozen=True)
class Round:
    claimed: int = 0
    skipped: int = 0
    written: int = 0
    rate_limited: bool = False
    paused_until: datetime | None = None


class Dispatcher:
    """One per worker process. ``run_once`` is the unit of work tests call directly."""

    def __init__(
        self,
        app: Flask,
        ledger: CreditLedger,
        *,
        batch_size: int | None = None,
        concurrency: int | None = None,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self.app = app
        self.ledger = ledger
        with app.app_context():
            self.engine: sa.Engine = db.engine
            self.client = get_client(app)
            if concurrency is None:
                with write_transaction(self.engine) as session:
                    concurrency = load_dispatch_state(session).concurrency
        self.concurrency = concurrency
        self.batch_size = batch_size or concurrency
        self.lease_seconds = lease_seconds
        self.sender = BatchSender(self.client, concurrency)

    def run_once(self) -> Round:
        batch = claim_due(self.engine, self.ledger, self.batch_size, self.lease_seconds)
        if not batch.claims:
            return Round(
                skipped=batch.skipped, rate_limited=batch.rate_limited, paused_until=batch.paused_until
            )
        results = self.sender.send(batch.claims)
        written = finalize(self.engine, self.ledger, results)
        return Round(claimed=len(batch.claims), skipped=batch.skipped, written=written)

    def drain(self, seconds: float = 30.0) -> int:
        """Run rounds until nothing is due (or paused), or ``seconds`` have passed; return rows claimed."""
        deadline = time.monotonic() + seconds
        total = 0
        while time.monotonic() < deadline:
            round_ = self.run_once()
            total += round_.claimed
            if round_.paused_until is not None:
                break
            if round_.rate_limited:
                time.sleep(0.02)
                continue
            if round_.claimed == 0 and round_.skipped == 0:
                break
        return total

    def reconcile(self) -> int:
        return reconcile_expired_leases(self.engine, self.ledger)

    def close(self) -> None:
        self.sender.close()
