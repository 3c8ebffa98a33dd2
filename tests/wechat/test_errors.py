"""The errcode → category table is the contract with the sending code (docs/wechat-rules.md, "Error codes")."""

from __future__ import annotations

import pytest

from dashboard.wechat.errors import (
    CATEGORY_BY_CODE,
    ErrorCategory,
    WeChatError,
    WeChatNotConfigured,
    WeChatUnknownOutcome,
    category_for,
    redact_query,
)

C = ErrorCategory

EXPECTED = [
    (40001, C.TOKEN),
    (40014, C.TOKEN),
    (42001, C.TOKEN),
    (-1, C.TRANSIENT),
    (43108, C.TRANSIENT),
    (45011, C.TRANSIENT),
    (45009, C.QUOTA),
    (43101, C.NO_GRANT),
    (40003, C.RECIPIENT),
    (43004, C.RECIPIENT),  # the Official Account's: the user does not follow it
    (40037, C.TEMPLATE),
    (43107, C.TEMPLATE),
    (47003, C.CONTENT),
    (45168, C.CONTENT),
    (41030, C.PAGE),
    (40165, C.PAGE),  # the Official Account's: miniprogram.pagepath not published
    (40002, C.CONFIG),
    (40013, C.CONFIG),
    (40125, C.CONFIG),
    (40164, C.CONFIG),
    (40243, C.CONFIG),
    (41002, C.CONFIG),
    (41004, C.CONFIG),
    (50004, C.CONFIG),
    (50007, C.CONFIG),
    (89503, C.CONFIG),
    (89506, C.CONFIG),
    (89507, C.CONFIG),
    (48001, C.CONFIG),  # the Official Account may not call the API (not verified or not linked)
]


@pytest.mark.parametrize(("errcode", "category"), EXPECTED)
def test_each_code_maps_to_its_category(errcode, category):
    assert category_for(errcode) is category
    assert WeChatError(errcode, "whatever").category is category


def test_the_table_holds_nothing_untested():
    assert dict(EXPECTED) == CATEGORY_BY_CODE


@pytest.mark.parametrize("errcode", [40029, 41001, 45103, 200014, 76021, 0, None])
def test_codes_not_in_the_table_are_other(errcode):
    assert category_for(errcode) is C.OTHER


@pytest.mark.parametrize(
    ("category", "retryable", "permanent"),
    [
        (C.TOKEN, True, False),
        (C.TRANSIENT, True, False),
        (C.QUOTA, True, False),
        (C.NO_GRANT, False, True),
        (C.RECIPIENT, False, True),
        (C.TEMPLATE, False, True),
        (C.CONTENT, False, True),
        (C.PAGE, False, True),
        (C.CONFIG, False, True),
        # May have been delivered: neither retry blindly nor give up; reconcile.
        (C.UNKNOWN, False, False),
        (C.OTHER, False, False),
    ],
)
def test_retryable_and_permanent_follow_the_category(category, retryable, permanent):
    error = WeChatError(None, "x", category)
    assert (error.retryable, error.permanent) == (retryable, permanent)


def test_it_parses_the_rid_from_errmsg():
    error = WeChatError(43101, "user refuse to accept the msg rid: 6651c4a0-1c6b2d3e-4f5a6b7c")
    assert error.rid == "6651c4a0-1c6b2d3e-4f5a6b7c"
    assert WeChatError(43101, "user refuse to accept the msg").rid is None


def test_an_unknown_outcome_is_its_own_subclass_and_category():
    error = WeChatUnknownOutcome("ReadTimeout on POST /cgi-bin/message/subscribe/send")
    assert isinstance(error, WeChatError)
    assert error.category is C.UNKNOWN
    assert error.errcode is None


def test_not_configured_is_a_config_error():
    assert WeChatNotConfigured().category is C.CONFIG


def test_messages_never_carry_a_token_or_secret_from_a_url():
    text = (
        "HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: "
        "/cgi-bin/message/subscribe/send?access_token=TOKEN-VALUE-123&x=1 "
        "/sns/jscode2session?appid=wx1&secret=APP-SECRET-456&js_code=CODE-789&grant_type=authorization_code"
    )
    error = WeChatError(None, text, C.TRANSIENT)
    for secret in ("TOKEN-VALUE-123", "APP-SECRET-456", "CODE-789"):
        assert secret not in str(error)
        assert secret not in repr(error)
    assert "access_token=***&x=1" in redact_query(text)


def test_str_names_the_code_and_category():
    assert str(WeChatError(43101, "no")) == "WeChat errcode 43101 (no_grant): no"
    assert str(WeChatError(None, "refused", C.TRANSIENT)) == "WeChat no errcode (transient): refused"
