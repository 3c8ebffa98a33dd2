"""Admin page: the effective configuration (secrets masked), sending limits and the WeChat connection check."""

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..access import requires
from ..config import effective_settings
from ..dispatch import limits
from ..extensions import db
from ..forms import EmptyForm
from ..labels import grant_source_label
from ..models import Role
from ..wechat.check import run_check, run_oa_check
from .forms import FrequencyCapForm, SendingLimitsForm

bp = Blueprint("settings", __name__)

# ``effective_settings`` speaks English (``flask check-settings`` prints it); the page says the same in words.
SHOWN_WORDS = {
    "(set, hidden)": _l("set (hidden)"),
    "(not set)": _l("not set"),
    "True": _l("yes"),
    "False": _l("no"),
}


def shown_in_words(name: str, shown: str) -> str:
    if shown in SHOWN_WORDS:
        return str(SHOWN_WORDS[shown])
    if name == "GRANT_CREDIT_SOURCES":
        return "、".join(f"{grant_source_label(source)} {source}" for source in shown.split(", ") if source)
    return shown


def _page(limits_form: SendingLimitsForm | None = None, cap_form: FrequencyCapForm | None = None):
    state = limits.current_limits()
    if limits_form is None:
        limits_form = SendingLimitsForm(
            formdata=None, rate_per_second=state.rate_per_second, concurrency=state.concurrency
        )
    if cap_form is None:
        cap_form = FrequencyCapForm(
            formdata=None,
            frequency_cap_messages=state.frequency_cap_messages,
            frequency_cap_days=state.frequency_cap_days,
        )
    return render_template(
        "settings/index.html",
        settings=[
            (name, shown_in_words(name, shown)) for name, shown in effective_settings(current_app.config)
        ],
        check=None,
        limits_form=limits_form,
        cap_form=cap_form,
        dispatch_state=state,
        resume_form=EmptyForm(),
    )


@bp.route("/")
@requires(Role.admin)
def index():
    return _page()


@bp.route("/sending-limits", methods=("POST",))
@requires(Role.admin)
def sending_limits():
    form = SendingLimitsForm()
    if not form.validate_on_submit():
        return _page(limits_form=form)
    limits.update_limits(form.rate_per_second.data, form.concurrency.data)
    db.session.commit()
    flash(_("Sending limits saved."), "success")
    return redirect(url_for(".index"))


@bp.route("/frequency-cap", methods=("POST",))
@requires(Role.admin)
def frequency_cap():
    form = FrequencyCapForm()
    if not form.validate_on_submit():
        return _page(cap_form=form)
    limits.update_frequency_cap(form.frequency_cap_messages.data, form.frequency_cap_days.data)
    db.session.commit()
    flash(_("Frequency cap saved."), "success")
    return redirect(url_for(".index"))


@bp.route("/resume-sending", methods=("POST",))
@requires(Role.admin)
def resume_sending():
    limits.resume_sending()
    db.session.commit()
    flash(_("Sending resumed."), "success")
    return redirect(url_for(".index"))


@bp.route("/wechat-check", methods=("POST",))
@requires(Role.admin)
def wechat_check():
    """Run the same check as ``flask wechat-check`` (both accounts) and show its answer in place."""
    return render_template("settings/_wechat_check.html", check=run_check(), oa_check=run_oa_check())
