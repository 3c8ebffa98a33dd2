"""The UI speaks Simplified Chinese by default and English on request, remembered per operator."""

import subprocess
import sys
from pathlib import Path

from dashboard.extensions import db
from dashboard.models import Operator

ROOT = Path(__file__).resolve().parent.parent


def test_chinese_is_the_default(client, auth):
    auth.login("admin")
    page = client.get("/").get_data(as_text=True)
    assert 'lang="zh-CN"' in page
    for word in ("首页", "模板", "用户", "分群", "活动", "投递", "设置", "操作员"):
        assert word in page


def test_english_is_one_click_away_and_remembered_per_operator(app, client, auth, personas):
    auth.login("admin")
    assert client.post("/language/en", data={"next": "/"}).headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert 'lang="en"' in page
    for word in (
        "Home",
        "Templates",
        "Users",
        "Segments",
        "Campaigns",
        "Deliveries",
        "Settings",
        "Operators",
    ):
        assert word in page
    with app.app_context():
        assert db.session.get(Operator, personas["admin"].id).locale == "en"
    # A new session (another browser) gets the operator's choice back.
    other = app.test_client()
    with other.session_transaction() as session:
        session["_user_id"] = str(personas["admin"].id)
    assert 'lang="en"' in other.get("/").get_data(as_text=True)


def test_unknown_languages_are_404(client):
    assert client.post("/language/fr").status_code == 404


def test_every_ui_string_has_a_chinese_translation():
    result = subprocess.run(
        [sys.executable, "scripts/build_translations.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_a_persons_name_and_a_things_name_read_differently_in_chinese(client, auth):
    """姓名 is a person's name (an operator's); an API key's, a segment's or a campaign's is 名称."""
    auth.login("admin")
    assert "姓名" in client.get("/settings/operators/").get_data(as_text=True)
    for page in ("/settings/api-keys/", "/segments/", "/campaigns/"):
        html = client.get(page, follow_redirects=True).get_data(as_text=True)
        assert "名称" in html, page
        assert "姓名" not in html, page


def test_a_placeholder_in_angle_brackets_reaches_the_page_as_text_in_both_languages(client, auth):
    """``<key>`` in the API keys page's sentence is escaped (it is a parameter), not sent as a tag."""
    auth.login("admin")
    assert "Authorization: Bearer &lt;密钥&gt;" in client.get("/settings/api-keys/").get_data(as_text=True)
    client.post("/language/en", data={"next": "/"})
    assert "Authorization: Bearer &lt;key&gt;" in client.get("/settings/api-keys/").get_data(as_text=True)
