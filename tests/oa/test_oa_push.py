"""``/wechat/oa-push``: the Official Account's events, verified by the same code and rules as
``/wechat/push`` with the OA's own Token, EncodingAESKey and AppID."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models.oa import OaEvent, OaFollower
from dashboard.sandbox.push import Event, PushSettings, build_envelope
from tests.api.live import PUSH_TOKEN
from tests.oa.helpers import OA_AES_KEY, OA_PUSH_TOKEN

OPENID = "oOaFollower000000000000000001"


def envelope(app, event, *, mode="plaintext", token=OA_PUSH_TOKEN, appid=None, fmt="xml", **kw):
    settings = PushSettings(
        url="",
        fmt=fmt,
        mode=mode,
        token=token,
        aes_key=OA_AES_KEY,
        appid=appid or app.config["WECHAT_OA_APPID"],
        original_id="gh_oa",
    )
    return build_envelope(event, settings, **kw)


def post(client, env):
    return client.post(
        "/wechat/oa-push", query_string=env.params, data=env.body, headers={"Content-Type": env.content_type}
    )


def follow(when=None, name="subscribe", openid=OPENID):
    return Event(
        name, openid, when or int(time.time()), fields={"EventKey": ""} if name == "subscribe" else {}
    )


def row(app, openid=OPENID):
    with app.app_context():
        found = db.session.scalar(select(OaFollower).where(OaFollower.openid == openid))
        if found is not None:
            db.session.expunge(found)
        return found


def events(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(OaEvent))


def test_the_console_url_check_uses_the_oas_token(client):
    params = {"timestamp": "1700000000", "nonce": "123", "echostr": "hello-oa"}
    from dashboard.push.crypto import signature

    good = client.get(
        "/wechat/oa-push", query_string={**params, "signature": signature(OA_PUSH_TOKEN, "1700000000", "123")}
    )
    assert (good.status_code, good.get_data(as_text=True)) == (200, "hello-oa")
    mp = client.get(
        "/wechat/oa-push", query_string={**params, "signature": signature(PUSH_TOKEN, "1700000000", "123")}
    )
    assert mp.status_code == 403


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_subscribe_and_unsubscribe_change_the_follower(app, client, fmt):
    when = int(time.time()) - 5
    assert post(client, envelope(app, follow(when), fmt=fmt)).get_data(as_text=True) == "success"
    found = row(app)
    assert found.following and int(found.followed_at.timestamp()) == when
    assert post(client, envelope(app, follow(when + 2, "unsubscribe"), fmt=fmt)).status_code == 200
    found = row(app)
    assert not found.following and int(found.unfollowed_at.timestamp()) == when + 2
    assert events(app) == 2


def test_a_repeat_is_acknowledged_and_applied_once(app, client):
    env = envelope(app, follow())
    assert post(client, env).status_code == 200
    assert post(client, env).get_data(as_text=True) == "success"  # the same signed request again
    assert (
        post(client, envelope(app, follow(int(env.params["timestamp"])))).status_code == 200
    )  # WeChat's retry
    assert events(app) == 1


def test_an_old_event_arriving_late_does_not_undo_a_newer_one(app, client):
    now = int(time.time())
    post(client, envelope(app, follow(now - 3, "unsubscribe")))
    post(client, envelope(app, follow(now - 60)))  # a retry of a subscribe from a minute ago
    assert not row(app).following


@pytest.mark.parametrize(
    "kw",
    [
        {"token": PUSH_TOKEN},  # signed with the mini-program's token
        {"timestamp": int(time.time()) - 3600},  # stale
    ],
)
def test_wrongly_signed_or_stale_pushes_are_refused(app, client, kw):
    assert post(client, envelope(app, follow(), **kw)).status_code == 403
    assert row(app) is None


def test_without_an_oa_push_token_every_push_is_refused(app, client):
    app.config["WECHAT_OA_PUSH_TOKEN"] = None
    assert post(client, envelope(app, follow())).status_code == 403


def test_secure_mode_with_the_oas_key_and_appid(app, client):
    app.config["WECHAT_OA_PUSH_AES_KEY"] = OA_AES_KEY
    assert post(client, envelope(app, follow())).status_code == 403  # plaintext refused once a key is set
    mp_appid = app.config["WECHAT_APPID"]
    assert post(client, envelope(app, follow(), mode="secure", appid=mp_appid)).status_code == 403
    assert row(app) is None
    assert post(client, envelope(app, follow(), mode="secure")).get_data(as_text=True) == "success"
    found = row(app)
    assert found.following
    with app.app_context():
        assert db.session.scalar(select(OaEvent.encrypted)) is True


def test_job_finish_is_kept_and_other_events_ignored(app, client):
    finish = Event(
        "TEMPLATESENDJOBFINISH",
        OPENID,
        int(time.time()),
        fields={"MsgID": "200163836", "Status": "failed:user block"},
    )
    assert post(client, envelope(app, finish)).status_code == 200
    with app.app_context():
        kept = db.session.scalar(select(OaEvent))
        assert (kept.msgid, kept.status, kept.event) == (
            "200163836",
            "failed:user block",
            "TEMPLATESENDJOBFINISH",
        )
    click = Event("CLICK", OPENID, int(time.time()), fields={"EventKey": "menu"})
    assert post(client, envelope(app, click)).get_data(as_text=True) == "success"
    assert events(app) == 1
    broken = Event("TEMPLATESENDJOBFINISH", OPENID, int(time.time()) + 1, fields={"Status": "success"})
    assert post(client, envelope(app, broken)).status_code == 400
    assert events(app) == 1
