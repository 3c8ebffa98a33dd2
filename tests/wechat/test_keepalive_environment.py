"""The bulk pool takes proxy and trust from the environment exactly as the synchronous client does.

The synchronous client is a ``requests.Session`` (trust_env): it reads ``*_PROXY``/``NO_PROXY`` through
urllib and requests' own rules, and ``REQUESTS_CA_BUNDLE``. ``keepalive.proxy_for`` reads the same
variables from a mapping; the table below runs both on the same environments, so the two send paths
cannot part ways. A proxy or bundle the pool cannot use refuses the app at startup.
"""

from __future__ import annotations

import pytest
import requests
from requests.utils import select_proxy

from dashboard import create_app
from dashboard.config import ConfigError, load_settings
from dashboard.wechat.keepalive import proxy_for

from .local_tls import local_ca

WECHAT = "https://api.weixin.qq.com"
SANDBOX = "http://127.0.0.1:5010"
A, B = "http://proxy-a.internal:3128", "http://proxy-b.internal:3128"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "request_method")

CASES = [
    (WECHAT, {}),
    (WECHAT, {"HTTPS_PROXY": A}),
    (SANDBOX, {"HTTPS_PROXY": A}),
    (SANDBOX, {"HTTP_PROXY": A, "NO_PROXY": "localhost"}),
    (WECHAT, {"https_proxy": A, "HTTPS_PROXY": B}),
    (WECHAT, {"https_proxy": "", "HTTPS_PROXY": B}),
    (WECHAT, {"ALL_PROXY": A}),
    (WECHAT, {"all_proxy": A, "HTTPS_PROXY": B}),
    (WECHAT, {"HTTPS_PROXY": A, "NO_PROXY": "api.weixin.qq.com"}),
    (WECHAT, {"HTTPS_PROXY": A, "NO_PROXY": "API.WEIXIN.QQ.COM"}),
    (WECHAT, {"HTTPS_PROXY": A, "NO_PROXY": "example.com, .qq.com"}),
    (WECHAT, {"HTTPS_PROXY": A, "NO_PROXY": "qq.com"}),
    (WECHAT, {"HTTPS_PROXY": A, "NO_PROXY": "weixin.qq.com.cn,eixin.qq.com"}),
    (WECHAT, {"HTTPS_PROXY": A, "no_proxy": "*"}),
    ("https://api.weixin.qq.com:8443", {"HTTPS_PROXY": A, "NO_PROXY": "api.weixin.qq.com:8443"}),
    ("https://10.1.2.3", {"HTTPS_PROXY": A, "NO_PROXY": "10.0.0.0/8"}),
    ("https://10.1.2.3", {"HTTPS_PROXY": A, "NO_PROXY": "10.1.2.30"}),
    (SANDBOX, {"HTTPS_PROXY": A, "HTTP_PROXY": B, "NO_PROXY": "127.0.0.1"}),
    (SANDBOX, {"HTTP_PROXY": A, "REQUEST_METHOD": "GET"}),  # CGI: HTTP_PROXY may be a client's header
]


def requests_choice(url: str) -> str | None:
    """The proxy a ``requests.Session`` with the process environment would use for ``url``."""
    with requests.Session() as session:
        settings = session.merge_environment_settings(url, {}, None, None, None)
    return select_proxy(url, settings["proxies"])


@pytest.mark.parametrize(("url", "env"), CASES, ids=[f"{url} {env}" for url, env in CASES])
def test_the_pool_chooses_the_proxy_requests_chooses(monkeypatch, url, env):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    chosen = proxy_for(url, env)
    assert (chosen[1] if chosen else None) == requests_choice(url)


def test_the_choice_names_the_variable_it_came_from():
    assert proxy_for(WECHAT, {"all_proxy": A}) == ("all_proxy", A)
    assert proxy_for(WECHAT, {"https_proxy": A, "HTTPS_PROXY": B}) == ("https_proxy", A)


def production(**env: str) -> dict[str, str]:
    return {"SECRET_KEY": "k" * 32, "WECHAT_APPID": "wx0123456789abcdef", "WECHAT_SECRET": "s", **env}


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        (production(HTTPS_PROXY="socks5://ops:s3cret@10.0.0.1:1080"), "HTTPS_PROXY"),
        (production(all_proxy="https://ops:s3cret@proxy.internal:3128"), "all_proxy"),
        # The sandbox (embedded, no credentials) is http://127.0.0.1: HTTP_PROXY and ALL_PROXY apply.
        ({"TONGZHI_ENV": "embedded", "ALL_PROXY": "socks5h://ops:s3cret@10.0.0.1:1080"}, "ALL_PROXY"),
    ],
)
def test_a_proxy_the_bulk_sender_cannot_use_refuses_the_settings(tmp_path, env, variable):
    with pytest.raises(ConfigError, match=f"{variable} names a .*http:// proxies only") as caught:
        load_settings(env, tmp_path)
    assert "s3cret" not in str(caught.value)


def test_a_proxy_no_proxy_bypasses_or_an_http_proxy_is_accepted(tmp_path):
    bypassed = production(HTTPS_PROXY="socks5://10.0.0.1:1080", NO_PROXY=".qq.com")
    assert load_settings(bypassed, tmp_path)["WECHAT_API_BASE"] == WECHAT
    usable = production(HTTPS_PROXY="http://ops:s3cret@proxy.internal:3128")
    assert load_settings(usable, tmp_path)["WECHAT_API_BASE"] == WECHAT


def test_a_ca_bundle_that_cannot_be_read_refuses_the_settings_and_a_good_one_is_accepted(tmp_path):
    with pytest.raises(ConfigError, match="REQUESTS_CA_BUNDLE names no readable CA bundle"):
        load_settings(production(REQUESTS_CA_BUNDLE=str(tmp_path / "missing.pem")), tmp_path)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigError, match="CURL_CA_BUNDLE names no readable CA bundle"):
        load_settings(production(CURL_CA_BUNDLE=str(junk)), tmp_path)
    ca = local_ca(tmp_path / "ca")
    assert load_settings(production(REQUESTS_CA_BUNDLE=str(ca.bundle)), tmp_path)["WECHAT_API_BASE"] == WECHAT


def test_the_app_refuses_to_start_with_such_a_proxy(monkeypatch, tmp_path):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in production(HTTPS_PROXY="socks5://10.0.0.1:1080").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ConfigError, match="HTTPS_PROXY"):
        create_app()
