"""Opens of campaign messages: the tz token on a delivery's page, POST /api/mp/opens, the delivery page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dashboard.deliveries.opens import (
    CAMPAIGN_PAGE_MAX_LENGTH,
    PAGE_MAX_LENGTH,
    PageHasOpenParam,
    PageTooLong,
    attach_open_token,
    campaign_page_problem,
    count_opens,
    new_open_token,
    record_open,
)
from dashboard.extensions import db
from dashboard.models import Delivery, DeliverySource, WechatUser
from tests.api.test_mp_api import bearer, error_of, login

TEMPLATE = "TMPL_opens_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
CAMPAIGN = 7


def add_campaign_delivery(openid: str, *, page: str = "pages/promo/index?id=42", campaign_id: int = CAMPAIGN):
    """A campaign delivery as the launch snapshots it: its own token, on its page. Returns (id, token)."""
    user = db.session.scalar(select(WechatUser).where(WechatUser.openid == openid))
    if user is None:
        user = WechatUser(openid=openid)
        db.session.add(user)
        db.session.flush()
    token = new_open_token()
    delivery = Delivery(
        source=DeliverySource.campaign,
        campaign_id=campaign_id,
        user_id=user.id,
        openid=openid,
        template_id=TEMPLATE,
        data={"thing1": {"value": "x"}},
        page=attach_open_token(page, token),
        open_token=token,
    )
    db.session.add(delivery)
    db.session.flush()
    return delivery.id, token


def opened_at(app, delivery_id: int) -> datetime | None:
    with app.app_context():
        return db.session.get(Delivery, delivery_id).opened_at


# --- the token -------------------------------------------------------------------------------------


def test_tokens_are_16_url_safe_characters_and_all_different():
    tokens = [new_open_token() for _ in range(10_000)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16}", token) for token in tokens)
    assert len(set(tokens)) == len(tokens)
    # Random, not a function of anything: the same position of many tokens takes many values.
    assert len({token[:4] for token in tokens}) > 9_000


def test_a_token_is_not_derived_from_the_delivery(app, monkeypatch):
    """The token comes from the operating system's random source alone (new_open_token takes no id,
    campaign or user): with that source fixed, every delivery would get the same token. The database
    refuses a second delivery with a token already in use, so even a collision could not merge two."""
    import dashboard.deliveries.opens as opens

    monkeypatch.setattr(opens.secrets, "token_urlsafe", lambda n: "F" * 16 if n == 12 else "")
    with app.app_context():
        add_campaign_delivery("o_token_a", campaign_id=1)
        db.session.commit()
        with pytest.raises(IntegrityError):
            add_campaign_delivery("o_token_b", campaign_id=2)
        db.session.rollback()
    monkeypatch.undo()
    assert new_open_token() != new_open_token()


def test_the_token_is_stored_and_on_the_page(app):
    with app.app_context():
        delivery_id, token = add_campaign_delivery("o_token_c")
        db.session.commit()
        delivery = db.session.get(Delivery, delivery_id)
        assert delivery.open_token == token
        assert delivery.page == f"pages/promo/index?id=42&tz={token}"


# --- the page --------------------------------------------------------------------------------------

TOKEN = "AbCdEfGhIjKl-_89"


@pytest.mark.parametrize(
    "page,expected",
    [
        ("pages/promo/index", "pages/promo/index?tz=" + TOKEN),
        ("pages/promo/index?id=42", "pages/promo/index?id=42&tz=" + TOKEN),
        ("pages/promo/index?id=42&from=card", "pages/promo/index?id=42&from=card&tz=" + TOKEN),
        ("pages/promo/index?", "pages/promo/index?tz=" + TOKEN),
        ("pages/promo/index?id=42&", "pages/promo/index?id=42&tz=" + TOKEN),
        ("pages/promo/index?q=%E4%B8%8A%E6%B5%B7", "pages/promo/index?q=%E4%B8%8A%E6%B5%B7&tz=" + TOKEN),
    ],
)
def test_the_token_joins_the_query_without_breaking_it(page, expected):
    assert attach_open_token(page, TOKEN) == expected


@pytest.mark.parametrize("page", ["", None])
def test_no_page_means_no_card_link_and_no_token(page):
    assert attach_open_token(page, TOKEN) == ""


def test_a_campaign_page_of_the_documented_length_always_fits_and_a_longer_one_is_refused():
    longest = "pages/a?q=" + "x" * (CAMPAIGN_PAGE_MAX_LENGTH - len("pages/a?q="))
    assert len(attach_open_token(longest, TOKEN)) == PAGE_MAX_LENGTH
    # Without a query the separator is "?", as long as "&": the same bound holds.
    plain = "p" * CAMPAIGN_PAGE_MAX_LENGTH
    assert len(attach_open_token(plain, TOKEN)) == PAGE_MAX_LENGTH
    with pytest.raises(PageTooLong):
        attach_open_token(longest + "x", TOKEN)


@pytest.mark.parametrize("page", ["pages/a?tz=mine", "pages/a?id=1&tz=", "pages/a?tz"])
def test_a_page_that_already_has_tz_is_refused_not_doubled(page):
    with pytest.raises(PageHasOpenParam):
        attach_open_token(page, TOKEN)
    assert "tz=" in campaign_page_problem(page)


def test_campaign_page_problem_names_what_a_campaign_page_may_not_be():
    assert campaign_page_problem(None) is None
    assert campaign_page_problem("") is None
    assert campaign_page_problem("pages/a?utz=1&tzz=2") is None  # other parameters ending or starting in tz
    assert campaign_page_problem("p" * CAMPAIGN_PAGE_MAX_LENGTH) is None
    assert str(CAMPAIGN_PAGE_MAX_LENGTH) in campaign_page_problem("p" * (CAMPAIGN_PAGE_MAX_LENGTH + 1))


def test_only_a_real_token_is_attached():
    with pytest.raises(ValueError):
        attach_open_token("pages/a", "short")
    with pytest.raises(ValueError):
        attach_open_token("pages/a", "a&b=c" + "x" * 11)


# --- POST /api/mp/opens ----------------------------------------------------------------------------


def test_an_open_is_counted_once_and_keeps_the_first_time(app, client, sandbox):
    token, openid = login(client, sandbox)
    with app.app_context():
        delivery_id, tz = add_campaign_delivery(openid)
        add_campaign_delivery("o_someone_else")  # another recipient of the campaign, not opened
        db.session.commit()
    before = datetime.now(UTC)
    first = client.post("/api/mp/opens", json={"tz": tz}, headers=bearer(token))
    assert first.status_code == 200, first.get_json()
    assert first.get_json() == {"ok": True}
    assert first.headers["Cache-Control"] == "no-store"
    stamped = opened_at(app, delivery_id)
    assert stamped is not None and stamped >= before.replace(microsecond=0)
    again = client.post("/api/mp/opens", json={"tz": tz}, headers=bearer(token))
    assert again.status_code == 200 and again.get_json() == {"ok": True}
    assert opened_at(app, delivery_id) == stamped
    with app.app_context():
        assert count_opens(CAMPAIGN) == 1
        assert count_opens(CAMPAIGN + 1) == 0


def test_another_users_token_is_refused_exactly_like_an_unknown_one(app, client, sandbox):
    token, _ = login(client, sandbox)
    with app.app_context():
        foreign_id, foreign = add_campaign_delivery("o_not_the_caller")
        db.session.commit()
    foreign_answer = client.post("/api/mp/opens", json={"tz": foreign}, headers=bearer(token))
    unknown_answer = client.post("/api/mp/opens", json={"tz": new_open_token()}, headers=bearer(token))
    assert foreign_answer.status_code == unknown_answer.status_code == 404
    assert foreign_answer.get_json() == unknown_answer.get_json()
    assert error_of(foreign_answer) == "unknown_open_token"
    assert opened_at(app, foreign_id) is None
    with app.app_context():
        assert count_opens(CAMPAIGN) == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"tz": None},
        {"tz": 12345},
        {"tz": ["AbCdEfGhIjKl-_89"]},
        {"tz": ""},
        {"tz": "short"},
        {"tz": "AbCdEfGhIjKl-_89x"},
        {"tz": "AbCdEfGhIjKl+/89"},
        {"tz": "AbCdEfGhIjKl-_8\n"},
        {"tz": "AbCdEfGhIjKl-_8" + "\u4e0a"},
    ],
)
def test_a_malformed_report_is_a_422_naming_tz(client, sandbox, body):
    token, _ = login(client, sandbox)
    response = client.post("/api/mp/opens", json=body, headers=bearer(token))
    assert response.status_code == 422, response.get_json()
    assert error_of(response) == "invalid_field"
    assert response.get_json()["error"]["field"] == "tz"


def test_a_body_that_is_not_an_object_or_not_json_is_refused_in_json(client, sandbox):
    token, _ = login(client, sandbox)
    not_object = client.post("/api/mp/opens", json=["tz"], headers=bearer(token))
    assert not_object.status_code == 422 and error_of(not_object) == "invalid_body"
    not_json = client.post(
        "/api/mp/opens", data=b"{tz:", content_type="application/json", headers=bearer(token)
    )
    assert not_json.status_code == 400 and error_of(not_json) == "invalid_json"


def test_an_open_needs_the_users_session(app, client):
    with app.app_context():
        delivery_id, tz = add_campaign_delivery("o_anonymous")
        db.session.commit()
    anonymous = client.post("/api/mp/opens", json={"tz": tz})
    forged = client.post("/api/mp/opens", json={"tz": tz}, headers=bearer("forged"))
    assert anonymous.status_code == forged.status_code == 401
    assert opened_at(app, delivery_id) is None


def test_record_open_writes_nothing_for_a_foreign_or_malformed_token(app):
    with app.app_context():
        mine_id, mine = add_campaign_delivery("o_owner")
        owner = db.session.get(Delivery, mine_id).user_id
        _, theirs = add_campaign_delivery("o_other")
        assert record_open(owner, theirs) is False
        assert record_open(owner, "not a token") is False
        assert record_open(owner, mine) is True
        assert record_open(owner, mine) is True
        db.session.commit()
        assert count_opens(CAMPAIGN) == 1


# --- the delivery page -----------------------------------------------------------------------------


def test_the_delivery_page_shows_when_it_was_opened_in_both_languages(app, client, sandbox, auth):
    token, openid = login(client, sandbox)
    with app.app_context():
        delivery_id, tz = add_campaign_delivery(openid)
        db.session.commit()
    auth.login("viewer")
    unopened = client.get(f"/deliveries/{delivery_id}").get_data(as_text=True)
    assert "未打开" in unopened
    assert client.post("/api/mp/opens", json={"tz": tz}, headers=bearer(token)).status_code == 200
    shown = opened_at(app, delivery_id).astimezone(ZoneInfo(app.config["TIMEZONE"]))
    when = shown.strftime("%Y-%m-%d %H:%M:%S")
    page = client.get(f"/deliveries/{delivery_id}").get_data(as_text=True)
    assert f"打开于 {when}" in page
    assert f"tz={tz}" in page  # the page as sent, token included
    client.post("/language/en", data={"next": "/"})
    english = client.get(f"/deliveries/{delivery_id}").get_data(as_text=True)
    assert f"opened at {when}" in english


def test_a_delivery_without_a_token_shows_no_open_row(app, client, auth):
    with app.app_context():
        user = WechatUser(openid="o_api_send")
        db.session.add(user)
        db.session.flush()
        delivery = Delivery(
            source=DeliverySource.api, user_id=user.id, openid=user.openid, template_id=TEMPLATE, data={}
        )
        db.session.add(delivery)
        db.session.commit()
        delivery_id = delivery.id
    auth.login("viewer")
    page = client.get(f"/deliveries/{delivery_id}").get_data(as_text=True)
    assert "未打开" not in page and "打开于" not in page
