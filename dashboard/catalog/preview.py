"""The card a user will see in 服务通知, with every keyword value checked against its rule.

:func:`build_preview` is used by the live preview and by the test send, so what is shown is what is
sent: user variables are filled in, then each value is validated; a value that breaks its rule is
either refused (fit policy ``reject``) or replaced by its suggested fix (fit policy ``fix``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..models.catalog import FitPolicy, MessageTemplate
from ..wechat.keywords import Violation, suggest_fix, validate_value
from . import schema

#: The card's last line, as WeChat writes it for each ``lang`` of subscribeMessage.send.
FOOTERS = {
    "zh_CN": "进入小程序查看",
    "zh_HK": "進入小程序查看",
    "zh_TW": "進入小程式查看",
    "en_US": "View in mini program",
}


@dataclass(frozen=True)
class KeywordCheck:
    """One keyword's value as typed, as it would be sent, and what is wrong with it."""

    key: str
    type: str
    label: str
    typed: str  # what the operator typed (may hold {{user.x}})
    value: str  # with user variables filled in
    violations: list[Violation]
    fix: str | None  # suggest_fix's answer when the value has errors
    fit: str

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.is_error]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if not v.is_error]

    @property
    def blocking(self) -> bool:
        """The send would be refused: errors, and no fix to send instead under a ``fix`` policy."""
        return bool(self.errors) and not (self.fit == FitPolicy.fix.value and self.fix is not None)

    @property
    def sent_value(self) -> str:
        if self.errors and self.fit == FitPolicy.fix.value and self.fix is not None:
            return self.fix
        return self.value


@dataclass(frozen=True)
class CardRow:
    """One line of the card: the label, the value as shown, and the checks of the keys on the line."""

    label: str
    value: str
    keys: list[str]
    checks: list[KeywordCheck]

    @property
    def invalid(self) -> bool:
        return any(check.errors for check in self.checks)


@dataclass(frozen=True)
class Preview:
    title: str
    rows: list[CardRow]
    checks: dict[str, KeywordCheck]
    lang: str
    footer: str
    samples: dict[str, str] = field(default_factory=dict)  # user variables shown with sample values

    @property
    def blocking(self) -> bool:
        return any(check.blocking for check in self.checks.values())

    @property
    def error_count(self) -> int:
        return sum(1 for check in self.checks.values() if check.errors)

    def send_data(self) -> dict[str, str]:
        """``{key: value}`` as it would go to WeChat (fixes applied where the policy says so)."""
        return {key: check.sent_value for key, check in self.checks.items()}


def initial_values(template: MessageTemplate) -> dict[str, str]:
    """What the preview form starts with: each keyword's default, else the template's example."""
    examples = schema.example_values(template.content, template.example or "")
    return {
        spec["key"]: spec.get("default") or examples.get(spec["key"], "") for spec in template.keyword_specs
    }


def build_preview(
    template: MessageTemplate,
    typed: Mapping[str, str],
    lang: str,
    user_values: Mapping[str, str] | None = None,
) -> Preview:
    """Check ``typed`` (``{key: value}``) against ``template`` and lay out its card.

    ``user_values`` fill ``{{user.x}}`` variables; any variable they lack gets its sample from
    :data:`~dashboard.catalog.schema.SAMPLE_USER` and is listed in ``Preview.samples``.
    """
    known = dict(user_values or {})
    samples: dict[str, str] = {}
    checks: dict[str, KeywordCheck] = {}
    for spec in template.keyword_specs:
        key = spec["key"]
        raw = str(typed.get(key) or "")
        for name in schema.user_variables(raw):
            if name not in known and name in schema.SAMPLE_USER:
                samples[name] = schema.SAMPLE_USER[name]
        value = schema.fill_user_variables(raw, {**schema.SAMPLE_USER, **known})
        enums = spec.get("enum_values") or []
        violations = validate_value(key, value, enums, type_name=spec["type"])
        fix = None
        if any(v.is_error for v in violations):
            fix = suggest_fix(key, value, enums, type_name=spec["type"])
        checks[key] = KeywordCheck(
            key=key,
            type=spec["type"],
            label=spec.get("label") or spec.get("content_label") or key,
            typed=raw,
            value=value,
            violations=violations,
            fix=fix,
            fit=spec.get("fit") or FitPolicy.reject.value,
        )
    shown = {key: check.value for key, check in checks.items()}
    rows = [
        CardRow(
            label=label,
            value=schema.render_line(line, shown) if keys else "",
            keys=keys,
            checks=[checks[key] for key in keys if key in checks],
        )
        for label, keys, line in schema.content_lines(template.content)
    ]
    lang = lang if lang in FOOTERS else "zh_CN"
    return Preview(
        title=template.title,
        rows=rows,
        checks=checks,
        lang=lang,
        footer=FOOTERS[lang],
        samples=samples,
    )
