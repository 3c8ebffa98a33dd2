"""Settings → Channels: every way a mini-program can reach a user, which Tongzhi speaks, and why not the others.

Readable by every operator (it explains what the product can do); the same content is the README's
"Channels" section.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, current_app, render_template
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import SQLAlchemyError

from ..access import requires
from ..config import oa_configured
from ..extensions import db
from ..models import Role
from .followers import follower_counts

bp = Blueprint("channels", __name__)

# The one sentence on mp_subscribe_or_oa (dispatch.channels.choose), under the channels Tongzhi speaks.
FALLBACK = _l(
    "The fallback, “subscribe message, else Official Account”, spends a subscribe credit when the user "
    "holds one, otherwise sends the Official Account template message when they follow it, otherwise "
    "skips them (no credit, and does not follow)."
)


@dataclass(frozen=True)
class Channel:
    """One way to reach a user. ``spoken``: Tongzhi sends through it; ``state``: configured, sandbox, off
    or retired; ``why``: what it is for, or why it is not offered; ``used_by``: what sends through it."""

    name: str
    api: str
    spoken: bool
    state: str
    why: str
    used_by: str = ""


STATE_LABELS = {
    "configured": _l("configured"),
    "sandbox": _l("sandbox"),
    "off": _l("off (not configured)"),
    "not_offered": _l("not offered"),
}


def channels() -> list[Channel]:
    config = current_app.config
    here = "sandbox" if config.get("SANDBOX_MODE") else "configured"
    mp_state = here if config.get("WECHAT_APPID") and config.get("WECHAT_SECRET") else "off"
    oa_state = here if oa_configured(config) else "off"
    return [
        Channel(
            str(_l("Subscribe messages (订阅消息), one-time and long-term")),
            "/cgi-bin/message/subscribe/send",
            True,
            mp_state,
            str(
                _l(
                    "Each tap on 允许 in the subscribe dialog is one credit for one message (one-time), or "
                    "a standing permission for public-service categories (long-term). Tongzhi keeps the "
                    "credits, since WeChat shows them to nobody."
                )
            ),
            str(
                _l(
                    "Used by campaigns, date reminders, the send API (POST /api/v1/messages) and test "
                    "sends: the default channel, and the first choice of the fallback."
                )
            ),
        ),
        Channel(
            str(_l("Official Account template messages (公众号模板消息)")),
            "/cgi-bin/message/template/send",
            True,
            oa_state,
            str(
                _l(
                    "Needs a verified service account (服务号) linked to the mini-program, and the user must "
                    "follow it; no per-message grant. Its openid differs from the mini-program's: the two "
                    "are one person through the unionid. A tap opens the mini-program."
                )
            ),
            str(
                _l(
                    "Used by campaigns, date reminders, the send API and test sends that choose the "
                    "Official Account or the fallback; a user who does not follow is skipped (WeChat "
                    "would answer 43004)."
                )
            ),
        ),
        Channel(
            str(_l("Mini-program template messages with a formId (模板消息)")),
            "/cgi-bin/message/wxopen/template/send",
            False,
            "not_offered",
            str(
                _l(
                    "Retired by WeChat on 2020-01-10: every call now answers 45103 (this API has been "
                    "unsupported). Subscribe messages replaced them."
                )
            ),
        ),
        Channel(
            str(_l("Customer-service messages (客服消息)")),
            "/cgi-bin/message/custom/send",
            False,
            "not_offered",
            str(
                _l(
                    "A reply to a user who wrote to the mini-program: allowed only within 48 hours of their "
                    "last message, later calls answer 45015. Tongzhi cannot choose when it may send them, "
                    "so they are not notifications."
                )
            ),
        ),
    ]


@bp.route("/")
@requires(Role.viewer)
def index():
    counts = None
    if oa_configured(current_app.config):
        try:
            counts = follower_counts()
        except SQLAlchemyError:
            db.session.rollback()
    return render_template(
        "oa/channels.html",
        channels=channels(),
        state_labels=STATE_LABELS,
        follower_counts=counts,
        fallback=FALLBACK,
        daily_sync_at=current_app.config.get("OA_FOLLOWER_SYNC_AT"),
        timezone=current_app.config.get("TIMEZONE", "UTC"),
    )
