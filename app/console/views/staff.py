"""Staff (owners): who may use the console, their roles, and personal API tokens."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, redirect, render_template, request

from app.admin.auth import requires
from app.admin.schemas.common import MAX_ID
from app.admin.schemas.staff import StaffCreateSchema, TokenCreateSchema
from app.admin.staff_accounts import create_staff, create_token, list_staff, list_tokens, revoke_token, update_staff
from app.console.forms import Errors, load_form, posted_values
from app.console.frame import bp, console_url, flash_refusal, staff_shop
from app.extensions import db
from app.loyalty.errors import LoyaltyError, NotFound
from app.models.staff import STAFF_ROLES


def _page(*, errors: Errors | None = None, values: dict | None = None, token_errors: Errors | None = None,
          new_token: str | None = None, status: int = 200):
    staff, _ = staff_shop()
    members = list_staff(db.session, staff.shop_id)
    return render_template("console/staff.html", page_title="Staff", members=members,
                           names={m.id: m.email for m in members},
                           token_owners=[(m.id, m.email) for m in members if m.disabled_at is None], tokens=list_tokens(db.session, staff.shop_id),
                           roles=STAFF_ROLES, errors=errors or {}, values=values or {"role": "support"},
                           token_errors=token_errors or {}, new_token=new_token), status


@bp.get("/staff")
@requires("staff")
def staff():
    return _page()


@bp.post("/staff")
@requires("staff")
def staff_create():
    me, _ = staff_shop()
    _refuse_if_token(me)
    data, errors = load_form(StaffCreateSchema(), request.form)
    if not errors:
        try:
            create_staff(db.session, me.shop_id, data["email"], data["role"], data["password"], actor=me.actor,
                         name=data["name"])
        except LoyaltyError as exc:
            db.session.rollback()
            errors = {"email": [exc.message]}
    if errors:
        values = {k: v for k, v in posted_values(request.form).items() if k != "password"}
        return _page(errors=errors, values=values, status=422)
    db.session.commit()
    flash(f"{data['email']} can now sign in as {data['role']}.", "success")
    return redirect(console_url("console.staff"))


def _refuse_if_token(me) -> None:
    """As the API: a bearer token (accepted on console pages for scripts) makes no credentials."""
    try:
        me.refuse_if_token()
    except LoyaltyError as exc:
        abort(exc.status, exc.message)


def _change(staff_id: int, changes: dict, done: str):
    me, _ = staff_shop()
    try:
        member = update_staff(db.session, me.shop_id, staff_id, changes, actor=me.actor, now=datetime.now(UTC))
    except NotFound:
        abort(404)
    except LoyaltyError as exc:
        db.session.rollback()
        flash_refusal(exc)
        return redirect(console_url("console.staff"))
    db.session.commit()
    flash(f"{member.email} {done}.", "success")
    return redirect(console_url("console.staff"))


@bp.post("/staff/<int:staff_id>/disable")
@requires("staff")
def staff_disable(staff_id: int):
    return _change(staff_id, {"disabled": True}, "is disabled and signed out")


@bp.post("/staff/<int:staff_id>/enable")
@requires("staff")
def staff_enable(staff_id: int):
    return _change(staff_id, {"disabled": False}, "may sign in again")


@bp.post("/staff/tokens")
@requires("staff")
def token_create():
    me, _ = staff_shop()
    _refuse_if_token(me)
    data, errors = load_form(TokenCreateSchema(), request.form)
    staff_id = request.form.get("staff_id", type=int)
    if staff_id is None or not 1 <= staff_id <= MAX_ID:  # beyond a bigint the lookup is a database error
        errors["staff_id"] = ["Choose whose token this is."]
    if errors:
        return _page(token_errors=errors, status=422)
    try:
        _, token = create_token(db.session, me.shop_id, staff_id, data["name"], actor=me.actor)
    except NotFound:
        abort(404)
    except LoyaltyError as exc:
        db.session.rollback()
        return _page(token_errors={"_form": [exc.message]}, status=exc.status)
    db.session.commit()
    return _page(new_token=token)  # shown once, never stored in plain


@bp.post("/staff/tokens/<int:token_id>/revoke")
@requires("staff")
def token_revoke(token_id: int):
    me, _ = staff_shop()
    try:
        token = revoke_token(db.session, me.shop_id, token_id, actor=me.actor, now=datetime.now(UTC))
    except NotFound:
        abort(404)
    db.session.commit()
    flash(f"Token {token.name} is revoked; scripts using it stop working now.", "success")
    return redirect(console_url("console.staff"))
