"""Admin page: API keys for the company's other back ends."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..access import requires
from ..extensions import db
from ..models import ApiKey, Role
from . import services
from .forms import ApiKeyCreateForm, ApiKeyRevokeForm

bp = Blueprint("apikeys", __name__)


def _page(form: ApiKeyCreateForm | None = None, created: tuple[ApiKey, str] | None = None):
    return render_template(
        "apikeys/index.html",
        keys=services.list_keys(),
        form=form or ApiKeyCreateForm(formdata=None),
        created=created,
    )


@bp.route("/")
@requires(Role.admin)
def index():
    return _page()


@bp.route("/", methods=("POST",))
@requires(Role.admin)
def create():
    form = ApiKeyCreateForm()
    if form.validate_on_submit():
        try:
            key, plaintext = services.create_key(form.name.data, form.scopes.data, current_user.id)
        except services.ApiKeyError as error:
            form.name.errors.append(str(error))
        else:
            db.session.commit()
            # Rendered, not flashed: a flashed message would travel in the session cookie.
            return _page(created=(key, plaintext))
    return _page(form=form)


def _revoke_page(key: ApiKey, form: ApiKeyRevokeForm):
    return render_template("apikeys/revoke.html", key=key, form=form)


@bp.route("/<int:key_id>/revoke")
@requires(Role.admin)
def revoke_confirm(key_id: int):
    """Which key, and what revoking it does; nothing changes until the ticked form is posted."""
    key = db.get_or_404(ApiKey, key_id)
    if not key.is_active:
        flash(_("Key %(name)s is revoked already.", name=key.name), "info")
        return redirect(url_for(".index"))
    return _revoke_page(key, ApiKeyRevokeForm(formdata=None))


@bp.route("/<int:key_id>/revoke", methods=("POST",))
@requires(Role.admin)
def revoke(key_id: int):
    key = db.get_or_404(ApiKey, key_id)
    form = ApiKeyRevokeForm()
    if not form.validate_on_submit():
        abort(400)
    if not form.confirm.data:
        form.confirm.errors = [_("Tick the box to confirm; the key was not revoked.")]
        return _revoke_page(key, form)
    services.revoke_key(key)
    db.session.commit()
    flash(_("Key %(name)s revoked; requests with it now get 401.", name=key.name), "success")
    return redirect(url_for(".index"))
