"""Admin page: operators and their roles."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..access import requires
from ..extensions import db
from ..forms import EmptyForm
from ..models import Operator, Role
from . import services
from .forms import OperatorCreateForm, OperatorUpdateForm

bp = Blueprint("operators", __name__)


def _page(create_form: OperatorCreateForm | None = None):
    operators = services.list_operators()
    update_forms = {
        op.id: OperatorUpdateForm(prefix=f"op{op.id}", role=op.role.value, disabled=op.is_disabled)
        for op in operators
    }
    return render_template(
        "operators/index.html",
        operators=operators,
        update_forms=update_forms,
        create_form=create_form or OperatorCreateForm(),
        unlock_form=EmptyForm(),
    )


@bp.route("/")
@requires(Role.admin)
def index():
    return _page()


@bp.route("/", methods=("POST",))
@requires(Role.admin)
def create():
    form = OperatorCreateForm()
    if form.validate_on_submit():
        try:
            operator = services.create_operator(
                form.email.data, form.password.data, form.role.data, form.name.data
            )
        except services.OperatorError as error:
            form.email.errors.append(str(error))
        else:
            db.session.commit()
            flash(_("Operator %(email)s added.", email=operator.email), "success")
            return redirect(url_for(".index"))
    return _page(create_form=form)


@bp.route("/<int:operator_id>", methods=("POST",))
@requires(Role.admin)
def update(operator_id: int):
    operator = db.get_or_404(Operator, operator_id)
    form = OperatorUpdateForm(prefix=f"op{operator.id}")
    if form.validate_on_submit():
        try:
            services.update_operator(
                operator,
                role=form.role.data,
                disabled=form.disabled.data,
                acting=current_user._get_current_object(),
            )
        except services.OperatorError as error:
            db.session.rollback()
            flash(str(error), "error")
        else:
            db.session.commit()
            flash(_("Operator %(email)s saved.", email=operator.email), "success")
    else:
        flash(_("The change was not valid."), "error")
    return redirect(url_for(".index"))


@bp.route("/<int:operator_id>/unlock", methods=("POST",))
@requires(Role.admin)
def unlock(operator_id: int):
    operator = db.get_or_404(Operator, operator_id)
    services.unlock(operator)
    db.session.commit()
    flash(_("Operator %(email)s unlocked.", email=operator.email), "success")
    return redirect(url_for(".index"))
