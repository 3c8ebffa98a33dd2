"""Every GET page of the console, rendered in Chinese, speaks the operator's language.

One of each thing is seeded (a template with users granted to it, a delivery in every state with its
reason, errcode, error class and attempt, a segment, a campaign in each state, a disabled and a locked
operator, a live and a revoked API key, one audit event of every action with the details the code records),
then every GET route of the URL map (the JSON APIs excepted) is rendered as the admin, as a full page and as
its htmx fragment, plus each campaign and delivery, each delivery-state filter, the lists two rows a page
so the pager shows, and the login page logged out. Two checks:

(a) **No untranslated message id.** Flask-Babel's translations object is wrapped for the test: every
    ``_()``, ``ngettext()``, ``lazy_gettext()`` and ``{{ _() }}`` lookup that misses the Chinese catalog
    is recorded with the page that asked. (``build_translations.py --check`` sees literal msgids only; this
    also catches ``_(variable)`` with a value nobody translated.)

(b) **No raw code where a label belongs.** The visible text is read in blocks (a table cell, a list item,
    a paragraph...): tags and attributes (``title``, ``value``...) removed. In it, these may not stand
    alone: the product's state, reason, error-class, role, kind and source words; Python's and JSON's
    ``True``/``False``/``None``/``null``; ``set``/``not set``; WeChat keyword keys (``thing1``);
    lower_snake_case and dotted identifiers (``no_grant``, ``auth.login``); and a WeChat errcode.

What is allowed, and why:
- A code beside a Chinese word, with only spaces, brackets, colons or "·" between, in the same block:
  ``已发送 sent``, ``会议主题 thing1``, ``read_all：读取……``. The glossary shows the word beside its Chinese
  name on purpose (``dashboard/labels.py``), so an operator can match the page with what the API returns.
- An errcode in a block that also has Chinese words: "43101 用户无订阅授权" explains itself; a bare
  "43101" in its own cell does not.
- Text inside ``<code>``, ``<pre>``, ``<kbd>``, ``<samp>``: a code shown as code on purpose (an id, a
  filter's JSON syntax, a setting's name). Except a keyword key alone in ``<code>``: the template list
  showed ``thing1`` with its name only in a tooltip, so keys are checked even there.
- ``<textarea>`` text (what the operator typed) and ``{{user.nickname}}`` placeholders (syntax they type).
- Seeded names, values and errmsgs are Chinese, so they never look like codes; openids, emails, URLs and
  paths do not match (a code must not touch a letter, digit, ``_ - . / @ #`` or ``:``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta
from html.parser import HTMLParser

import flask_babel
import pytest
import sqlalchemy as sa

from dashboard.apikeys.services import create_key, revoke_key
from dashboard.audience.attributes import declare
from dashboard.audit.services import ACTION_LABELS, record
from dashboard.extensions import db
from dashboard.models import Delivery, DeliverySource, DeliveryState, Operator, Role, WechatUser
from dashboard.models.audit import AuditEvent
from dashboard.models.campaign import Campaign, CampaignState
from dashboard.models.catalog import MessageTemplate
from dashboard.models.delivery import DeliveryAttempt
from dashboard.models.types import utcnow
from tests.api.live import mp_overrides
from tests.campaigns.helpers import draft, granted_users, segment_of_grantees
from tests.sandbox_api import example_data

# Findings on these paths belong to the deliveries rewrite in progress (see the docstring).

# A delivery in every state, with the reason, errcode and error class the engine would give it.
DELIVERIES = [
    (DeliveryState.pending, "", None, ""),
    (DeliveryState.sending, "", None, ""),
    (DeliveryState.sent, "", None, ""),
    (DeliveryState.failed, "no_grant", 43101, "no_grant"),
    (DeliveryState.failed, "gave_up", 45011, "transient"),
    (DeliveryState.failed, "quota", 45009, "quota"),
    (DeliveryState.skipped, "invalid_value", None, ""),
    (DeliveryState.skipped, "budget", None, ""),
    (DeliveryState.unknown, "lease_expired", None, "unknown"),
    (DeliveryState.retry_wait, "", -1, "transient"),
]

# WeChat keyword keys: a type and a number (thing1, character_string12).
KEYWORD_KEY = r"(?:thing|number|letter|symbol|character_string|time|date|amount|phone_number|car_number|name|phrase|enum)\d{1,3}"
# The words of the product's codes: states, reasons, error classes, sources, roles, kinds, values.
CODE_WORDS = {
    *(state.value for state in DeliveryState),
    *(state.value for state in CampaignState),
    *(role.value for role in Role),
    *(source.value for source in DeliverySource),
    "accept", "reject", "ban", "filter", "acceptWithAudio", "acceptWithAlert",
    "no_grant", "invalid_value", "budget", "lease_expired", "gave_up", "quota", "sent_event",
    "transient", "token", "recipient", "template", "content", "page", "config", "other",
    "one_time", "long_term", "formal", "trial", "developer", "client", "push", "sync", "manual",
    "stable", "env", "settings", "cache", "database",
    "True", "False", "true", "false", "None", "null", "set", "not set", "unset",
}  # fmt: skip
CODE_RE = re.compile(
    r"(?<![\w@./#:-])(?:"
    + "|".join(sorted((re.escape(w) for w in CODE_WORDS), key=len, reverse=True))
    + r"|[a-z]+(?:_[a-z]+)+"  # lower_snake_case identifiers
    + rf"|{KEYWORD_KEY}"
    + r"|[a-z_]+\.[a-z_]+"  # dotted codes: auth.login_failed
    + r")(?![\w@/-]|\.\w)"
)
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
BESIDE = " \t\u3000(（)）[]【】「」:：·"

# Code shown as code on purpose, and what the operator typed (a textarea's text is its value).
SKIPPED_TAGS = {"script", "style", "code", "pre", "kbd", "samp", "template", "svg", "textarea"}
# A keyword key is checked even inside <code>: the template list once showed only ``thing1``.
KEYWORD_IN_CODE = re.compile(rf"<code[^>]*>\s*({KEYWORD_KEY})\s*</code>")
PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")  # {{user.nickname}}: syntax the operator types
BLOCK_TAGS = {
    "p", "div", "td", "th", "tr", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "option", "label",
    "button", "summary", "section", "article", "header", "footer", "nav", "main", "form", "table",
    "ul", "ol", "dl", "fieldset", "legend", "caption", "figcaption", "br", "hr", "title", "select",
    "textarea", "details", "aside", "blockquote", "pre",
}  # fmt: skip


class VisibleText(HTMLParser):
    """The text an operator reads, as blocks (one per table cell, list item, paragraph...)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = [""]
        self.skipping: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in SKIPPED_TAGS:
            self.skipping.append(tag)
        if tag in BLOCK_TAGS:
            self.blocks.append("")

    def handle_startendtag(self, tag, attrs):
        if tag in BLOCK_TAGS:
            self.blocks.append("")

    def handle_endtag(self, tag):
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()
        if tag in BLOCK_TAGS:
            self.blocks.append("")

    def handle_data(self, data):
        if not self.skipping:
            self.blocks[-1] += data

    @classmethod
    def of(cls, page: str) -> list[str]:
        parser = cls()
        parser.feed(page)
        parser.close()
        return [" ".join(block.split()) for block in parser.blocks if block.strip()]


def errcodes() -> set[str]:
    from dashboard.wechat.errors import CATEGORY_BY_CODE

    return {str(code) for code in CATEGORY_BY_CODE if abs(code) >= 10000}


def raw_codes(page: str) -> list[str]:
    """The codes standing alone in a page's visible text, each with its block of text for context."""
    found = []
    codes = errcodes()
    for block in VisibleText.of(KEYWORD_IN_CODE.sub(r"\1", page)):
        block = PLACEHOLDER.sub("{{…}}", block)
        for match in CODE_RE.finditer(block):
            before = block[: match.start()].rstrip(BESIDE)
            after = block[match.end() :].lstrip(BESIDE)
            if (before and CJK.match(before[-1])) or (after and CJK.match(after[0])):
                continue  # the code beside its Chinese name
            found.append(f"{match.group(0)!r} in {block!r}")
        if not CJK.search(block):
            for number in re.findall(r"(?<![\w.#/-])-?\d{5,6}(?![\w.:/-])", block):
                if number in codes:
                    found.append(f"errcode {number} with no words in {block!r}")
    return found


class RecordingTranslations:
    """Flask-Babel's translations with every lookup that misses the catalog written down."""

    def __init__(self, translations, misses: list[str]) -> None:
        self._translations = translations
        self._misses = misses

    def _check(self, key) -> None:
        catalog = getattr(self._translations, "_catalog", {})
        if key and key not in catalog:
            self._misses.append(key if isinstance(key, str) else key[0])

    def ugettext(self, message):
        self._check(message)
        return self._translations.ugettext(message)

    gettext = ugettext

    def ungettext(self, singular, plural, n):
        self._check((singular, 0))
        return self._translations.ungettext(singular, plural, n)

    ngettext = ungettext

    def upgettext(self, context, message):
        self._check(f"{context}\x04{message}")
        return self._translations.upgettext(context, message)

    def unpgettext(self, context, singular, plural, n):
        self._check((f"{context}\x04{singular}", 0))
        return self._translations.unpgettext(context, singular, plural, n)

    def __getattr__(self, name):
        return getattr(self._translations, name)


@pytest.fixture
def missed_msgids(monkeypatch) -> list[str]:
    misses: list[str] = []
    original = flask_babel.Domain.get_translations

    def recording(self):
        translations = original(self)
        if str(flask_babel.get_locale()) != "zh":
            return translations
        return RecordingTranslations(translations, misses)

    monkeypatch.setattr(flask_babel.Domain, "get_translations", recording)
    return misses


@pytest.fixture
def config_overrides(sandbox):
    return {**mp_overrides(sandbox), "SANDBOX_MODE": True}


def seed(app, sandbox, personas) -> dict[str, int]:
    """One of each thing, named in Chinese as an operator would name it; the ids a URL needs, by argument."""
    template = sandbox.templates(2)[0]
    openids = sandbox.openids()[: len(DELIVERIES)]  # one user per delivery: a campaign messages a user once
    granted_users(app, sandbox, template, openids)
    segment_id = segment_of_grantees(app, template, name="已授权的会员")
    campaigns = {
        state: draft(app, template, segment_id, name=f"双十二活动 {index}")
        for index, state in enumerate(CampaignState)
    }
    admin_id = personas["admin"].id
    with app.app_context():
        now = utcnow()
        for state, campaign_id in campaigns.items():
            campaign = db.session.get(Campaign, campaign_id)
            campaign.state = state
            if state is CampaignState.scheduled:
                campaign.scheduled_at = now + timedelta(days=1)
            if state is not CampaignState.draft and state is not CampaignState.scheduled:
                campaign.started_at = now - timedelta(hours=1)
            if state in (CampaignState.completed, CampaignState.cancelled):
                campaign.finished_at = now
            if state is CampaignState.paused:
                campaign.hold_code = "operator"
        user_ids = [
            db.session.scalar(sa.select(WechatUser.id).where(WechatUser.openid == openid))
            for openid in openids
        ]
        user = db.session.get(WechatUser, user_ids[0])
        user.nickname = "小明"
        user.tags = ["会员"]
        user.attributes = {"城市": "上海"}
        user.main_switch = True
        user.item_settings = {template["priTmplId"]: "accept"}
        user.settings_reported_at = now
        delivery_ids = []
        running = campaigns[CampaignState.running]
        for number, (state, reason, errcode, category) in enumerate(DELIVERIES):
            source = [DeliverySource.campaign, DeliverySource.api, DeliverySource.test][number % 3]
            delivery = Delivery(
                source=source,
                campaign_id=running if source is DeliverySource.campaign else None,
                requested_by_id=admin_id if source is DeliverySource.test else None,
                user_id=user_ids[number % len(user_ids)],
                openid=openids[number % len(openids)],
                template_id=template["priTmplId"],
                data=example_data(template),
                state=state,
                reason=reason,
                errcode=errcode,
                errmsg="参数错误" if errcode else "",
                attempts=1 if state is not DeliveryState.pending else 0,
                msgid="123456789" if state is DeliveryState.sent else None,
                sent_at=now if state is DeliveryState.sent else None,
                not_before=now + timedelta(minutes=5) if state is DeliveryState.retry_wait else None,
            )
            db.session.add(delivery)
            db.session.flush()
            if state is not DeliveryState.pending:
                db.session.add(
                    DeliveryAttempt(
                        delivery_id=delivery.id,
                        number=1,
                        started_at=now,
                        finished_at=now,
                        outcome=state if state is not DeliveryState.sending else DeliveryState.unknown,
                        errcode=errcode,
                        errmsg="参数错误" if errcode else "",
                        category=category,
                        elapsed_ms=120,
                    )
                )
            delivery_ids.append(delivery.id)
        key, _plaintext = create_key("订单服务", ["send", "read"], admin_id)
        old_key, _plaintext = create_key("旧的订单服务", ["send"], admin_id)
        revoke_key(old_key)
        attribute, _created = declare("membership_expires_at", "date", "会员到期日")
        vera = db.session.get(Operator, personas["viewer"].id)
        vera.is_disabled = True
        mark = db.session.get(Operator, personas["marketer"].id)
        mark.locked_until = now + timedelta(minutes=10)
        mark.must_change_password = True
        template_row = db.session.scalar(
            sa.select(MessageTemplate).where(MessageTemplate.template_id == template["priTmplId"])
        )
        # Every kind of audit event, with the details the code records.
        details = {
            "auth.login_failed": {"reason": "password", "failures": 2},
            "auth.login_refused": {"reason": "disabled"},
            "auth.locked": {"until": now.isoformat()},
            "operator.updated": {"role": "marketer", "disabled": True},
            "operator.created": {"email": "new@example.com", "role": "viewer"},
            "operator.password_changed": {"after_reset": True},
            "operator.password_reset": {"generated": True},
            "operator.locale_changed": {"locale": "zh"},
            "sending_limits.updated": {"rate_per_second": 10},
            "campaign.edited": {"fields": ["name", "data"]},
            "template.updated": {"template_id": template["priTmplId"], "changed": ["page"]},
        }
        targets = {
            "auth": mark, "operator": mark, "api_key": key, "campaign": db.session.get(Campaign, running),
            "template": template_row, "segment": None, "delivery": None, "users": None, "catalog": None,
            "sending": None, "sending_limits": None, "user_attribute": attribute,
        }  # fmt: skip
        for action in ACTION_LABELS:
            target = targets.get(action.split(".")[0])
            if action.startswith("sending_limits"):
                record(action, target_type="dispatch_state", target_id="1", **details.get(action, {}))
            elif action.startswith("segment"):
                record(action, target_type="segment", target_id=str(segment_id), name="已授权的会员")
            elif action.startswith("delivery"):
                record(
                    action, target_type="delivery", target_id=str(delivery_ids[3]), resend_id=delivery_ids[2]
                )
            elif action.startswith("users"):
                record(action, target_type="wechat_user", rows=3)
            else:
                record(action, target, actor_email="alice@example.com", **details.get(action, {}))
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) >= len(ACTION_LABELS)
        template_id, key_id, attribute_id = template_row.id, key.id, attribute.id
    return {
        "template_id": template_id,
        "user_id": user_ids[0],
        "delivery_id": delivery_ids[3],
        "segment_id": segment_id,
        "campaign_id": running,
        "key_id": key_id,
        "attribute_id": attribute_id,
        "operator_id": personas["marketer"].id,
        "tid": 1001,  # the sandbox's public library
        "campaigns": campaigns,
        "deliveries": delivery_ids,
    }


def get_pages(app) -> list[tuple[str, str]]:
    """Every GET route an operator's browser opens: (endpoint, rule)."""
    rules = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()) or rule.endpoint == "static":
            continue
        if rule.rule.startswith(("/api/", "/wechat/")):
            continue  # JSON for machines, in English by design
        rules.append((rule.endpoint, rule))
    return rules


def url_for_rule(rule, ids: dict) -> str:
    url = rule.rule
    for argument in rule.arguments:
        if rule.defaults and argument in rule.defaults:
            continue
        assert ids.get(argument) is not None, f"no seeded value for <{argument}> in {rule.rule}: seed one"
        url = re.sub(rf"<(?:[^:>]+:)?{argument}>", str(ids[argument]), url)
    return url


def extra_pages(ids: dict) -> list[str]:
    """The same pages in the states and with the filters that show other words."""
    pages = [f"/campaigns/{campaign_id}" for campaign_id in ids["campaigns"].values()]
    pages += [f"/deliveries/{delivery_id}" for delivery_id in ids["deliveries"]]
    pages += [f"/deliveries/?state={state.value}" for state in DeliveryState]
    pages += [f"/users/funnel?template_id={ids['template_id']}", "/settings/audit/?target=operator%20/%201"]
    return pages


def test_every_page_in_chinese_has_no_untranslated_message_and_no_raw_code(
    app, client, auth, sandbox, personas, missed_msgids, monkeypatch
):
    ids = seed(app, sandbox, personas)
    auth.login("admin")
    urls = []
    for endpoint, rule in get_pages(app):
        if endpoint == "auth.login":
            continue  # the login page, seen logged out below
        urls.append(url_for_rule(rule, ids))
    urls += extra_pages(ids)

    untranslated: dict[str, set[str]] = defaultdict(set)
    raw: dict[str, list[str]] = {}
    rendered = 0

    def look_at(url: str, response, label: str) -> None:
        nonlocal rendered
        body = response.get_data(as_text=True)  # a streamed export runs to its end
        response.close()
        assert response.status_code < 500, f"{label} answered {response.status_code}"
        if response.status_code in (301, 302, 303) or "text/html" not in response.content_type:
            return
        rendered += 1
        found = raw_codes(body)
        if found:
            raw[label] = found

    def walk(urls: list[str]) -> None:
        for url in urls:
            for htmx in (False, True):
                label = f"{url}{' (htmx)' if htmx else ''}"
                before = len(missed_msgids)
                response = client.get(url, headers={"HX-Request": "true"} if htmx else {})
                look_at(url, response, label)
                for msgid in missed_msgids[before:]:
                    untranslated[msgid].add(label)

    walk(urls)
    # The lists again, two rows a page, so every pager shows (first, middle and last page).
    for module in ("audit", "audience", "deliveries", "campaigns"):
        monkeypatch.setattr(f"dashboard.{module}.views.PAGE_SIZE", 2)
    walk(
        [
            f"{url}?page={n}"
            for url in ("/settings/audit/", "/users", "/deliveries/", "/campaigns/")
            for n in (1, 2, 99)
        ]
    )
    auth.logout()
    before = len(missed_msgids)
    look_at("/login", client.get("/login"), "/login")
    for msgid in missed_msgids[before:]:
        untranslated[msgid].add("/login")

    assert rendered > 40
    report = [f"{msgid!r} untranslated on {sorted(pages)[:3]}" for msgid, pages in untranslated.items()]
    where: dict[str, list[str]] = defaultdict(list)
    for label, found in raw.items():
        for finding in dict.fromkeys(found):
            where[finding].append(label.removesuffix(" (htmx)"))
    report += [f"{finding} on {sorted(set(pages))}" for finding, pages in where.items()]
    assert not report, "\n".join(report)


def test_an_untranslated_message_is_caught(app, client, auth, missed_msgids):
    from flask import render_template_string
    from flask_babel import gettext, ngettext

    with app.test_request_context("/"):
        app.preprocess_request()
        render_template_string("{{ _('Home') }} {{ _('No such message anywhere') }}")
        gettext("Nor this one")
        ngettext("%(num)d nothing", "%(num)d nothings", 2)
    assert missed_msgids == ["No such message anywhere", "Nor this one", "%(num)d nothing"]


def test_the_checks_catch_what_they_are_for():
    """The raw-code check flags a code alone and lets a code beside its Chinese name pass."""
    assert raw_codes("<td>no_grant</td>")
    assert raw_codes("<td>pending</td>")
    assert raw_codes("<td>thing1</td>")
    assert raw_codes("<td>True</td>") and raw_codes("<dd>not set</dd>")
    assert raw_codes("<td>47003</td>")
    assert not raw_codes("<td>已发送 sent</td>")
    assert not raw_codes("<td>会议主题 <small><code>thing1</code></small></td>")
    assert raw_codes('<td><code title="会议主题">thing1</code></td>')
    assert not raw_codes("<td>47003 参数错误</td>")
    assert not raw_codes("<td><code>no_grant</code></td>")
    assert not raw_codes('<td title="pending">待发送</td>')
    assert not raw_codes("<td>alice@example.com</td><td>oTest_pending1</td>")
