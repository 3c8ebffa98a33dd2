"""Fixtures for the catalog tests: the app pointed at a real WeChat sandbox on loopback.

Nothing here mocks ``requests``: every WeChat call crosses a real socket to ``dashboard.sandbox``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from dashboard.extensions import db
from dashboard.models.catalog import MessageTemplate
from tests.api.live import mp_overrides


@pytest.fixture
def config_overrides(sandbox) -> dict[str, Any]:
    return mp_overrides(sandbox)


class Catalog:
    """Small helpers over the pages, so tests read as what an operator does."""

    def __init__(self, app, client):
        self.app = app
        self.client = client

    def sync(self) -> str:
        """Open the diff page and apply it; returns the diff page's HTML."""
        page = self.client.get("/templates/sync")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]+)"', html).group(1)
        applied = self.client.post("/templates/sync", data={"fingerprint": fingerprint})
        assert applied.status_code == 302, applied.get_data(as_text=True)
        return html

    def get(self, template_id: str) -> MessageTemplate | None:
        with self.app.app_context():
            row = db.session.scalar(
                db.select(MessageTemplate).where(MessageTemplate.template_id == template_id)
            )
            if row is not None:
                db.session.expunge(row)
            return row

    def all(self) -> list[MessageTemplate]:
        with self.app.app_context():
            rows = list(db.session.scalars(db.select(MessageTemplate).order_by(MessageTemplate.id)))
            for row in rows:
                db.session.expunge(row)
            return rows


@pytest.fixture
def catalog(app, client) -> Catalog:
    return Catalog(app, client)
