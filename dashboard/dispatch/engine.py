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
from .sender import BatchSender, PendingBatch
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
        """Claim one batch, send it, record the answers (the unit of work; tests call it directly)."""
        batch = claim_due(self.engine, self.ledger, self.batch_size, self.lease_seconds)
        if not batch.claims:
            return Round(
                skipped=batch.skipped, rate_limited=batch.rate_limited, paused_until=batch.paused_until
            )
        written = finalize(self.engine, self.ledger, self.sender.send(batch.claims))
        return Round(claimed=len(batch.claims), skipped=batch.skipped, written=written)

    def drain(self, seconds: float = 30.0) -> int:
        """Send what is due until nothing is (or sending is paused), or ``seconds`` have passed.

        Pipelined: the next batch is claimed and put in flight before the previous batch's answers
        are recorded, so the database work overlaps WeChat's round trips. A claimed batch never
        shares an openid with one in flight (those rows are ``sending``). Returns rows claimed.
        """
        deadline = time.monotonic() + seconds
        in_flight: PendingBatch | None = None
        total = 0
        while True:
            batch = None
            if time.monotonic() < deadline:
                batch = claim_due(self.engine, self.ledger, self.batch_size, self.lease_seconds)
            next_in_flight = self.sender.submit(batch.claims) if batch and batch.claims else None
            had_in_flight = in_flight is not None
            if in_flight is not None:
                finalize(self.engine, self.ledger, in_flight.results())
            in_flight = next_in_flight
            if in_flight is not None:
                total += len(batch.claims)
                continue
            if batch is None or batch.paused_until is not None:
                return total
            if had_in_flight:
                continue  # rows of the users just finished may be due now
            if batch.rate_limited:
                time.sleep(0.01)
                continue
            if batch.skipped == 0:
                return total

    def reconcile(self) -> int:
        return reconcile_expired_leases(self.engine, self.ledger)

    def close(self) -> None:
        self.sender.close()
