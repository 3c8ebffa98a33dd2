"""Admin pages: declare user attribute keys, and change their label and type."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..access import requires
from ..audience import attributes
from ..extensions import db
from ..models import Role
from ..models.user_attribute import UserAttribute
from .forms import AttributeCreateForm, AttributeEditForm

bp = Blueprint("user_attributes", __name__)


def _page(form: AttributeCreateForm | None = None):
    return render_template(
        "user_attributes/index.html",
        declarations=attributes.list_declarations(),
        type_labels=attributes.TYPE_LABELS,
        form=form or AttributeCreateForm(formdata=None),
    )


@bp.route("/")
@requires(Role.admin)
def index():
    return _page()


@bp.route("/", methods=("POST",))
@requires(Role.admin)
def create():
    form = AttributeCreateForm()
    if not form.validate_on_submit():
        return _page(form)
    key = form.key.data.strip()
    if db.session.scalar(select(UserAttribute.id).where(UserAttribute.key == key)) is not None:
        form.key.errors.append(_("%(key)s is declared already: change it in the list.", key=key))
        return _page(form)
    try:
        attributes.declare(key, form.type.data, form.label.data.strip())
        db.session.commit()
    except IntegrityError:  # declared at the same moment through the API
        db.session.rollback()
        form.key.errors.append(_("%(key)s is declared already: change it in the list.", key=key))
        return _page(form)
    flash(_("Attribute %(key)s declared.", key=key), "success")
    return redirect(url_for(".index"))


@bp.route("/<int:attribute_id>/edit", methods=("GET", "POST"))
@requires(Role.admin)
def edit(attribute_id: int):
    attribute = db.get_or_404(UserAttribute, attribute_id)
    form = AttributeEditForm(obj=attribute)
    if form.validate_on_submit():
        attributes.declare(attribute.key, form.type.data, form.label.data.strip())
        db.session.commit()
        flash(_("Attribute %(key)s saved.", key=attribute.key), "success")
        return redirect(url_for(".index"))
    return render_template(
        "user_attributes/edit.html", attribute=attribute, form=form, type_labels=attributes.TYPE_LABELS
    )
