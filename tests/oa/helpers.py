"""Reading the sandbox's Official Account and Tongzhi's follower table in the OA tests."""

from __future__ import annotations

from typing import Any

import requests
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models.oa import OaFollower

TIMEOUT = 10


def oa_get(sandbox, path: str, **params: Any) -> Any:
    response = requests.get(f"{sandbox.url}/sandbox/api/oa{path}", params=params, timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()


def oa_post(sandbox, path: str, body: Any = None) -> Any:
    response = requests.post(f"{sandbox.url}/sandbox/api/oa{path}", json=body or {}, timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()


def sandbox_followers(sandbox, subscribed: bool | None = None) -> list[dict[str, Any]]:
    rows = oa_get(sandbox, "/followers")["followers"]
    return [r for r in rows if subscribed is None or r["subscribed"] == subscribed]


def oa_token(sandbox) -> str:
    config = sandbox.server.state.config
    body = {"grant_type": "client_credential", "appid": config["OA_APPID"], "secret": config["OA_SECRET"]}
    reply = requests.post(f"{sandbox.url}/cgi-bin/stable_token", json=body, timeout=TIMEOUT).json()
    return reply["access_token"]


def followers_in_db(app) -> dict[str, OaFollower]:
    with app.app_context():
        rows = db.session.scalars(select(OaFollower)).all()
        for row in rows:
            db.session.expunge(row)
        return {row.openid: row for row in rows}
