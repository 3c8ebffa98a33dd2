"""Walk the URL map: every route declares who may use it, and every write is guarded.

New routes are covered automatically; a route that needs no login must be declared public.
"""

import re

import pytest
from werkzeug.routing.converters import NumberConverter

from dashboard.access import declared_access
from dashboard.models import Role

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# JSON APIs authenticate with tokens or signatures instead of a session, so CSRF does not apply.
TOKEN_AUTHENTICATED = ("/api/", "/wechat/")
CSRF_ON = [{"WTF_CSRF_ENABLED": True}]


def sample_url(rule) -> str:
    url = rule.rule
    for argument in rule.arguments:
        # An argument only the rule's defaults give (``/campaigns/preview``) has no converter.
        number = isinstance(rule._converters.get(argument), NumberConverter)
        value = "1" if number else "zh"
        url = re.sub(rf"<(?:[^:>]+:)?{argument}>", value, url)
    return url


def write_routes(app, public: bool | None = None):
    for rule in app.url_map.iter_rules():
        methods = (rule.methods or set()) & WRITE_METHODS
        if not methods or rule.rule.startswith(TOKEN_AUTHENTICATED):
            continue
        is_public = declared_access(app, rule.endpoint) == "public"
        if public is None or is_public == public:
            for method in sorted(methods):
                yield method, sample_url(rule), rule.endpoint


def csrf_token(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_every_endpoint_declares_its_access(app):
    undeclared = [r.endpoint for r in app.url_map.iter_rules() if declared_access(app, r.endpoint) is None]
    assert undeclared == []


def test_there_are_write_routes_to_check(app):
    assert len(list(write_routes(app))) >= 5


@pytest.mark.parametrize("config_overrides", CSRF_ON, indirect=True)
def test_every_write_route_rejects_a_missing_csrf_token(app, client, auth):
    auth.login("admin")
    for method, url, endpoint in write_routes(app):
        response = client.open(url, method=method, data={"anything": "1"})
        assert response.status_code == 400, f"{endpoint} {method} {url} accepted a request without CSRF token"
        assert "表单已过期" in response.get_data(as_text=True)


@pytest.mark.parametrize("config_overrides", CSRF_ON, indirect=True)
def test_every_protected_write_route_rejects_an_unauthenticated_request(app, client, personas):
    token = csrf_token(client)
    for method, url, endpoint in write_routes(app, public=False):
        response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 302, f"{endpoint} {method} {url} did not refuse an anonymous request"
        assert "/login" in response.headers["Location"]
        htmx = client.open(url, method=method, headers={"X-CSRFToken": token, "HX-Request": "true"})
        assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/login"


@pytest.mark.parametrize("config_overrides", CSRF_ON, indirect=True)
def test_a_valid_csrf_token_in_the_htmx_header_is_accepted(app, client, auth):
    token = csrf_token(client)
    auth.login("admin")
    response = client.post("/language/en", headers={"X-CSRFToken": token}, data={"next": "/"})
    assert response.status_code == 302


def test_a_viewer_gets_403_on_every_write_route(app, client, auth):
    auth.login("viewer")
    for method, url, endpoint in write_routes(app, public=False):
        if declared_access(app, endpoint) == Role.viewer:
            continue  # the viewer's own actions: log out, change own password
        response = client.open(url, method=method, data={})
        assert response.status_code == 403, f"viewer reached {endpoint} {method} {url}"


def test_a_marketer_cannot_reach_admin_pages(app, client, auth):
    auth.login("marketer")
    for url in ("/settings/", "/settings/operators/", "/settings/audit/"):
        assert client.get(url).status_code == 403
    assert "你的角色无权执行此操作" in client.get("/settings/").get_data(as_text=True)


def test_error_pages_come_as_fragments_for_htmx(client, auth):
    auth.login("viewer")
    page = client.get("/settings/")
    fragment = client.get("/settings/", headers={"HX-Request": "true"})
    assert page.status_code == fragment.status_code == 403
    assert "<html" in page.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True) and "error-box" in fragment.get_data(as_text=True)
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "此地址没有内容" in missing.get_data(as_text=True)


def test_a_crash_gives_the_500_page_and_keeps_no_partial_write(app, client, auth):
    from dashboard.access import requires
    from dashboard.extensions import db
    from dashboard.models import Operator

    @requires(Role.admin)
    def explode():
        db.session.get(Operator, 1).name = "half-written"
        raise RuntimeError("boom")

    app.add_url_rule("/explode", "explode", explode)
    auth.login("admin")
    response = client.get("/explode")
    assert response.status_code == 500
    assert "服务器出错" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Operator, 1).name != "half-written"
