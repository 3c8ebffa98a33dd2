"""WeChatClient over real HTTP against the sandbox: sends, error categories, token retry, transport faults."""

from __future__ import annotations

import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from dashboard.sandbox import create_sandbox_app
from dashboard.wechat import get_client
from dashboard.wechat.client import WeChatClient
from dashboard.wechat.errors import ErrorCategory, WeChatError, WeChatUnknownOutcome
from tests.sandbox_api import example_data


@pytest.fixture
def template(sandbox):
    return sandbox.templates(type_=2)[0]


@pytest.fixture
def openid(sandbox):
    return sandbox.openids()[0]


def send(wechat, openid, template, **overrides):
    data = overrides.pop("data", example_data(template))
    return wechat.send_subscribe_message(openid, template["priTmplId"], data, **overrides)


def test_a_granted_send_returns_the_msgid(wechat, sandbox, openid, template):
    sandbox.grant(openid, template["priTmplId"])
    msgid = send(wechat, openid, template, page="pages/order/detail?id=42")
    assert isinstance(msgid, str) and msgid.isdigit()
    [message] = sandbox.messages()
    assert str(message["msgid"]) == msgid
    assert message["errcode"] == 0
    # {key: value} goes out as {key: {"value": value}}, with state and lang always present.
    assert message["data"] == {key: {"value": value} for key, value in example_data(template).items()}
    assert (message["miniprogram_state"], message["lang"]) == ("formal", "zh_CN")
    assert message["page"] == "pages/order/detail?id=42"


@pytest.mark.parametrize(
    ("case", "errcode", "category"),
    [
        ("no grant", 43101, ErrorCategory.NO_GRANT),
        ("unknown openid", 40003, ErrorCategory.RECIPIENT),
        ("unknown template", 40037, ErrorCategory.TEMPLATE),
        ("unpublished page", 41030, ErrorCategory.PAGE),
        ("value too long", 47003, ErrorCategory.CONTENT),
    ],
)
def test_each_rejection_surfaces_with_its_category(
    wechat, sandbox, openid, template, case, errcode, category
):
    if case != "no grant":
        sandbox.grant(openid, template["priTmplId"])
    args = {"touser": openid, "template_id": template["priTmplId"], "data": example_data(template)}
    if case == "unknown openid":
        args["touser"] = "o-nobody"
    elif case == "unknown template":
        args["template_id"] = "no-such-template"
    elif case == "unpublished page":
        args["page"] = "pages/not/published"
    elif case == "value too long":
        key = next(k for k in args["data"] if k.startswith("thing"))
        args["data"] = {**args["data"], key: "长" * 21}
    with pytest.raises(WeChatError) as caught:
        wechat.send_subscribe_message(**args)
    error = caught.value
    assert (error.errcode, error.category) == (errcode, category)
    assert error.permanent and not error.retryable
    assert error.rid, "WeChat's request id is kept for support tickets"
    if errcode == 47003:
        assert f"data.{key}.value" in error.errmsg


def test_concurrent_sends_to_one_user_get_43108_as_transient(wechat, sandbox, openid, template):
    sandbox.grant(openid, template["priTmplId"], times=2)
    wechat.tokens.get_token()
    sandbox.faults(LATENCY_MS=400)
    barrier = threading.Barrier(2)

    def attempt():
        barrier.wait()
        try:
            return send(wechat, openid, template)
        except WeChatError as error:
            return error

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: attempt(), range(2)))
    errors = [r for r in results if isinstance(r, WeChatError)]
    assert len(errors) == 1, results
    assert (errors[0].errcode, errors[0].category) == (43108, ErrorCategory.TRANSIENT)
    assert errors[0].retryable


def test_system_busy_is_transient(wechat, sandbox, openid, template):
    sandbox.grant(openid, template["priTmplId"])
    sandbox.faults(ERROR_RATE=1.0)
    with pytest.raises(WeChatError) as caught:
        send(wechat, openid, template)
    assert (caught.value.errcode, caught.value.category) == (-1, ErrorCategory.TRANSIENT)


def test_the_daily_quota_is_its_own_category(wechat, sandbox, openid, template):
    sandbox.grant(openid, template["priTmplId"], times=2)
    sandbox.faults(QUOTA_AFTER=1)
    send(wechat, openid, template)
    with pytest.raises(WeChatError) as caught:
        send(wechat, openid, template)
    assert (caught.value.errcode, caught.value.category) == (45009, ErrorCategory.QUOTA)


def test_a_connection_dropped_after_the_send_is_an_unknown_outcome(wechat, sandbox, openid, template):
    sandbox.grant(openid, template["priTmplId"])
    sandbox.faults(DROP_AFTER_READ_RATE=1.0)
    with pytest.raises(WeChatUnknownOutcome) as caught:
        send(wechat, openid, template)
    assert caught.value.category is ErrorCategory.UNKNOWN
    assert not caught.value.retryable and not caught.value.permanent
    # It was in fact delivered: exactly why nothing may retry it blindly.
    [message] = sandbox.messages()
    assert message["dropped"] and message["errcode"] == 0
    assert len(sandbox.messages()) == 1, "the transport did not resend the POST"


def test_a_read_timeout_on_send_is_unknown_but_on_a_read_is_transient(app, wechat, sandbox, openid, template):
    sandbox.grant(openid, template["priTmplId"])
    token = wechat.tokens.get_token()
    sandbox.faults(LATENCY_MS=800)
    with WeChatClient(
        sandbox.appid, sandbox.secret, sandbox.url, read_timeout=0.2, tokens=wechat.tokens
    ) as slow:
        with pytest.raises(WeChatUnknownOutcome) as caught:
            send(slow, openid, template)
        assert "ReadTimeout" in caught.value.errmsg
        assert token not in str(caught.value) and sandbox.secret not in str(caught.value)
        with pytest.raises(WeChatError) as caught:
            slow.get_templates()
        assert caught.value.category is ErrorCategory.TRANSIENT


def test_a_refused_connection_is_transient(wechat, sandbox, openid, template):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{closed_port}"
    with WeChatClient(sandbox.appid, sandbox.secret, base, connect_timeout=1, tokens=wechat.tokens) as client:
        with pytest.raises(WeChatError) as caught:
            client.stable_token()
        assert caught.value.category is ErrorCategory.TRANSIENT
        assert not isinstance(caught.value, WeChatUnknownOutcome)
        assert sandbox.secret not in str(caught.value)


def test_an_expired_token_is_refreshed_and_the_call_retried_once(wechat, sandbox, openid, template):
    sandbox.grant(openid, template["priTmplId"])
    first = wechat.tokens.get_token()
    sandbox.expire_tokens()
    send(wechat, openid, template)
    assert [m["errcode"] for m in sandbox.messages()] == [42001, 0]
    assert wechat.tokens.get_token() != first
    assert sandbox.stable_calls() == 2


def test_a_token_rotated_elsewhere_is_replaced_and_the_call_retried(wechat, sandbox, openid, template):
    sandbox.grant(openid, template["priTmplId"])
    wechat.tokens.get_token()
    sandbox.force_rotate()
    send(wechat, openid, template)
    assert [m["errcode"] for m in sandbox.messages()] == [40001, 0]
    # Ours (1), the rotation (1), and our normal-mode refetch (1): no force refresh of our own.
    assert sandbox.stable_calls() == 3


class EndlessBadTokens:
    """A token source that always has a new token, each of them rejected by WeChat."""

    def __init__(self):
        self.handed_out = 0
        self.invalidated = []

    def get_token(self):
        self.handed_out += 1
        return f"not-a-token-{self.handed_out}"

    def invalidate(self, failed_token):
        self.invalidated.append(failed_token)


def test_a_token_error_is_retried_only_once(sandbox, openid, template):
    sandbox.grant(openid, template["priTmplId"])
    tokens = EndlessBadTokens()
    with WeChatClient(sandbox.appid, sandbox.secret, sandbox.url, tokens=tokens) as client:
        with pytest.raises(WeChatError) as caught:
            send(client, openid, template)
    assert (caught.value.errcode, caught.value.category) == (40014, ErrorCategory.TOKEN)
    assert tokens.invalidated == ["not-a-token-1"]
    assert [m["errcode"] for m in sandbox.messages()] == [40014, 40014]


def test_template_management_round_trip(wechat, sandbox):
    categories = wechat.get_category()
    assert {"id", "name"} <= set(categories[0])
    titles = wechat.get_pub_template_titles([c["id"] for c in categories], start=0, limit=30)
    assert titles["count"] >= len(titles["data"]) > 0
    tid = titles["data"][0]["tid"]
    keywords = wechat.get_pub_template_keywords(tid)
    kids = [k["kid"] for k in keywords[:3]]
    before = {t["priTmplId"] for t in wechat.get_templates()}
    pri_tmpl_id = wechat.add_template(tid, kids, "测试场景")
    assert pri_tmpl_id and pri_tmpl_id not in before
    assert pri_tmpl_id in {t["priTmplId"] for t in wechat.get_templates()}
    wechat.delete_template(pri_tmpl_id)
    assert {t["priTmplId"] for t in wechat.get_templates()} == before


def test_api_quota_reports_the_send_counter(wechat, sandbox, openid, template):
    sandbox.grant(openid, template["priTmplId"])
    send(wechat, openid, template)
    quota = wechat.get_api_quota("/cgi-bin/message/subscribe/send")["quota"]
    assert quota["used"] == 1 and quota["remain"] == quota["daily_limit"] - 1
    with pytest.raises(WeChatError) as caught:
        wechat.get_api_quota("/sns/jscode2session")
    assert caught.value.errcode == 76022


def test_code2session_exchanges_a_login_code_once(wechat, sandbox, openid):
    code = sandbox.post(f"/users/{openid}/login-code")["code"]
    session = wechat.code2session(code)
    assert session.openid == openid and session.session_key
    assert session.session_key not in repr(session)
    with pytest.raises(WeChatError) as caught:
        wechat.code2session(code)
    assert caught.value.errcode == 40029
    assert code not in str(caught.value)


def test_a_wrong_secret_is_a_config_error_without_the_secret_in_it(sandbox):
    with WeChatClient(sandbox.appid, "wrong-secret-value", sandbox.url) as client:
        with pytest.raises(WeChatError) as caught:
            client.stable_token()
    assert (caught.value.errcode, caught.value.category) == (40125, ErrorCategory.CONFIG)
    assert "wrong-secret-value" not in str(caught.value)


def test_logs_never_show_the_token_or_the_secret(wechat, sandbox, openid, template, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.grant(openid, template["priTmplId"], times=2)
    token = wechat.tokens.get_token()
    sandbox.expire_tokens()
    send(wechat, openid, template)
    sandbox.faults(DROP_AFTER_READ_RATE=1.0)
    with pytest.raises(WeChatUnknownOutcome):
        send(wechat, openid, template)
    fresh = wechat.tokens.get_token()
    assert "WeChat" in caplog.text
    for secret in (token, fresh, sandbox.secret):
        assert secret not in caplog.text


def test_fetched_tokens_are_registered_with_the_log_redactor(app, wechat):
    token = wechat.tokens.get_token()
    assert app.extensions["secret_redactor"].redact(f"token {token}") == "token ***"


def test_get_client_builds_one_client_per_app(app, wechat):
    with app.app_context():
        assert get_client() is wechat
    assert get_client(app) is wechat


class RejectFormBodies:
    """WSGI middleware in front of a sandbox: answers 47001 to form-encoded newtmpl POSTs, as an account
    that only reads JSON would (the encoding is disputed: docs/wechat-rules.md, "Templates")."""

    def __init__(self, app):
        self.app = app
        self.form_posts = 0

    def __call__(self, environ, start_response):
        request = Request(environ)
        if (
            request.path.startswith("/wxaapi/newtmpl/")
            and request.mimetype == "application/x-www-form-urlencoded"
        ):
            self.form_posts += 1
            response = Response(
                '{"errcode": 47001, "errmsg": "data format error rid: 1-2-3"}', mimetype="application/json"
            )
            return response(environ, start_response)
        return self.app(environ, start_response)


def test_add_template_falls_back_to_json_when_form_encoding_is_rejected():
    middleware = RejectFormBodies(create_sandbox_app({"APPID": "wxjsononly", "SECRET": "json-only-secret"}))
    server = make_server("127.0.0.1", 0, middleware, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with WeChatClient("wxjsononly", "json-only-secret", base) as client:
            client.tokens = StaticTokens(client.stable_token().access_token)
            tid = client.get_pub_template_titles("100")["data"][0]["tid"]
            kids = [k["kid"] for k in client.get_pub_template_keywords(tid)[:2]]
            first = client.add_template(tid, kids, "json")
            second = client.add_template(tid, kids, "json again")
            client.delete_template(first)
            client.delete_template(second)
            remaining = {t["priTmplId"] for t in client.get_templates()}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert first and second and first not in remaining and second not in remaining
    # Form was tried once; after that the client remembered that JSON works.
    assert middleware.form_posts == 1


class StaticTokens:
    def __init__(self, token):
        self.token = token

    def get_token(self):
        return self.token

    def invalidate(self, failed_token):
        pass
