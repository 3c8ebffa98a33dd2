"""HOLD_SENDS: a sandbox fault that keeps subscribeMessage.send waiting until it is set back to 0, so a
test can act while a send is surely in flight (tests/browser/test_test_send_race.py) without a delay."""

from __future__ import annotations

import threading
from typing import Any

import requests

from .helpers import (
    TIMEOUT,
    VALID_DATA,
    first_user,
    messages,
    prompt,
    send,
    set_faults,
    template_by_title,
    token,
)


def test_a_held_send_waits_until_released_and_the_value_is_checked(sandbox):
    url = sandbox.url
    access_token = token(url)
    openid = first_user(url)
    template_id = template_by_title(url, access_token, "会议提醒")["priTmplId"]
    prompt(url, openid, {template_id: "accept"})
    assert set_faults(url, HOLD_SENDS=1)["HOLD_SENDS"] == 1
    replies: list[dict[str, Any]] = []
    worker = threading.Thread(
        target=lambda: replies.append(
            send(url, access_token, touser=openid, template_id=template_id, data=VALID_DATA["会议提醒"])
        )
    )
    worker.start()
    try:
        worker.join(timeout=0.5)
        assert worker.is_alive() and replies == [] and messages(url) == []  # held
    finally:
        set_faults(url, HOLD_SENDS=0)
    worker.join(timeout=TIMEOUT)
    assert [reply["errcode"] for reply in replies] == [0] and len(messages(url)) == 1

    refused = requests.post(url + "/sandbox/api/faults", json={"HOLD_SENDS": 2}, timeout=TIMEOUT)
    assert refused.status_code == 400
