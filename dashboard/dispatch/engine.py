"""The unit of work a worker repeats: claim a batch, send it, record the answers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask

from ..extensions import db
from ..wechat import get_client
from ..wechat.oa import get_oa_client
from .claim import DEFAULT_LEASE_SECONDS, claim_due, load_dispatch_state, start_claims
from .finalize import Reconciled, finalize, join_missed_reports, reconcile_expired_leases, release_unstarted
from .ledger import CreditLedger
from .sender import BatchSender, PendingBatch
from .sent_events import DEFAULT_MATCH_WINDOW
from .write_lock import write_transaction

# Longest the engine waits for a batch to be written before doing its database work anyway (writing a
# batch of 256 takes a few milliseconds; a connection being opened may take longer).
WRITE_WAIT_SECONDS = 0.05


@dataclass(frozen=True)
class Round:
    claimed: int = 0
    skipped: int = 0
    written: int = 0
    rate_limited: bool = False
    paused_until: datetime | None = None


class Dispatcher:
    """One per worker process. ``run_once`` is the unit of work tests call directly.

    ``stop`` (an event, set on SIGTERM by ``flask worker``) makes ``drain`` claim nothing more, give
    back what it claimed ahead and finish what is in flight.
    """

    def __init__(
        self,
        app: Flask,
        ledger: CreditLedger,
        *,
        batch_size: int | None = None,
        concurrency: int | None = None,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        stop: threading.Event | None = None,
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
        # A started batch must fit the free slots: a started row waiting for a connection would be
        # called unknown by a kill although it never left.
        self.batch_size = min(batch_size or concurrency, concurrency)
        self.lease_seconds = lease_seconds
        self.stop = stop or threading.Event()
        # How long after an attempt started WeChat's delivery event may still settle it (if unknown).
        self.match_window = timedelta(
            seconds=app.config.get("SENT_EVENT_MATCH_SECONDS", DEFAULT_MATCH_WINDOW.total_seconds())
        )
        # Official Account claims go through the same funnel with the OA's token source.
        self.sender = BatchSender(self.client, concurrency, get_oa_client(app))

    def run_once(self) -> Round:
        """Claim one batch, send it, record the answers (the unit of work; tests call it directly)."""
        batch = claim_due(self.engine, self.ledger, self.batch_size, self.lease_seconds)
        if not batch.claims:
            return Round(
                skipped=batch.skipped, rate_limited=batch.rate_limited, paused_until=batch.paused_until
            )
        written = finalize(
            self.engine, self.ledger, self.sender.send(batch.claims), match_window=self.match_window
        )
        return Round(claimed=len(batch.claims), skipped=batch.skipped, written=written)

    def drain(self, seconds: float = 30.0) -> int:
        """Send what is due until nothing is (or sending is paused, or ``stop`` is set), or ``seconds``
        have passed. Returns rows sent (started).

        Pipelined: while a batch is in flight the next one is claimed (and its credits reserved) but
        not started; when the batch in flight has every answer, its slots are free, the next batch's
        start is committed and it goes out, and only then are the previous answers recorded, so the
        database work overlaps WeChat's round trips (it starts once the batch is written:
        ``PendingBatch.wait_written``). A kill thus leaves at most the batch in flight
        ``unknown``: the one claimed ahead has no start and goes back to the queue. A claimed batch
        never shares an openid with one in flight (those rows are ``sending``).
        """
        deadline = time.monotonic() + seconds
        in_flight: PendingBatch | None = None
        total = 0
        while True:
            batch = None
            if not self.stop.is_set() and time.monotonic() < deadline:
                batch = claim_due(
                    self.engine, self.ledger, self.batch_size, self.lease_seconds, start=in_flight is None
                )
            claims = batch.claims if batch else []
            results = in_flight.results() if in_flight is not None else None
            if claims and results is not None:  # claimed ahead: start them, unless we are stopping
                if self.stop.is_set():
                    release_unstarted(self.engine, self.ledger, claims)
                    claims = []
                else:
                    claims = start_claims(self.engine, claims, self.lease_seconds)
            next_in_flight = self.sender.submit(claims) if claims else None
            if next_in_flight is not None:
                # Let the sending thread write the batch before this one takes the interpreter for
                # the database work below (the round trip starts when the last request is out).
                next_in_flight.wait_written(WRITE_WAIT_SECONDS)
            if results is not None:
                finalize(self.engine, self.ledger, results, match_window=self.match_window)
            had_in_flight = in_flight is not None
            in_flight = next_in_flight
            if in_flight is not None:
                total += len(claims)
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

    def reconcile(self) -> Reconciled:
        return reconcile_expired_leases(self.engine, self.ledger, match_window=self.match_window)

    def join_missed_reports(self) -> int:
        return join_missed_reports(self.engine)

    def close(self) -> None:
        self.sender.close()
