"""Admin page: operators and their roles."""

from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..access import requires
from ..extensions import db
from ..forms import EmptyForm
from ..models import Operator, Role
from . import services
from .forms import OperatorCreateForm, OperatorUpdateForm, PasswordResetForm

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
                confirmed=request.form.get("confirm") == "yes",
            )
        except services.ConfirmationNeeded:
            db.session.rollback()
            # Nothing changed: the same change is posted again, confirmed, from this page.
            return render_template("operators/confirm_disable.html", operator=operator, form=form)
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


@bp.route("/<int:operator_id>/password", methods=("GET", "POST"))
@requires(Role.admin)
def reset_password(operator_id: int):
    """Set a temporary password (typed, or generated and shown once) that the operator must change."""
    operator = db.get_or_404(Operator, operator_id)
    form = PasswordResetForm()
    temporary = None
    if form.validate_on_submit():
        try:
            temporary = services.reset_password(
                operator, acting=current_user._get_current_object(), password=form.password.data or ""
            )
        except services.OperatorError as error:
            db.session.rollback()
            form.password.errors.append(str(error))
        else:
            db.session.commit()
    # The password is in this page only (never in a flash message: the session is a cookie).
    response = make_response(
        render_template(
            "operators/reset_password.html",
            operator=operator,
            form=form,
            done=temporary is not None,
            generated=temporary if temporary is not None and not form.password.data else None,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response
