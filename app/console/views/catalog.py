"""Add and edit earn rules, rewards and tiers (owners), through the admin API's schemas and the
domain's catalog functions (which check what spans rows and audit every change)."""
from __future__ import annotations

from dataclasses import dataclass

from flask import abort, flash, redirect, render_template, request
from marshmallow import Schema, ValidationError, missing

from app.admin.auth import requires
from app.admin.schemas.program import EarnRuleSchema, RewardSchema, TierSchema
from app.console.fields import FormField as F, shown_value
from app.console.forms import Errors, flatten_errors, load_form, posted_values
from app.console.frame import bp, console_url, staff_shop
from app.extensions import db
from app.loyalty.catalog import delete_item, get_item, save_item
from app.loyalty.errors import LoyaltyError, NotFound
from app.models import EarnRule, Reward, Tier
from app.models.program import EARN_RULE_KINDS, REWARD_KINDS


@dataclass(frozen=True)
class Kind:
    model: type
    schema: type[Schema]
    singular: str
    fields: tuple[F, ...]


def _choices(values: tuple[str, ...]) -> tuple:
    return tuple((v, v.replace("_", " ").capitalize()) for v in values)


KINDS = {
    "earn-rules": Kind(EarnRule, EarnRuleSchema, "earn rule", (
        F("name", "Name", "text"),
        F("kind", "Kind", "select", _choices(EARN_RULE_KINDS)),
        F("points_per_unit", "Points per unit of currency", help="Order rules only, e.g. 1 or 2.5."),
        F("points", "Points", help="Every kind but order rules."),
        F("every_n", "Every Nth order", help="Nth-order rules only, e.g. 10."),
        F("action_key", "Action key", "text", help="Custom rules only: lower-case letters, digits and _."),
        F("active", "Active", "checkbox"),
    )),
    "rewards": Kind(Reward, RewardSchema, "reward", (
        F("name", "Name", "text"),
        F("kind", "Kind", "select", _choices(REWARD_KINDS)),
        F("points_cost", "Points cost"),
        F("value", "Value", help="Amount off, or percent (1–100) for percentage rewards."),
        F("product_ref", "Product", "text", help="Free product rewards only: the platform's product id."),
        F("minimum_order", "Minimum order", help="Leave empty for none."),
        F("code_expiry_days", "Code expires after (days)", help="Leave empty: never."),
        F("position", "Position in the list"),
        F("active", "Active", "checkbox"),
    )),
    "tiers": Kind(Tier, TierSchema, "tier", (
        F("name", "Name", "text"),
        F("threshold", "Threshold", help="Spend or points, per the program's tier basis; each tier's is higher."),
        F("multiplier", "Earn multiplier", help="1 to 10, e.g. 1.25; never lower than a lower tier's."),
        F("perks", "Perks", "lines", help="One per line, shown to shoppers."),
    )),
}


def _kind(kind: str) -> Kind:
    if kind not in KINDS:
        abort(404)
    return KINDS[kind]


def _form(kind: str, item_id: int | None, values: dict, errors: Errors | None = None, status: int = 200):
    spec = KINDS[kind]
    title = f"Edit {spec.singular}" if item_id else f"Add {spec.singular}"
    return render_template("console/catalog_form.html", page_title=title, kind=kind, spec=spec, item_id=item_id,
                           values=values, errors=errors or {}), status


@bp.get("/settings/<kind>/new")
@requires("settings")
def catalog_new(kind: str):
    spec = _kind(kind)
    defaults = {f.name: shown_value(default, f.control) for f in spec.fields
                if (default := spec.schema._declared_fields[f.name].load_default) not in (None, missing)
                and not callable(default)}
    return _form(kind, None, defaults)


@bp.get("/settings/<kind>/<int:item_id>")
@requires("settings")
def catalog_edit(kind: str, item_id: int):
    staff, _ = staff_shop()
    spec = _kind(kind)
    try:
        row = get_item(db.session, staff.shop_id, spec.model, item_id)
    except NotFound:
        abort(404)
    return _form(kind, item_id, {f.name: shown_value(getattr(row, f.name), f.control) for f in spec.fields})


@bp.post("/settings/<kind>/new", endpoint="catalog_create")
@bp.post("/settings/<kind>/<int:item_id>")
@requires("settings")
def catalog_save(kind: str, item_id: int | None = None):
    staff, _ = staff_shop()
    spec = _kind(kind)
    values, errors = load_form(spec.schema(), request.form)
    if not errors:
        try:
            save_item(db.session, staff.shop_id, spec.model, values, actor=staff.actor, item_id=item_id)
        except NotFound:
            abort(404)
        except ValidationError as exc:
            errors = flatten_errors(exc.messages)
        except LoyaltyError as exc:
            errors = {"_form": [exc.message]}
    if errors:
        db.session.rollback()
        return _form(kind, item_id, posted_values(request.form), errors, 422)
    db.session.commit()
    flash(f"{spec.singular.capitalize()} {values['name']} saved.", "success")
    return redirect(console_url("console.settings"))


@bp.post("/settings/<kind>/<int:item_id>/delete")
@requires("settings")
def catalog_delete(kind: str, item_id: int):
    staff, _ = staff_shop()
    spec = _kind(kind)
    try:
        delete_item(db.session, staff.shop_id, spec.model, item_id, actor=staff.actor)
    except NotFound:
        abort(404)
    db.session.commit()
    flash(f"The {spec.singular} was deleted.", "success")
    return redirect(console_url("console.settings"))
