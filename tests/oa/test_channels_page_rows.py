"""Settings → Channels says what sends through each channel now: campaigns, reminders, the send API and test
sends on both channels, the fallback in one sentence, and when the worker syncs the followers. Both
languages."""

from __future__ import annotations


def page(client, lang: str) -> str:
    client.post("/language/" + lang, data={"next": "/"})
    response = client.get("/settings/channels/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def section(body: str, number: int) -> str:
    start = body.index(f'id="channel-{number}"')
    return body[start : body.index("</section>", start)]


def test_each_spoken_channel_says_what_sends_through_it(app, client, auth):
    auth.login("viewer")
    body = page(client, "en")
    subscribe, official = section(body, 1), section(body, 2)
    for row in (subscribe, official):
        assert "sends through it" in row
        for user in ("campaigns", "date reminders", "the send API", "test sends"):
            assert user in row
    assert "43004" in official
    fallback = body[body.index('id="channel-fallback"') :]
    assert "spends a subscribe credit" in fallback and "when they follow it" in fallback
    # the fallback sentence stands between the channels Tongzhi speaks and those it does not offer
    assert body.index('id="channel-2"') < body.index('id="channel-fallback"') < body.index('id="channel-3"')
    assert "every day at 03:30 (Asia/Shanghai)" in body
    zh = page(client, "zh")
    assert "活动、日期提醒、发送 API" in section(zh, 1) and "43004" in section(zh, 2)
    assert "兜底发送" in zh and "每天 03:30（Asia/Shanghai）" in zh


def test_the_daily_sync_line_says_when_it_is_off(app, client, auth):
    app.config["OA_FOLLOWER_SYNC_AT"] = None
    auth.login("viewer")
    assert "daily sync is off (OA_FOLLOWER_SYNC_AT=off)" in page(client, "en")
