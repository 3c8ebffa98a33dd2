"""A signed push counts once and only while fresh: secure mode only when an AES key is set, a timestamp
window both ways, and each (timestamp, nonce) accepted once, across processes."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models.grants import GrantEvent, WechatPush
from dashboard.sandbox.push import build_envelope, signature
from tests.api.live import AES_KEY, PUSH_TOKEN
from tests.push.helpers import APPID, configure_for, count, credits, popup, post, push, settings


@pytest.fixture
def config_overrides():
    return {"WECHAT_APPID": APPID, "WECHAT_PUSH_TOKEN": PUSH_TOKEN, "WECHAT_PUSH_AES_KEY": AES_KEY}


def nothing_applied(app) -> bool:
    return count(app, WechatPush) == 0 and count(app, GrantEvent) == 0


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_with_an_aes_key_set_a_correctly_signed_plaintext_push_is_refused(app, client, fmt):
    envelope = build_envelope(popup(("TA", "accept")), settings(fmt=fmt))  # plaintext: the body is unsigned
    response = post(client, envelope)
    assert response.status_code == 403
    assert nothing_applied(app)
    # The same event in secure mode, where the signature covers the body, is applied.
    assert push(client, popup(("TA", "accept")), fmt=fmt, mode="secure").get_data(as_text=True) == "success"
    assert credits(app, "TA") == 1


@pytest.mark.parametrize("mode", ["plaintext", "secure"])
@pytest.mark.parametrize("offset", [-301, 301, -365 * 86_400], ids=["stale", "future", "a-year-old"])
def test_a_push_signed_outside_the_window_is_refused(app, client, mode, offset):
    response = push(client, popup(("TA", "accept")), mode=mode, timestamp=int(time.time()) + offset)
    assert response.status_code == 403
    assert nothing_applied(app)


@pytest.mark.parametrize("offset", [-290, 290])
def test_a_push_signed_inside_the_window_either_way_is_applied(app, client, offset):
    response = push(client, popup(("TA", "accept")), mode="secure", timestamp=int(time.time()) + offset)
    assert response.get_data(as_text=True) == "success"
    assert credits(app, "TA") == 1


def test_the_window_is_a_setting(app, client):
    app.config["WECHAT_PUSH_MAX_AGE_SECONDS"] = 30
    assert push(client, popup(("TA", "accept")), timestamp=int(time.time()) - 60).status_code == 403
    assert push(client, popup(("TA", "accept")), timestamp=int(time.time()) - 20).status_code == 200


@pytest.mark.parametrize("timestamp", ["soon", "", "1e9", "-5", "9" * 40])
def test_a_signed_timestamp_that_is_not_a_time_is_refused(app, client, timestamp):
    configure_for(app, "plaintext")
    envelope = build_envelope(popup(("TA", "accept")), settings(), nonce="12345")
    params = {**envelope.params, "timestamp": timestamp}
    params["signature"] = signature(PUSH_TOKEN, timestamp, "12345")
    assert post(client, envelope, params=params).status_code == 403
    assert nothing_applied(app)


def test_a_signature_seen_once_does_not_carry_another_body(app, client):
    """Plaintext mode: ``signature`` covers token, timestamp and nonce only. Whoever saw it (an access
    log keeps it) must not be able to send their own body with it."""
    configure_for(app, "plaintext")
    seen = build_envelope(popup(("TA", "accept")), settings())
    assert post(client, seen).get_data(as_text=True) == "success"
    forged = build_envelope(popup(("TA", "accept"), when=1_790_000_999), settings())
    response = post(client, seen, body=forged.body)
    assert response.status_code == 403
    assert credits(app, "TA") == 1 and count(app, WechatPush) == 1 and count(app, GrantEvent) == 1


@pytest.mark.parametrize("mode", ["plaintext", "secure"])
def test_the_same_signed_request_again_is_acknowledged_and_applied_once(app, client, mode):
    """WeChat may send a push again when our answer did not reach it; if it reuses the nonce, the repeat
    is acknowledged with ``success`` (so it stops) and changes nothing."""
    configure_for(app, mode)
    envelope = build_envelope(popup(("TA", "accept")), settings(mode=mode))
    for _ in range(3):
        response = post(client, envelope)
        assert response.status_code == 200 and response.get_data(as_text=True) == "success"
    assert credits(app, "TA") == 1 and count(app, WechatPush) == 1 and count(app, GrantEvent) == 1


def test_a_signed_request_refused_for_its_body_still_uses_up_its_nonce(app, client):
    configure_for(app, "plaintext")
    bad = build_envelope(popup(("TA", "accept"), openid="not an openid!"), settings())
    assert post(client, bad).status_code == 400
    good = build_envelope(popup(("TA", "accept")), settings())
    assert post(client, bad, body=good.body).status_code == 403
    assert nothing_applied(app)


def test_concurrent_uses_of_one_signature_apply_exactly_one(app, live_server):
    """Several requests with one signature at the same moment, as from several gunicorn workers: the
    database decides, and exactly one body is applied."""
    configure_for(app, "plaintext")
    seen = build_envelope(popup(("T0", "accept")), settings())
    bodies = [build_envelope(popup((f"T{i}", "accept")), settings()).body for i in range(6)]
    start = threading.Barrier(len(bodies))

    def send(body: bytes) -> int:
        start.wait()
        return requests.post(
            f"{live_server}/wechat/push",
            params=seen.params,
            data=body,
            headers={"Content-Type": seen.content_type},
            timeout=20,
        ).status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        statuses = sorted(pool.map(send, bodies))
    assert statuses == [200] + [403] * (len(bodies) - 1)
    assert count(app, WechatPush) == 1 and count(app, GrantEvent) == 1


def test_nonces_are_forgotten_after_their_window_a_bounded_number_per_push(app, client):
    from dashboard.models import PushNonce
    from dashboard.push.replay import PRUNE_BATCH

    now = int(time.time())
    window = app.config["WECHAT_PUSH_MAX_AGE_SECONDS"]
    with app.app_context():
        db.session.add_all(
            PushNonce(timestamp=now - window - 5, nonce=f"old{i}", body_digest="0" * 64)
            for i in range(PRUNE_BATCH + 7)
        )
        db.session.add(PushNonce(timestamp=now - window + 60, nonce="still-fresh", body_digest="0" * 64))
        db.session.commit()

    def remembered() -> list[str]:
        with app.app_context():
            return list(db.session.scalars(select(PushNonce.nonce)))

    assert push(client, popup(("TA", "accept"))).status_code == 200
    assert sum(nonce.startswith("old") for nonce in remembered()) == 7  # bounded work per push
    assert push(client, popup(("TB", "accept"))).status_code == 200
    left = remembered()
    assert not any(nonce.startswith("old") for nonce in left)
    assert "still-fresh" in left and len(left) == 3  # and the two pushes' own nonces
