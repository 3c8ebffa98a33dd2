"""Template management (/wxaapi/newtmpl/*) over HTTP."""

from __future__ import annotations

import requests

from .helpers import TIMEOUT, get_templates, token

NEWTMPL = "/wxaapi/newtmpl"


def _get(url: str, path: str, **params: str) -> dict:
    return requests.get(
        url + NEWTMPL + path, params={"access_token": token(url), **params}, timeout=TIMEOUT
    ).json()


def test_categories_titles_and_keywords(sandbox):
    categories = _get(sandbox.url, "/getcategory")["data"]
    assert len(categories) == 4
    ids = ",".join(str(c["id"]) for c in categories)
    titles = _get(sandbox.url, "/getpubtemplatetitles", ids=ids, start="0", limit="30")
    assert titles["count"] == len(titles["data"]) >= 10
    assert {t["type"] for t in titles["data"]} == {2, 3}
    assert {"订单发货提醒", "预约成功通知", "会议提醒", "退款通知", "待办事项提醒"} <= {
        t["title"] for t in titles["data"]
    }
    page = _get(sandbox.url, "/getpubtemplatetitles", ids=ids, start="2", limit="3")
    assert [t["tid"] for t in page["data"]] == [t["tid"] for t in titles["data"][2:5]]
    keywords = _get(sandbox.url, "/getpubtemplatekeywords", tid=str(titles["data"][0]["tid"]))
    assert keywords["count"] == len(keywords["data"]) >= 4
    assert set(keywords["data"][0]) == {"kid", "name", "example", "rule"}
    rules = {
        k["rule"]
        for t in titles["data"]
        for k in _get(sandbox.url, "/getpubtemplatekeywords", tid=str(t["tid"]))["data"]
    }
    assert {"thing", "character_string", "date", "time", "amount", "phrase", "number", "name"} <= rules
    assert {"phone_number", "car_number", "enum_string", "letter", "symbol"} <= rules


def test_title_list_errors(sandbox):
    assert _get(sandbox.url, "/getpubtemplatetitles", start="0", limit="5")["errcode"] == 200018
    assert _get(sandbox.url, "/getpubtemplatetitles", ids='"100"', start="0", limit="5")["errcode"] == 200019
    assert _get(sandbox.url, "/getpubtemplatetitles", ids="100", start="-1", limit="5")["errcode"] == 200016
    assert _get(sandbox.url, "/getpubtemplatetitles", ids="100", start="0", limit="31")["errcode"] == 200017


def test_seeded_private_templates(sandbox):
    templates = get_templates(sandbox.url, token(sandbox.url))
    assert len(templates) >= 5
    assert {t["type"] for t in templates} == {2, 3}
    enum = next(t for t in templates if "keywordEnumValueList" in t)
    assert enum["keywordEnumValueList"][0]["keywordCode"].startswith("enum_string")
    assert "{{" + enum["keywordEnumValueList"][0]["keywordCode"] + "}}" in enum["content"]


def test_addtemplate_by_form_and_json_then_deltemplate(sandbox):
    access_token = token(sandbox.url)
    url = sandbox.url + NEWTMPL
    by_form = requests.post(
        url + "/addtemplate",
        params={"access_token": access_token},
        data={"tid": "2001", "kidList": [3, 1, 2], "sceneDesc": "预约"},
        timeout=TIMEOUT,
    ).json()
    assert by_form["errcode"] == 0
    by_json = requests.post(
        url + "/addtemplate",
        params={"access_token": access_token},
        json={"tid": "3002", "kidList": [1, 6], "sceneDesc": "违章"},
        timeout=TIMEOUT,
    ).json()
    assert by_json["errcode"] == 0
    listed = {t["priTmplId"]: t for t in get_templates(sandbox.url, access_token)}
    form_tmpl = listed[by_form["priTmplId"]]
    assert form_tmpl["title"] == "预约成功通知"
    assert (
        form_tmpl["content"] == "预约项目:{{thing3.DATA}}\n预约人:{{name1.DATA}}\n预约时间:{{time2.DATA}}\n"
    )
    assert form_tmpl["type"] == 2
    json_tmpl = listed[by_json["priTmplId"]]
    assert json_tmpl["type"] == 3
    assert json_tmpl["keywordEnumValueList"] == [
        {"keywordCode": "enum_string6.DATA", "enumValueList": ["待处理", "已处理", "已撤销"]}
    ]
    deleted = requests.post(
        url + "/deltemplate",
        params={"access_token": access_token},
        data={"priTmplId": by_form["priTmplId"]},
        timeout=TIMEOUT,
    ).json()
    assert deleted["errcode"] == 0
    assert by_form["priTmplId"] not in {t["priTmplId"] for t in get_templates(sandbox.url, access_token)}
    again = requests.post(
        url + "/deltemplate",
        params={"access_token": access_token},
        json={"priTmplId": by_form["priTmplId"]},
        timeout=TIMEOUT,
    ).json()
    assert again["errcode"] != 0


def test_addtemplate_errors(make_sandbox):
    sb = make_sandbox(PRIVATE_TEMPLATE_LIMIT=7)
    access_token = token(sb.url)

    def add(**body: object) -> int:
        return requests.post(
            sb.url + NEWTMPL + "/addtemplate",
            params={"access_token": access_token},
            json=body,
            timeout=TIMEOUT,
        ).json()["errcode"]

    assert add(tid="999", kidList=[1, 2]) == 200014
    assert add(tid="1001", kidList=[1]) == 200020
    assert add(tid="1001", kidList=[1, 2, 3, 4, 5, 6]) == 200020
    assert add(tid="1001", kidList=[1, 99]) == 200020
    assert add(tid="1001", kidList=[1, 1]) == 200020
    assert add(tid="1001", kidList=[1, 2], sceneDesc="一" * 16) == 200021
    assert add(tid="1001", kidList=[1, 2]) == 0  # the 7th private template
    assert add(tid="1001", kidList=[1, 3]) == 200012
